package engine

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iqengine/iqengine/internal/testutil"
)

// A full disk does not fail Pebble's writes, it stalls them. The node whose
// disk fills must take itself out within the stall timeout: not ready, an
// error for /healthz, out of the group so the other node takes its
// partitions (and answers every key right), and a log that says so in a
// bounded number of lines.
// A disk that fills is noticed before it is full: the node leaves while
// Pebble can still write (a WAL that cannot be written or closed breaks it
// past repair, some of it in panics no caller can recover).
func TestNearlyFullDiskTakesTheNodeOut(t *testing.T) {
	fs := &filling{FS: vfs.Default}
	fullDisk(t, fs, fs.fill)
}

// A disk full for the tables only (say, the WAL on a disk of its own) fails
// every flush, which Pebble retries while the memtables fill and writes
// wait: the stall timeout takes the node out.
func TestStalledWritesTakeTheNodeOut(t *testing.T) {
	full := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && strings.HasSuffix(op.Path, ".sst") {
			return syscall.ENOSPC
		}
		return nil
	})}
	// Pebble retries the failing flushes in a tight loop: give it a disk
	// again at the end, so the rest of the tests do not share the CPU with it.
	defer full.Off()
	sick := fullDisk(t, errorfs.Wrap(vfs.Default, full), full.On)
	// The failing flushes and the stall they cause are seen, and counted.
	errs, stalls := promtest.ToFloat64(sick.m.storeErrors), promtest.ToFloat64(sick.m.writeStalls)
	t.Logf("store background errors %v, write stalls %v", errs, stalls)
	if errs == 0 || stalls == 0 {
		t.Fatalf("store background errors %v, write stalls %v: want both counted", errs, stalls)
	}
}

// filling is a file system whose free space runs out when fill is called.
type filling struct {
	vfs.FS
	full atomic.Bool
}

func (f *filling) fill() { f.full.Store(true) }

func (f *filling) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	u, err := f.FS.GetDiskUsage(path)
	if f.full.Load() {
		u.AvailBytes = 10 << 20
	}
	return u, err
}

// fullDisk runs two nodes, the first on fs, fills fs's disk, and checks
// that the first takes itself out and the second takes over.
func fullDisk(t *testing.T, fs vfs.FS, fill func()) *Engine {
	w := seedTopic(t, "full", 6, 13, 3_000, 500)
	b, topic, group := w.b, w.topic, w.group

	var logs testutil.Buffer
	const stall = 2 * time.Second
	sick := startNode(t, b, group, topic, fs, t.TempDir(), func(c *Config) {
		c.NodeID, c.InstanceID, c.StallTimeout, c.MinFreeSpace = "sick", "sick", stall, 64<<20
		c.Store.MemTableSize = 1 << 20
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	waitCaughtUp(t, b, sick.e, topic)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sick.e.Stop(ctx) // after the test's defers: its disk may work again
	})
	well := startNode(t, b, group, topic, nil, t.TempDir(), func(c *Config) {
		c.NodeID, c.InstanceID = "well", "well"
	})
	defer well.stop()
	testutil.WaitFor(t, 30*time.Second, "the second node gets partitions", func() bool { return len(well.e.Partitions()) > 0 })

	fill()
	filled := time.Now()
	// Enough to fill the memtables, so that writes must wait for a flush.
	w.write(t, 40_000, 500)
	select {
	case <-sick.e.Failed():
	case <-time.After(stall + 30*time.Second):
		t.Fatalf("the node with a full disk did not fail within 30s of the stall timeout %v", stall)
	}
	t.Logf("failed %v after the disk filled: %v", time.Since(filled).Round(time.Millisecond), sick.e.Err())
	if sick.e.Ready() {
		t.Fatal("a failed node reports ready")
	}

	// Its partitions move to the other node, which answers every key.
	waitCaughtUp(t, b, well.e, topic)
	checkModel(t, well.e, topic, w.m)

	// Pebble retries a failed flush in a tight loop: its errors must not
	// flood the log. The sleep is the behaviour under test: the log stays
	// short over two more seconds of those retries.
	time.Sleep(2 * time.Second)
	lines := strings.Count(logs.String(), "\n")
	t.Logf("the failed node logged %d lines", lines)
	if lines > 100 {
		t.Fatalf("the failed node logged %d lines:\n%.4000s", lines, logs.String())
	}
	return sick.e
}
