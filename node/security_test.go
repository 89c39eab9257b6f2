package node

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/testcerts"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
)

// securedNode starts a node serving HTTPS with the certificate of ca,
// a cluster secret, the stores "orders" and "private" (each holding k1),
// and the identities of edit; it returns the node, its base URL and the
// certificate files (to rotate them).
func securedNode(t *testing.T, ca *testcerts.CA, edit func(*config.Config)) (n *Node, base, certFile, keyFile string) {
	t.Helper()
	b := testkafka.Start(t)
	orders, private := testkafka.Name(t, "orders"), testkafka.Name(t, "private")
	for _, topic := range []string{orders, private} {
		b.CreateTopic(t, topic, 2)
		testkafka.Produce(t, b.Client(t), &kgo.Record{Topic: topic, Key: []byte("k1"), Value: []byte(`{"v":1}`)})
	}
	dir := t.TempDir()
	cfg := testutil.NodeConfig(t, testkafka.Name(t, "app"), b.Addrs)
	cfg.Stores = []config.Store{{Name: "orders", Topic: orders}, {Name: "private", Topic: private}}
	cfg.Advertise = "https://127.0.0.1:0"
	certFile, keyFile = ca.Node(t, "n1").WriteFiles(t, dir, "node")
	cfg.Server.TLS = config.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: ca.WriteFile(t, dir, "ca.crt"), PeerCAFile: ca.WriteFile(t, dir, "peer-ca.crt")}
	cfg.Cluster.Secret = "the node's cluster secret, at least 32 characters"
	edit(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n, "https://" + n.Addr().String(), certFile, keyFile
}

// caller is an HTTPS client trusting ca, presenting cert (nil: none) and
// an Authorization header (empty: none).
type caller struct {
	c      *http.Client
	header string
}

func newCaller(ca *testcerts.CA, cert *testcerts.Leaf, header string) caller {
	cfg := &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.Pair}
	}
	return caller{&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}, header}
}

