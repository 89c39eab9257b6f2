// Package logging builds a node's loggers from its log configuration: the
// handler `iqengine serve` writes (text or JSON), the level filters the
// node applies to its own events and to its Kafka client's, and the
// adapter that brings the Kafka client's log (franz-go's, through its slog
// plugin) into the node's, with component=kafka and its repeated warnings
// held back.
//
// It knows nothing of what the node does; only how its log is written.
package logging

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/lograte"
)

// kafkaRepeatEvery is how often one Kafka client warning or error (one
// message about one broker address) gets through: a broker that is down
// makes every client retry, and log, several times a second.
const kafkaRepeatEvery = 10 * time.Second

// New returns the logger `iqengine serve` writes to w, in c.Format. It
// passes the more verbose of c.Level and c.KafkaLevel: ForNode filters
// each part at its own. c must be valid (config.Config.Validate).
func New(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: min(level(c.Level), level(c.KafkaLevel))}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ForNode splits base into the node's logger, which keeps records at
// c.Level and above, and its Kafka clients' logger (see Kafka), which
// keeps franz-go's at c.KafkaLevel and above. base's own handler still
// drops what it does not want. c must be valid.
func ForNode(base *slog.Logger, c config.Log) (*slog.Logger, *Kafka) {
	kafka := atLeastOf(base, level(c.KafkaLevel)).With("component", "kafka")
	return atLeastOf(base, level(c.Level)), &Kafka{slog: kslog.New(kafka), rate: lograte.New(kafkaRepeatEvery)}
}

// atLeastOf returns log keeping only the records at min and above.
func atLeastOf(log *slog.Logger, min slog.Level) *slog.Logger {
	return slog.New(atLeast{Handler: log.Handler(), min: min})
}

func level(name string) slog.Level {
	l, err := config.LogLevel(name)
	if err != nil {
		panic("logging: an invalid log configuration: " + err.Error()) // Validate refuses it
	}
	return l
}

// atLeast is a handler that drops the records under min.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(attrs []slog.Attr) slog.Handler {
	return atLeast{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h atLeast) WithGroup(name string) slog.Handler {
	return atLeast{Handler: h.Handler.WithGroup(name), min: h.min}
}

// Kafka is the Kafka clients' logger (a kgo.Logger): franz-go's slog
// adapter, with component=kafka, and one warning or error per message and
// broker address every 10 seconds, with the count of those held back as
// "repeated". It logs nothing until Enable: until the node's startup
// check has passed, the check's one-line error says what the client's
// retries would (see package kafkaconn).
type Kafka struct {
	slog    *kslog.Logger
	rate    *lograte.Limiter
	enabled atomic.Bool
}

// Enable starts logging.
func (l *Kafka) Enable() { l.enabled.Store(true) }

// Level is the level franz-go logs at: none before Enable.
func (l *Kafka) Level() kgo.LogLevel {
	if !l.enabled.Load() {
		return kgo.LogLevelNone
	}
	return l.slog.Level()
}

// Log logs one of franz-go's records; franz-go calls it only at Level and
// above.
func (l *Kafka) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level == kgo.LogLevelError || level == kgo.LogLevelWarn {
		held, ok := l.rate.Allow(msg + " " + addr(keyvals))
		if !ok {
			return
		}
		if held > 0 {
			keyvals = append(keyvals, "repeated", held)
		}
	}
	l.slog.Log(level, msg, keyvals...)
}

// addr is the broker address among franz-go's key-value pairs, if any:
// the same failure at two brokers is two things to know.
func addr(keyvals []any) string {
	for i := 0; i+1 < len(keyvals); i += 2 {
		if keyvals[i] == "addr" {
			s, _ := keyvals[i+1].(string)
			return s
		}
	}
	return ""
}
