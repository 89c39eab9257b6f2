package kafkaconn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/kafkaconn"
	"github.com/iqengine/iqengine/internal/testcerts"
	"github.com/iqengine/iqengine/internal/testutil"
)

const (
	topic        = "events"
	checkTimeout = 2 * time.Second
)

// startCluster starts a one-broker kfake cluster with a one-partition topic.
func startCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, topic)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// kafkaCfg is the connection config for brokers, as config.Default sets it.
func kafkaCfg(brokers []string) config.Kafka {
	k := config.Default().Kafka
	k.Brokers = brokers
	k.DialTimeout = config.Duration(time.Second)
	return k
}

// newClient builds a client from Options(k) plus extra options.
func newClient(t *testing.T, k config.Kafka, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, err := kafkaconn.Options(k)
	if err != nil {
		t.Fatalf("Options: %v", err)
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// check runs Check with checkTimeout under a test-level deadline, so that a
// Check that ignores its timeout fails the test instead of hanging it.
func check(t *testing.T, k config.Kafka) (time.Duration, error) {
	t.Helper()
	cl := newClient(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- kafkaconn.Check(ctx, cl, checkTimeout) }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(30 * time.Second):
		t.Fatal("Check did not return")
		return 0, nil
	}
}

// mustPass asserts that Check succeeds and that records go through.
func mustPass(t *testing.T, k config.Kafka) {
	t.Helper()
	if _, err := check(t, k); err != nil {
		t.Fatalf("Check: %v", err)
	}
	roundTrip(t, k)
}

// mustFail asserts that Check fails with class, in one line containing
// every want, and returns the message.
func mustFail(t *testing.T, k config.Kafka, class error, want ...string) string {
	t.Helper()
	took, err := check(t, k)
	if err == nil {
		t.Fatal("Check passed, want an error")
	}
	msg := err.Error()
	t.Logf("Check error after %s: %s", took.Round(time.Millisecond), msg)
	if !errors.Is(err, class) {
		t.Errorf("errors.Is(err, %v) = false for %q", class, msg)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	return msg
}

// roundTrip produces a record and consumes it back through new clients.
func roundTrip(t *testing.T, k config.Kafka) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	value := fmt.Sprintf("hello %s", t.Name())

	prod := newClient(t, k)
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cons := newClient(t, k, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("consume: %v", errs[0].Err)
		}
		for _, r := range fs.Records() {
			if string(r.Value) == value {
				return
			}
		}
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c := startCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "alice", "s3cret"))
			k := kafkaCfg(c.ListenAddrs())
			k.SASL = config.SASL{Mechanism: mech, Username: "alice", Password: "s3cret"}

			t.Run("right password", func(t *testing.T) { mustPass(t, k) })

			t.Run("wrong password", func(t *testing.T) {
				k := k
				k.SASL.Password = "wrong"
				mustFail(t, k, kafkaconn.ErrAuth, `user "alice"`, mech)
			})

			t.Run("unknown user", func(t *testing.T) {
				k := k
				k.SASL.Username = "bob"
				mustFail(t, k, kafkaconn.ErrAuth, `user "bob"`, mech)
			})

			t.Run("no credentials", func(t *testing.T) {
				k := k
				k.SASL = config.SASL{}
				mustFail(t, k, kafkaconn.ErrAuth, "SASL")
			})
		})
	}

	t.Run("other mechanism", func(t *testing.T) {
		c := startCluster(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "alice", "s3cret"))
		k := kafkaCfg(c.ListenAddrs())
		k.SASL = config.SASL{Mechanism: "SCRAM-SHA-512", Username: "alice", Password: "s3cret"}
		mustFail(t, k, kafkaconn.ErrAuth, `user "alice"`, "SCRAM-SHA-512")
	})
}

