package main

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/iqengine/iqengine/internal/testutil"
)

const (
	saslUser     = "admin"
	saslPassword = "pw-8f3a1c"
	saslTopic    = "orders"
)

// saslBroker starts a kfake cluster that requires SCRAM-SHA-256 as
// admin/secret (and has opts), with the topic saslTopic, and returns its
// address. It is always the embedded broker: a real one from
// IQENGINE_TEST_BROKERS would not have these credentials.
func saslBroker(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", saslUser, saslPassword),
		kfake.GroupMinSessionTimeout(time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.SASL(scram.Auth{User: saslUser, Pass: saslPassword}.AsSha256Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, saslTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", saslTopic, err)
	}
	return addr
}

// serveConfig writes a serve configuration for one store over saslTopic
// and returns its path and the node's listen address and data directory.
func serveConfig(t *testing.T, broker, kafkaExtra string) (path, listen, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	listen = testutil.FreeAddr(t)
	dataDir = filepath.Join(dir, "data")
	path = writeFile(t, dir, "iqengine.yaml", "node_id: node-1\n"+
		"listen: "+listen+"\n"+
		"data_dir: "+dataDir+"\n"+
		"kafka:\n"+
		"  brokers: ["+broker+"]\n"+
		"  session_timeout: 6s\n"+
		kafkaExtra+
		"stores:\n"+
		"  - {name: orders, topic: "+saslTopic+"}\n")
	return path, listen, dataDir
}

// wantNothingStarted fails t if the node created its data directory or
// listens on its address.
func wantNothingStarted(t *testing.T, listen, dataDir string) {
	t.Helper()
	if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data dir: stat = %v, want it not created", err)
	}
	if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s", listen)
	}
}

func TestServeWrongSASLPassword(t *testing.T) {
	broker := saslBroker(t)
	path, listen, dataDir := serveConfig(t, broker,
		"  startup_timeout: 5s\n"+
			"  sasl: {mechanism: SCRAM-SHA-256, username: "+saslUser+", password: not-the-s3cret}\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r := runCtx(t, ctx, noEnv, "serve", "--config", path)
	t.Logf("failed after %s: %s", r.took, strings.TrimSpace(r.stderr))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, "authentication failed", `user "admin"`, "SCRAM-SHA-256")
	if strings.Contains(r.stderr, "not-the-s3cret") {
		t.Errorf("the error shows the password: %s", r.stderr)
	}
	// Authentication failures are not retried until the startup timeout.
	if r.took > 4*time.Second {
		t.Errorf("took %s, want well under the 5s startup timeout", r.took)
	}
	wantNothingStarted(t, listen, dataDir)
}

func TestServeSASLWithoutCredentials(t *testing.T) {
	broker := saslBroker(t)
	path, listen, dataDir := serveConfig(t, broker, "  startup_timeout: 5s\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r := runCtx(t, ctx, noEnv, "serve", "--config", path)
	t.Logf("failed after %s: %s", r.took, strings.TrimSpace(r.stderr))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, "authentication failed", "kafka.sasl")
	if r.took > 4*time.Second {
		t.Errorf("took %s, want well under the 5s startup timeout", r.took)
	}
	wantNothingStarted(t, listen, dataDir)
}

func TestServeRightSASLPassword(t *testing.T) {
	broker := saslBroker(t)
	// The password comes from the environment, as the docs suggest.
	path, listen, dataDir := serveConfig(t, broker,
		"  startup_timeout: 5s\n"+
			"  sasl: {mechanism: SCRAM-SHA-256, username: "+saslUser+"}\n")
	env := envOf(map[string]string{"IQENGINE_KAFKA_SASL_PASSWORD": saslPassword})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- runCtx(t, ctx, env, "serve", "--config", path) }()

	base := "http://" + listen
	client := &http.Client{Timeout: 2 * time.Second}
	testutil.WaitFor(t, 15*time.Second, "the node answers /healthz", func() bool {
		select {
		case r := <-done:
			t.Fatalf("serve returned early: exit %d; stderr:\n%s", r.code, r.stderr)
		default:
		}
		status, _, err := testutil.Get(client, base+"/healthz")
		return err == nil && status == http.StatusOK
	})
	resp, err := client.Get(base + "/v1/stores")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/stores: %s", resp.Status)
	}
	if _, err := os.Stat(dataDir); err != nil {
		t.Errorf("data dir: %v", err)
	}

	cancel()
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("exit %d after cancel, want 0; stderr:\n%s", r.code, r.stderr)
		}
		for _, w := range []string{"node started", "node stopped"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("log does not say %q:\n%s", w, r.stderr)
			}
		}
		if strings.Contains(r.stderr, saslPassword) {
			t.Errorf("the log shows the password:\n%s", r.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15s of cancel")
	}
	if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still listens after serve returned", listen)
	}
}

