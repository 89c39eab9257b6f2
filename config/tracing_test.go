package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tracing section: an endpoint is a collector's base URL, the ratio a
// share, the service named; each mistake names its field.
func TestTracingSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	for _, c := range []struct{ yaml, want string }{
		{"{}", ""},
		{"{otlp_endpoint: http://otel-collector:4318, sample_ratio: 0.25, service_name: orders-api}", ""},
		{"{otlp_endpoint: https://otel.example.com/otlp/}", ""},
		{"{otlp_endpoint: otel-collector:4318}", `tracing.otlp_endpoint: "otel-collector:4318" is not an http(s) URL`},
		{"{otlp_endpoint: http://otel-collector:4318/v1/traces}", "tracing.otlp_endpoint: \"http://otel-collector:4318/v1/traces\": give the collector's base URL; /v1/traces is added"},
		{"{sample_ratio: 1.5}", "tracing.sample_ratio: 1.5 is not between 0 and 1"},
		{"{sample_ratio: -0.1}", "tracing.sample_ratio: -0.1 is not between 0 and 1"},
		{"{sample_ratio: .nan}", "tracing.sample_ratio: NaN is not between 0 and 1"},
		{`{service_name: ""}`, "tracing.service_name: must not be empty"},
		{"{endpoint: http://x:4318}", "field endpoint not found"},
	} {
		body := "tracing: " + c.yaml + "\nstores: [{name: a, topic: a}]\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err == nil {
			err = cfg.Validate()
		}
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.yaml, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: err = %v, want %q", c.yaml, err, c.want)
		}
	}
}