// TestSASLErrorCode covers brokers that answer a failed authentication with
// SASL_AUTHENTICATION_FAILED and a message, as Kafka does, instead of
// closing the connection, as kfake does.
func TestSASLErrorCode(t *testing.T) {
	const brokerMsg = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
	c := startCluster(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "alice", "s3cret"))
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := brokerMsg
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
	k := kafkaCfg(c.ListenAddrs())
	k.SASL = config.SASL{Mechanism: "SCRAM-SHA-256", Username: "alice", Password: "wrong"}
	msg := mustFail(t, k, kafkaconn.ErrAuth)
	want := `kafka: authentication failed for user "alice" (SCRAM-SHA-256): ` + brokerMsg
	if msg != want {
		t.Errorf("got  %q\nwant %q", msg, want)
	}
	_, err := check(t, k)
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("error does not unwrap to kerr.SaslAuthenticationFailed: %v", err)
	}
}

func TestTLS(t *testing.T) {
	ca := newCA(t, "test-ca")
	srv := ca.issue(t, "broker", true, "kafka.test")
	c := startCluster(t, kfake.TLS(serverTLS(srv, nil)))
	base := kafkaCfg(c.ListenAddrs())

	t.Run("ca_file", func(t *testing.T) {
		k := base
		k.TLS = config.TLS{CAFile: ca.caFile(t)}
		mustPass(t, k)
	})
	t.Run("server_name", func(t *testing.T) {
		k := base
		k.TLS = config.TLS{CAFile: ca.caFile(t), ServerName: "kafka.test"}
		mustPass(t, k)
	})
	t.Run("insecure_skip_verify", func(t *testing.T) {
		k := base
		k.TLS = config.TLS{Enabled: true, InsecureSkipVerify: true}
		mustPass(t, k)
	})

	fails := []struct {
		name string
		tls  config.TLS
		want string
	}{
		{"system roots", config.TLS{Enabled: true}, "certificate signed by unknown authority"},
		{"other CA", config.TLS{CAFile: newCA(t, "other-ca").caFile(t)}, "certificate signed by unknown authority"},
		{"wrong server_name", config.TLS{CAFile: ca.caFile(t), ServerName: "other.test"}, "other.test"},
		{"plaintext client", config.TLS{}, ""},
	}
	for _, tc := range fails {
		t.Run(tc.name, func(t *testing.T) {
			k := base
			k.TLS = tc.tls
			mustFail(t, k, kafkaconn.ErrTLS, "kafka: TLS failed with ", tc.want)
		})
	}

	t.Run("TLS client, plaintext broker", func(t *testing.T) {
		plain := startCluster(t)
		k := kafkaCfg(plain.ListenAddrs())
		k.TLS = config.TLS{CAFile: ca.caFile(t)}
		mustFail(t, k, kafkaconn.ErrTLS, "kafka: TLS failed with ")
	})
}

func TestMutualTLS(t *testing.T) {
	ca := newCA(t, "test-ca")
	srv := ca.issue(t, "broker", true)
	clientCA := newCA(t, "client-ca")
	c := startCluster(t, kfake.TLS(serverTLS(srv, clientCA)))
	base := kafkaCfg(c.ListenAddrs())
	base.TLS = config.TLS{CAFile: ca.caFile(t)}

	t.Run("client certificate", func(t *testing.T) {
		cli := clientCA.issue(t, "iqengine", false)
		k := base
		k.TLS.CertFile, k.TLS.KeyFile = cli.certFile, cli.keyFile
		mustPass(t, k)
	})
	t.Run("no client certificate", func(t *testing.T) {
		mustFail(t, base, kafkaconn.ErrTLS, "kafka: TLS failed with ", "certificate")
	})
	t.Run("client certificate from another CA", func(t *testing.T) {
		cli := newCA(t, "rogue-ca").issue(t, "iqengine", false)
		k := base
		k.TLS.CertFile, k.TLS.KeyFile = cli.certFile, cli.keyFile
		mustFail(t, k, kafkaconn.ErrTLS, "kafka: TLS failed with ")
	})
}

