package kafkaconn

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/iqengine/iqengine/config"
)

// TestDialer checks the dialer's settings, which the client options hide.
func TestDialer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		k       config.Kafka
		timeout time.Duration
		tls     bool
	}{
		{"defaults", config.Kafka{}, defaultDialTimeout, false},
		{"dial_timeout", config.Kafka{DialTimeout: config.Duration(3 * time.Second)}, 3 * time.Second, false},
		{"enabled", config.Kafka{TLS: config.TLS{Enabled: true}}, defaultDialTimeout, true},
		{"server_name alone", config.Kafka{TLS: config.TLS{ServerName: "kafka.test"}}, defaultDialTimeout, false},
		{"insecure", config.Kafka{TLS: config.TLS{Enabled: true, InsecureSkipVerify: true}}, defaultDialTimeout, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := newDialer(tc.k)
			if err != nil {
				t.Fatal(err)
			}
			if d.net.Timeout != tc.timeout {
				t.Errorf("timeout %s, want %s", d.net.Timeout, tc.timeout)
			}
			if (d.tls != nil) != tc.tls {
				t.Fatalf("TLS on = %v, want %v", d.tls != nil, tc.tls)
			}
			if d.tls == nil {
				return
			}
			if d.tls.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion %x, want TLS 1.2", d.tls.MinVersion)
			}
			if d.tls.RootCAs != nil {
				t.Error("RootCAs set without ca_file: want the system roots")
			}
			if d.tls.InsecureSkipVerify != tc.k.TLS.InsecureSkipVerify {
				t.Errorf("InsecureSkipVerify = %v", d.tls.InsecureSkipVerify)
			}
		})
	}
	if _, err := newDialer(config.Kafka{DialTimeout: -1}); err == nil || err.Error() != "kafka.dial_timeout: must not be negative" {
		t.Errorf("negative dial_timeout: %v", err)
	}
}
