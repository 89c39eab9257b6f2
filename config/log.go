package config

import (
	"fmt"
	"log/slog"
)

// Log is what the node logs, and how.
type Log struct {
	// Format is how `iqengine serve` writes its log to stderr: "text"
	// (key=value lines) or "json" (one JSON object per line, for a log
	// collector). A program that embeds a node formats its own logger
	// (node.WithLogger); the levels below still filter what reaches it.
	// Default "text".
	Format string `yaml:"format"`
	// Level is the least severe of the node's own events that is logged:
	// debug, info, warn or error. Default "info".
	Level string `yaml:"level"`
	// KafkaLevel is the same for the Kafka client's own log (franz-go:
	// connections, the group's joins and rebalances, retries), which comes
	// with the attribute component=kafka. Its info level tells every step
	// of every group join and its debug level every request, so it is
	// kept apart from Level. Default "warn".
	KafkaLevel string `yaml:"kafka_level"`
}

// logLevels are the level names Log accepts.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// LogLevel is the slog level of a level name that Validate accepts
// (debug, info, warn, error); any other name is an error.
func LogLevel(name string) (slog.Level, error) {
	l, ok := logLevels[name]
	if !ok {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", name)
	}
	return l, nil
}

func (c *Config) checkLog(p *problems) {
	switch c.Log.Format {
	case "text", "json":
	default:
		p.add("log.format", "%q is not text or json", c.Log.Format)
	}
	if _, err := LogLevel(c.Log.Level); err != nil {
		p.add("log.level", "%v", err)
	}
	if _, err := LogLevel(c.Log.KafkaLevel); err != nil {
		p.add("log.kafka_level", "%v", err)
	}
}