func (c caller) get(url string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if c.header != "" {
		req.Header.Set("Authorization", c.header)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// TestEveryEndpointNeedsTheRightIdentity: on a node configured for each
// kind of identity (bearer token, JWT, client certificate), every data,
// metadata and internal endpoint answers 401 without credentials, 403 with
// credentials for another store (or without metadata access), and answers
// with the right ones; internal endpoints answer no client at all; health
// stays open.
func TestEveryEndpointNeedsTheRightIdentity(t *testing.T) {
	ca := testcerts.NewCA(t, "test CA")
	signer := testcerts.NewRSA(t, "k1")
	jwksFile := testcerts.WriteFile(t, t.TempDir(), "jwks.json", testcerts.JWKS(t, signer))
	sum := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	kinds := map[string]struct {
		edit                func(*config.Config)
		none, reader, admin caller
	}{
		"bearer token": {
			edit: func(c *config.Config) {
				c.Auth.Tokens = []config.TokenIdentity{
					{Name: "reader", SHA256: sum("reader-token"), Scopes: config.Scopes{Stores: []string{"orders"}}},
					{Name: "admin", SHA256: sum("admin-token"), Scopes: config.Scopes{Stores: []string{"*"}, Metadata: true}},
				}
			},
			none: newCaller(ca, nil, ""), reader: newCaller(ca, nil, "Bearer reader-token"), admin: newCaller(ca, nil, "Bearer admin-token"),
		},
		"JWT": {
			edit: func(c *config.Config) {
				c.Auth.JWT = config.JWTAuth{JWKSFile: jwksFile, Issuer: "https://idp.test", Audience: "iqengine", Leeway: config.Duration(time.Second)}
			},
			none:   newCaller(ca, nil, ""),
			reader: newCaller(ca, nil, "Bearer "+signer.Sign(t, testcerts.Claims("https://idp.test", "iqengine", "reader", "iqengine:read:orders"))),
			admin:  newCaller(ca, nil, "Bearer "+signer.Sign(t, testcerts.Claims("https://idp.test", "iqengine", "admin", "iqengine:read:* iqengine:metadata"))),
		},
		"client certificate": {
			edit: func(c *config.Config) {
				c.Auth.ClientCerts = []config.CertIdentity{
					{Subject: "reader", Scopes: config.Scopes{Stores: []string{"orders"}}},
					{Subject: "admin", Scopes: config.Scopes{Stores: []string{"*"}, Metadata: true}},
				}
			},
			none: newCaller(ca, nil, ""), reader: newCaller(ca, ca.Client(t, "reader"), ""), admin: newCaller(ca, ca.Client(t, "admin"), ""),
		},
	}
	type want struct{ none, reader, admin int }
	data, other, meta, internal, open := want{401, 200, 200}, want{401, 403, 200}, want{401, 403, 200}, want{401, 401, 401}, want{200, 200, 200}
	endpoints := []struct {
		path string
		want want
	}{
		{"/v1/stores/orders/keys/k1", data},
		{"/v1/stores/orders/keys?limit=5", data},
		{"/v1/stores/orders/count", data},
		{"/v1/stores/private/keys/k1", other},
		{"/v1/stores/private/keys?limit=5", other},
		{"/v1/stores/private/count", other},
		{"/v1/stores", want{401, 200, 200}},
		{"/v1/metadata/partitions", meta},
		{"/v1/metadata/instances", meta},
		{"/v1/metadata/stores/orders/keys/k1", meta},
		{"/v1/info", meta},
		{"/metrics", meta},
		{"/v1/internal/stores/orders/partitions/0/get?key=azE", internal},
		{"/v1/internal/stores/orders/partitions/0/scan?limit=5", internal},
		{"/v1/internal/stores/orders/partitions/0/count", internal},
		{"/v1/internal/partitions", internal},
		{"/healthz", open},
	}
	for name, k := range kinds {
		t.Run(name, func(t *testing.T) {
			_, base, _, _ := securedNode(t, ca, k.edit)
			testutil.WaitForNil(t, 30*time.Second, "k1 is served", func() error {
				status, body, err := k.admin.get(base + "/v1/stores/orders/keys/k1")
				if err != nil || status != 200 {
					return fmt.Errorf("%d %v %s", status, err, body)
				}
				return nil
			})
			for _, e := range endpoints {
				for _, who := range []struct {
					name   string
					c      caller
					status int
				}{{"nobody", k.none, e.want.none}, {"reader of orders", k.reader, e.want.reader}, {"admin", k.admin, e.want.admin}} {
					status, body, err := who.c.get(base + e.path)
					if err != nil || status != who.status {
						t.Errorf("GET %s as %s: %d %v %s, want %d", e.path, who.name, status, err, body, who.status)
					}
				}
			}
		})
	}
}

// TestTLSListener: a client that does not trust the node's CA cannot
// connect, and a certificate rotated on disk is served to the next
// connection without a restart.
func TestTLSListener(t *testing.T) {
	ca := testcerts.NewCA(t, "test CA")
	_, base, certFile, keyFile := securedNode(t, ca, func(c *config.Config) {})
	stranger := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	if _, err := stranger.Get(base + "/healthz"); err == nil {
		t.Fatal("a client without the CA connected")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA: %v, want a certificate error", err)
	}
	serial := func() string {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{RootCAs: ca.Pool})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	next := ca.Node(t, "n1")
	// The key first, then the certificate: between the two writes the
	// files do not match, and the node keeps serving the old pair.
	if err := os.WriteFile(keyFile, next.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, next.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the rotated certificate is served", func() bool { return serial() == next.Cert.SerialNumber.String() })
	if before == next.Cert.SerialNumber.String() {
		t.Fatal("the same serial twice")
	}
	// Plain HTTP to the HTTPS port fails.
	if status, _, err := testutil.Get(http.DefaultClient, strings.Replace(base, "https://", "http://", 1)+"/healthz"); err == nil && status == 200 {
		t.Error("plain HTTP answered 200")
	}
	var ce *tls.CertificateVerificationError
	_, err := stranger.Get(base + "/healthz")
	if !errors.As(err, &ce) {
		t.Errorf("a client without the CA: %v", err)
	}
}

// TestSeparateInternalListener: with server.internal_listen, two nodes
// call each other on their internal listeners only: the public listener
// answers no internal endpoint, the internal one no public endpoint, and
// every key answers through either node.
func TestSeparateInternalListener(t *testing.T) {
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "orders")
	b.CreateTopic(t, topic, 6)
	var recs []*kgo.Record
	for i := range 60 {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%02d", i), Value: fmt.Appendf(nil, `{"v":%d}`, i)})
	}
	testkafka.Produce(t, b.Client(t), recs...)
	group := testkafka.Name(t, "app")
	var nodes []*Node
	for _, id := range []string{"n1", "n2"} {
		cfg := testutil.NodeConfig(t, group, b.Addrs)
		cfg.NodeID = id
		cfg.Stores = []config.Store{{Name: "orders", Topic: topic}}
		cfg.Server.InternalListen = "127.0.0.1:0"
		cfg.Advertise = "http://127.0.0.1:0"
		cfg.Cluster.Secret = "the nodes' cluster secret, at least 32 characters"
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		n, err := Start(context.Background(), cfg, WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		if strings.HasSuffix(n.URL(), n.Addr().String()) {
			t.Fatalf("advertised %s is the public listener", n.URL())
		}
	}
	forwarded := 0
	testutil.WaitForNil(t, 60*time.Second, "every key through every node", func() error {
		forwarded = 0
		for _, n := range nodes {
			for i := range 60 {
				status, body, err := testutil.Get(http.DefaultClient, fmt.Sprintf("http://%s/v1/stores/orders/keys/k%02d", n.Addr(), i))
				if err != nil || status != 200 || !strings.Contains(string(body), fmt.Sprintf(`"value":{"v":%d}`, i)) {
					return fmt.Errorf("k%02d via %s: %d %v %s", i, n.cfg.NodeID, status, err, body)
				}
				if !strings.Contains(string(body), `"served_by":"`+n.cfg.NodeID+`"`) {
					forwarded++
				}
			}
		}
		return nil
	})
	if forwarded == 0 {
		t.Fatal("no lookup was forwarded: both nodes held every partition")
	}
	n := nodes[0]
	for _, c := range []struct {
		url    string
		status int
	}{
		{"http://" + n.Addr().String() + "/v1/internal/partitions", 404},
		{"http://" + n.Addr().String() + "/v1/internal/stores/orders/partitions/0/count", 404},
		{n.URL() + "/v1/stores/orders/keys/k01", 404},
		{n.URL() + "/healthz", 404},
		{n.URL() + "/v1/internal/partitions", 401}, // unsigned
	} {
		if status, body, err := testutil.Get(http.DefaultClient, c.url); err != nil || status != c.status {
			t.Errorf("GET %s: %d %v %s, want %d", c.url, status, err, body, c.status)
		}
	}
}