func TestTLSAndSASL(t *testing.T) {
	ca := newCA(t, "test-ca")
	srv := ca.issue(t, "broker", true)
	c := startCluster(t,
		kfake.TLS(serverTLS(srv, nil)),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "alice", "s3cret"),
	)
	k := kafkaCfg(c.ListenAddrs())
	k.TLS = config.TLS{CAFile: ca.caFile(t)}
	k.SASL = config.SASL{Mechanism: "SCRAM-SHA-512", Username: "alice", Password: "s3cret"}
	t.Run("right password", func(t *testing.T) { mustPass(t, k) })
	t.Run("wrong password", func(t *testing.T) {
		k := k
		k.SASL.Password = "wrong"
		mustFail(t, k, kafkaconn.ErrAuth, `user "alice"`, "SCRAM-SHA-512")
	})
	t.Run("no CA", func(t *testing.T) {
		k := k
		k.TLS = config.TLS{Enabled: true}
		mustFail(t, k, kafkaconn.ErrTLS, "unknown authority")
	})
}

func TestUnreachable(t *testing.T) {
	addr := testutil.FreeAddr(t)
	k := kafkaCfg([]string{addr})
	k.SASL = config.SASL{Mechanism: "SCRAM-SHA-256", Username: "alice", Password: "s3cret"}
	msg := mustFail(t, k, kafkaconn.ErrUnreachable,
		"kafka: no broker reachable at "+addr+" within 2s: ", "connection refused")
	if strings.Contains(msg, "unable to dial") {
		t.Errorf("franz-go wrapping left in %q", msg)
	}
}

// TestUnreachableWaits checks that Check keeps trying until the timeout: a
// broker that comes up after Check found none is found.
func TestUnreachableWaits(t *testing.T) {
	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan struct{})
	var once sync.Once
	cl := newClient(t, kafkaCfg([]string{addr}), kgo.WithHooks(dialFailed(func() { once.Do(func() { close(refused) }) })))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	checked := make(chan error, 1)
	go func() { checked <- kafkaconn.Check(ctx, cl, 10*time.Second) }()
	select {
	case <-refused:
	case err := <-checked:
		t.Fatalf("Check returned before it found no broker: %v", err)
	}
	startCluster(t, kfake.Ports(p))
	if err := <-checked; err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// dialFailed is a client hook that calls itself after every connection
// attempt that failed.
type dialFailed func()

func (f dialFailed) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		f()
	}
}