func TestServeUnreachableBroker(t *testing.T) {
	closed := testutil.FreeAddr(t)
	path, listen, dataDir := serveConfig(t, closed, "  dial_timeout: 1s\n  startup_timeout: 2s\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r := runCtx(t, ctx, noEnv, "serve", "--config", path)
	t.Logf("failed after %s: %s", r.took, strings.TrimSpace(r.stderr))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, "no broker reachable", closed, "within 2s")
	if r.took > 4*time.Second {
		t.Errorf("took %s, want about the 2s startup timeout", r.took)
	}
	wantNothingStarted(t, listen, dataDir)
}

func TestServeMissingTopic(t *testing.T) {
	broker := saslBroker(t)
	path, listen, _ := serveConfig(t, broker,
		"  startup_timeout: 5s\n"+
			"  sasl: {mechanism: SCRAM-SHA-256, username: "+saslUser+", password: "+saslPassword+"}\n")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text = []byte(strings.Replace(string(text), "topic: "+saslTopic, "topic: no-such-topic", 1))
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r := runCtx(t, ctx, noEnv, "serve", "--config", path)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, `topic "no-such-topic" does not exist`)
	if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s", listen)
	}
}

// The principal's permissions come from the broker: a user that may
// describe the topic or the group but not read it fails the check (exit
// 1), and the FAIL line says what it lacks. The embedded broker only: a real one would
// need these users and ACLs.
func TestCheckPermissions(t *testing.T) {
	const app = "app"
	addr := saslBroker(t, kfake.EnableACLs())
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: saslUser, Pass: saslPassword}.AsSha256Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	users := []kadm.UpsertSCRAM{
		{User: "reader", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "pw-reader"},
		{User: "describer", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "pw-describer"},
		{User: "outsider", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "pw-outsider"},
	}
	if resp, err := adm.AlterUserSCRAMs(ctx, nil, users); err != nil || resp.Error() != nil {
		t.Fatalf("users: %v %v", err, resp.Error())
	}
	for _, acl := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:reader", "User:outsider").Topics(saslTopic).Operations(kadm.OpDescribe, kadm.OpRead, kadm.OpDescribeConfigs),
		kadm.NewACLs().Allow("User:describer").Topics(saslTopic).Operations(kadm.OpDescribe),
		kadm.NewACLs().Allow("User:reader", "User:describer").Groups(app).Operations(kadm.OpDescribe, kadm.OpRead),
		kadm.NewACLs().Allow("User:outsider").Groups(app).Operations(kadm.OpDescribe),
	} {
		resp, err := adm.CreateACLs(ctx, acl.ResourcePatternType(kadm.ACLPatternLiteral))
		for _, r := range resp {
			err = errors.Join(err, r.Err)
		}
		if err != nil {
			t.Fatalf("ACLs: %v", err)
		}
	}

	check := func(user string) result {
		path := checkFile(t, t.TempDir(), []string{addr}, app,
			"  sasl: {mechanism: SCRAM-SHA-256, username: "+user+", password: pw-"+user+"}\n"+
				"stores:\n  - {name: a, topic: "+saslTopic+"}\n")
		return runCtx(t, context.Background(), noEnv, "check", "--config", path, "--kafka")
	}
	r := check("reader")
	wantCheck(t, r, 0)
	for _, want := range []string{
		"ok   brokers: " + addr + ` answer; SCRAM-SHA-256 as "reader" accepted` + "\n",
		"ok   topic orders (stores[0]): 3 partitions, cleanup.policy delete; may describe and read\n",
		"ok   group app: does not exist yet (no node has joined); may describe and read; not joined by this check\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	wantCheck(t, check("describer"), 1, "FAIL topic orders (stores[0]): 3 partitions",
		"not authorized to READ it (a node needs DESCRIBE and READ on its topics)")
	wantCheck(t, check("outsider"), 1, "FAIL group app: does not exist yet (no node has joined); ",
		"not authorized to READ it (a node needs DESCRIBE and READ on its group)")
}
