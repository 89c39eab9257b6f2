package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/state"
)

// rewrite writes 300 keys of 1 KiB into p twice, flushing each time, and
// compacts the store: two overlapping level-0 tables merged into one of
// about 300 KiB.
func rewrite(t *testing.T, d *DB, p state.Partition) {
	t.Helper()
	for round := range 2 {
		b := d.NewBatch(p)
		for i := range 300 {
			k := fmt.Appendf(nil, "k-%03d", i)
			if err := b.Set(k, testutil.JSONValue(k, 1024), int64(round*300+i), 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(Checkpoint{Offset: int64(round*300 + 299)}); err != nil {
			t.Fatal(err)
		}
		if err := d.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
}

// A compaction that writes more than LargeCompactionBytes is logged at
// info, as one JSON line with what it did; the next ones within the
// minute are held back, and compactions under the thresholds are not
// logged at all.
func TestLargeCompactionsLogged(t *testing.T) {
	p := state.Partition{Topic: "t", Partition: 0}
	open := func(large int64) (*DB, *testutil.Buffer) {
		var logs testutil.Buffer
		d, err := Open(Options{Dir: "db", FS: vfs.NewMem(), CacheSize: 1 << 20, MemTableSize: 4 << 20, LargeCompactionBytes: large,
			Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d, &logs
	}

	d, logs := open(64 << 10)
	rewrite(t, d, p)
	rewrite(t, d, p)
	var compactions []map[string]any
	for line := range strings.Lines(logs.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("a log line is not JSON: %v: %q", err, line)
		}
		if r["msg"] == "pebble: large compaction" {
			compactions = append(compactions, r)
		}
	}
	if len(compactions) != 1 {
		t.Fatalf("%d large compactions logged, want 1 (the second within the minute held back):\n%s", len(compactions), logs)
	}
	c := compactions[0]
	if c["level"] != "INFO" || c["written_bytes"].(float64) < 200<<10 || c["read_bytes"].(float64) < 200<<10 ||
		c["reason"] == "" || c["duration"] == "" || c["to_level"] == nil {
		t.Errorf("logged %v, want info with the reason, levels, bytes read and written (over 200 KiB) and duration", c)
	}

	d, logs = open(0) // the defaults: 10s or 256 MiB
	rewrite(t, d, p)
	if strings.Contains(logs.String(), "large compaction") {
		t.Errorf("a compaction under the default thresholds was logged:\n%s", logs)
	}
}