func TestCheckCanceled(t *testing.T) {
	cl := newClient(t, kafkaCfg([]string{testutil.FreeAddr(t)}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := kafkaconn.Check(ctx, cl, time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if errors.Is(err, kafkaconn.ErrUnreachable) {
		t.Errorf("a canceled check is not ErrUnreachable: %v", err)
	}
}

// TestCheckWithoutOptions checks that Check copes with a client that was
// not built from Options: it still classifies, it just cannot name the user.
func TestCheckWithoutOptions(t *testing.T) {
	addr := testutil.FreeAddr(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = kafkaconn.Check(ctx, cl, time.Second)
	if !errors.Is(err, kafkaconn.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}

func TestOptions(t *testing.T) {
	ca := newCA(t, "test-ca")
	cli := ca.issue(t, "iqengine", false)
	k := kafkaCfg([]string{"b1:9092", "b2:9093"})
	k.ClientID = "node-7"
	k.TLS = config.TLS{CAFile: ca.caFile(t), CertFile: cli.certFile, KeyFile: cli.keyFile, ServerName: "kafka.test"}
	k.SASL = config.SASL{Mechanism: "SCRAM-SHA-512", Username: "alice", Password: "s3cret"}
	cl := newClient(t, k)

	if got := cl.OptValue(kgo.SeedBrokers).([]string); strings.Join(got, ",") != "b1:9092,b2:9093" {
		t.Errorf("seed brokers = %v", got)
	}
	if got := cl.OptValue(kgo.ClientID); got != "node-7" {
		t.Errorf("client id = %v", got)
	}
	if ms, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism); len(ms) != 1 || ms[0].Name() != "SCRAM-SHA-512" {
		t.Errorf("SASL = %v", ms)
	}

	plain := newClient(t, kafkaCfg([]string{"b1:9092"}))
	if ms, _ := plain.OptValue(kgo.SASL).([]sasl.Mechanism); len(ms) != 0 {
		t.Errorf("SASL on without being asked for: %v", ms)
	}
}

func TestOptionsErrors(t *testing.T) {
	ca := newCA(t, "test-ca")
	cli := ca.issue(t, "iqengine", false)
	other := ca.issue(t, "other", false)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	noCerts := testcerts.WriteFile(t, dir, "empty.pem", []byte("not a certificate\n"))

	for _, tc := range []struct {
		name string
		edit func(*config.Kafka)
		want string
	}{
		{"missing ca_file", func(k *config.Kafka) { k.TLS.CAFile = missing }, "kafka.tls.ca_file: open "},
		{"ca_file without certs", func(k *config.Kafka) { k.TLS.CAFile = noCerts }, "kafka.tls.ca_file: no PEM certificates in "},
		{"ca_file is a key", func(k *config.Kafka) { k.TLS.CAFile = cli.keyFile }, "kafka.tls.ca_file: no PEM certificates"},
		{"cert without key", func(k *config.Kafka) { k.TLS.CertFile = cli.certFile }, "kafka.tls.key_file: is required with kafka.tls.cert_file"},
		{"key without cert", func(k *config.Kafka) { k.TLS.KeyFile = cli.keyFile }, "kafka.tls.cert_file: is required with kafka.tls.key_file"},
		{"missing cert_file", func(k *config.Kafka) { k.TLS.CertFile, k.TLS.KeyFile = missing, cli.keyFile }, "kafka.tls.cert_file: open "},
		{"missing key_file", func(k *config.Kafka) { k.TLS.CertFile, k.TLS.KeyFile = cli.certFile, missing }, "kafka.tls.key_file: open "},
		{"cert_file without certs", func(k *config.Kafka) { k.TLS.CertFile, k.TLS.KeyFile = noCerts, cli.keyFile }, "kafka.tls.cert_file: "},
		{"key_file without key", func(k *config.Kafka) { k.TLS.CertFile, k.TLS.KeyFile = cli.certFile, noCerts }, "kafka.tls.key_file: "},
		{"key of another cert", func(k *config.Kafka) { k.TLS.CertFile, k.TLS.KeyFile = cli.certFile, other.keyFile }, "kafka.tls.key_file: "},
		{"unknown mechanism", func(k *config.Kafka) { k.SASL = config.SASL{Mechanism: "GSSAPI", Username: "a"} }, `kafka.sasl.mechanism: "GSSAPI" is not`},
		{"no username", func(k *config.Kafka) { k.SASL = config.SASL{Mechanism: "PLAIN"} }, "kafka.sasl.username: is required with mechanism PLAIN"},
		{"no brokers", func(k *config.Kafka) { k.Brokers = nil }, "kafka.brokers: "},
		{"empty broker", func(k *config.Kafka) { k.Brokers = []string{"b1:9092", " "} }, "kafka.brokers[1]: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := kafkaCfg([]string{"127.0.0.1:9092"})
			tc.edit(&k)
			opts, err := kafkaconn.Options(k)
			if err == nil {
				t.Fatalf("Options passed with %d options, want an error", len(opts))
			}
			msg := err.Error()
			t.Logf("%s", msg)
			if !strings.HasPrefix(msg, tc.want) {
				t.Errorf("error %q does not start with %q", msg, tc.want)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error is not one line: %q", msg)
			}
		})
	}
}
