package store

import (
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/iqengine/iqengine/internal/lograte"
)

// The defaults of Options.LargeCompactionTime and LargeCompactionBytes.
const (
	defaultLargeCompactionTime  = 10 * time.Second
	defaultLargeCompactionBytes = 256 << 20
)

// compactionLog logs the compactions over Options' thresholds, at most one
// line a minute: a restore or a wipe sets off a run of them, and one line
// with the count of the others says as much.
type compactionLog struct {
	log   *slog.Logger
	time  time.Duration
	bytes uint64
	rate  *lograte.Limiter
}

func newCompactionLog(o Options) *compactionLog {
	c := &compactionLog{log: o.Logger, time: o.LargeCompactionTime, bytes: uint64(o.LargeCompactionBytes), rate: lograte.New(time.Minute)}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.time == 0 {
		c.time = defaultLargeCompactionTime
	}
	if c.bytes == 0 {
		c.bytes = defaultLargeCompactionBytes
	}
	return c
}

// end is Pebble's CompactionEnd event.
func (c *compactionLog) end(i pebble.CompactionInfo) {
	if i.Err != nil {
		return // Pebble reports a failed compaction as a background error
	}
	var read, written uint64
	for _, l := range i.Input {
		read += tablesSize(l.Tables)
	}
	if i.Reason != "move" { // a move changes a table's level, not its bytes
		written = tablesSize(i.Output.Tables)
	}
	if i.TotalDuration < c.time && written < c.bytes {
		return
	}
	held, ok := c.rate.Allow("compaction")
	if !ok {
		return
	}
	args := []any{"reason", i.Reason, "to_level", i.Output.Level, "read_bytes", read, "written_bytes", written,
		"duration", i.TotalDuration.Round(time.Millisecond).String()}
	if held > 0 {
		args = append(args, "repeated", held)
	}
	c.log.Info("pebble: large compaction", args...)
}

func tablesSize(tables []pebble.TableInfo) uint64 {
	var n uint64
	for _, t := range tables {
		n += t.Size
	}
	return n
}
