package plugins

import (
	"context"
	"os"
	"time"
)

// Watch checks the module's file every interval and replaces the module
// when the file has changed and then stayed unchanged for one interval (so
// a file being copied in is not read half-written). A file that does not
// load is refused, logged and counted once per change; the old version
// keeps serving. Watch returns when ctx ends.
func (m *Module) Watch(ctx context.Context, path string, interval time.Duration) {
	log := m.h.opts.Logger
	type stamp struct {
		size int64
		mod  time.Time
	}
	read := func() (stamp, bool) {
		fi, err := os.Stat(path)
		if err != nil {
			return stamp{}, false
		}
		return stamp{fi.Size(), fi.ModTime()}, true
	}
	done, _ := read() // the version Load was given
	var pending stamp
	missing := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, ok := read()
		if !ok {
			if !missing {
				log.Warn("plugin file is gone; the loaded version keeps serving", "plugin", m.name, "path", path)
			}
			missing = true
			continue
		}
		missing = false
		if st == done {
			continue
		}
		if st != pending {
			pending = st // changed: wait one interval for it to settle
			continue
		}
		done = st
		bin, err := os.ReadFile(path)
		if err != nil {
			log.Warn("plugin file unreadable; the loaded version keeps serving", "plugin", m.name, "path", path, "err", err)
			continue
		}
		if shortHash(bin) == m.Hash() {
			continue // touched, same code
		}
		_ = m.Replace(ctx, bin) // logs and counts either way
	}
}
