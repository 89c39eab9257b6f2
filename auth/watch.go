package auth

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// checkEvery is how often, at most, a watched value looks at its files
// again.
const checkEvery = time.Second

// watched is a value loaded from files, and loaded again when their content
// changes: the files are read again at most once every checkEvery, by
// whichever caller asks for the value then (no goroutine). A load that
// fails keeps the value in use and logs one line; it is not tried again
// until the files change again.
type watched[T any] struct {
	what  string // what the value is, for logs
	files []file
	load  func(data [][]byte) (T, error)
	log   *slog.Logger
	every time.Duration

	mu      sync.Mutex
	cur     T
	seen    [][]byte // the files' content at the last load, successful or not
	checked time.Time
	readErr string // the last read error logged, so that it is logged once
	// loaded, when set, is called after a successful reload (not the
	// first load).
	loaded func(T)
}

// file is a file a watched value is loaded from.
type file struct {
	field string // its config field, which read errors name
	path  string
}

// newWatched loads the value a first time, and returns the error of that
// load: load's own, or a read error naming the file's field.
func newWatched[T any](what string, log *slog.Logger, load func([][]byte) (T, error), files ...file) (*watched[T], error) {
	w := &watched[T]{what: what, files: files, load: load, log: log, every: checkEvery}
	data, err := readFiles(files)
	if err != nil {
		return nil, err
	}
	v, err := load(data)
	if err != nil {
		return nil, err
	}
	w.cur, w.seen, w.checked = v, data, time.Now()
	return w, nil
}

// get is the current value, after loading the files again if they changed
// and were last looked at over w.every ago.
func (w *watched[T]) get() T {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if now.Sub(w.checked) < w.every {
		return w.cur
	}
	w.checked = now
	data, err := readFiles(w.files)
	if err != nil {
		if msg := err.Error(); msg != w.readErr {
			w.readErr = msg
			w.log.Warn("cannot read "+w.what+" again; keeping the one loaded", "err", msg)
		}
		return w.cur
	}
	w.readErr = ""
	if sameContent(data, w.seen) {
		return w.cur
	}
	w.seen = data
	v, err := w.load(data)
	if err != nil {
		w.log.Warn(w.what+" changed but does not load; keeping the one loaded", "err", err.Error())
		return w.cur
	}
	w.cur = v
	if w.loaded != nil {
		w.loaded(v)
	}
	return v
}

func readFiles(files []file) ([][]byte, error) {
	data := make([][]byte, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.field, err)
		}
		data[i] = b
	}
	return data, nil
}

func sameContent(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
