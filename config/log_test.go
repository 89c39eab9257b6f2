package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The log section: the formats and levels it accepts, and for anything
// else an error that names the field and says what it takes.
func TestLogSection(t *testing.T) {
	load := func(t *testing.T, log string) (Config, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(log+"\nstores: [{name: a, topic: a}]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err == nil {
			err = c.Validate()
		}
		return c, err
	}
	c, err := load(t, "log: {format: json, level: debug, kafka_level: error}")
	if err != nil || c.Log != (Log{Format: "json", Level: "debug", KafkaLevel: "error"}) {
		t.Fatalf("Load = %+v, %v", c.Log, err)
	}
	if c, err = load(t, ""); err != nil || c.Log != (Log{Format: "text", Level: "info", KafkaLevel: "warn"}) {
		t.Fatalf("defaults = %+v, %v", c.Log, err)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"log: {format: logfmt}", `log.format: "logfmt" is not text or json`},
		{"log: {level: verbose}", `log.level: "verbose" is not debug, info, warn or error`},
		{"log: {level: INFO}", `log.level: "INFO" is not debug, info, warn or error`},
		{"log: {kafka_level: trace}", `log.kafka_level: "trace" is not debug, info, warn or error`},
		{"log: {levl: info}", "field levl not found"},
	} {
		if _, err := load(t, bad.yaml); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err = %v, want %q", bad.yaml, err, bad.want)
		}
	}
	for name, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got, err := LogLevel(name); err != nil || got != want {
			t.Errorf("LogLevel(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
}
