package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Memory is a process's resident memory, from /proc/PID/status.
type Memory struct {
	// RSS is VmRSS, the resident set now; Peak is VmHWM, its high-water mark.
	RSS  int64 `json:"rss_bytes"`
	Peak int64 `json:"peak_rss_bytes"`
}

// ReadMemory reads VmRSS and VmHWM of process pid (Linux).
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (Memory, error) {
	var m Memory
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("status line %q: want N kB", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("status line %q: %w", sc.Text(), err)
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.Peak = kb << 10
		}
		seen++
	}
	if seen < 2 {
		return m, errors.New("no VmRSS and VmHWM in /proc status (a kernel thread, or not Linux)")
	}
	return m, nil
}

// ReadyOptions says when a system is ready: its readiness URL answers 200
// and then every probe URL answers 200.
type ReadyOptions struct {
	// URL is the readiness endpoint (iqengine: /readyz). Empty: probes only.
	URL string
	// Probes must all answer 200 after URL does: lookups of the last key
	// produced to each partition (see ProduceResult.LastKeys).
	Probes []string
	// InstancesURL and MinInstances, when set, also wait until the JSON at
	// InstancesURL has an "instances" array with at least MinInstances
	// entries that own something (hold a non-empty array): a cluster whose
	// partitions have been spread over its members.
	InstancesURL string
	MinInstances int
	// Poll is the time between attempts (default 50ms).
	Poll time.Duration
	// Client sends the requests (default a client with a 2 s timeout).
	Client *http.Client
}

// ReadyTimes is when a system answered: Up is the first HTTP answer of any
// status from URL, Ready its first 200, Probed when every probe answered
// 200 as well, each measured from start.
type ReadyTimes struct {
	Up     time.Duration
	Ready  time.Duration
	Probed time.Duration
}

// WaitReady polls until the system is ready or ctx ends. exited, when not
// nil, is closed when the process being waited for ends.
func WaitReady(ctx context.Context, start time.Time, o ReadyOptions, exited <-chan struct{}) (ReadyTimes, error) {
	var t ReadyTimes
	if o.Poll == 0 {
		o.Poll = 50 * time.Millisecond
	}
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	get := func(u string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err.Error()
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return -1, "" // given up: keep the last real answer
			}
			return 0, err.Error()
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	ready := o.URL == ""
	next := 0 // the first probe that has not answered 200
	var last string
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	for {
		if !ready {
			status, msg := get(o.URL)
			if status > 0 && t.Up == 0 {
				t.Up = time.Since(start)
			}
			if status == http.StatusOK {
				ready = true
				t.Ready = time.Since(start)
			} else if status >= 0 {
				last = fmt.Sprintf("%s: %d %s", o.URL, status, msg)
			}
		}
		if ready {
			for next < len(o.Probes) {
				status, msg := get(o.Probes[next])
				if status != http.StatusOK {
					if status >= 0 {
						last = fmt.Sprintf("%s: %d %s", o.Probes[next], status, msg)
					}
					break
				}
				next++
			}
			if next == len(o.Probes) {
				done := true
				if o.InstancesURL != "" {
					n, err := countOwners(ctx, client, o.InstancesURL)
					if err != nil || n < o.MinInstances {
						last = fmt.Sprintf("%s: %d of %d instances own partitions (err %v)", o.InstancesURL, n, o.MinInstances, err)
						done = false
						next = 0 // the probes again once the partitions have moved
					}
				}
				if done {
					t.Probed = time.Since(start)
					if o.URL == "" {
						t.Up, t.Ready = t.Probed, t.Probed
					}
					return t, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return t, fmt.Errorf("not ready (last answer %s): %w", last, context.Cause(ctx))
		case <-exited:
			return t, fmt.Errorf("the process exited before it was ready; last answer %s", last)
		case <-tick.C:
		}
	}
}

// countOwners counts the entries of the "instances" array at u that hold a
// non-empty array somewhere (their partitions).
func countOwners(ctx context.Context, client *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	var doc struct {
		Instances []any `json:"instances"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return 0, err
	}
	n := 0
	for _, in := range doc.Instances {
		if ownsSomething(in) {
			n++
		}
	}
	return n, nil
}

func ownsSomething(v any) bool {
	switch x := v.(type) {
	case []any:
		return len(x) > 0
	case map[string]any:
		for _, e := range x {
			if ownsSomething(e) {
				return true
			}
		}
	}
	return false
}

// WatchPID returns a channel that is closed when process pid no longer runs
// (it is gone or a zombie), checked every 100ms until ctx ends.
func WatchPID(ctx context.Context, pid int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if !running(pid) {
				close(done)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return done
}

func running(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...: comm may contain spaces and parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// Command is the program and its arguments, started with Env added to
	// this process's environment. Its output goes to Log (default discarded).
	Command []string
	Env     []string
	Log     io.Writer
	// Wipe, when set, is removed and re-created empty before the start: the
	// system's state directory, so it starts from nothing.
	Wipe string
	// Ready says when it is restored.
	Ready ReadyOptions
	// Timeout bounds the wait (default 10 minutes).
	Timeout time.Duration
	// Records is the number of records restored, for a records/s figure.
	Records int
	// Settle, when positive, waits this long after ready and reads the
	// memory again (RSSAfterSettle).
	Settle time.Duration
	// StopTimeout is how long the process has to exit after SIGTERM before
	// it is killed (default 30s).
	StopTimeout time.Duration
}

// RestoreResult is what Restore measured, in seconds from the start of the
// process.
type RestoreResult struct {
	Kind    string   `json:"kind"` // "restore"
	Command []string `json:"command"`
	Records int      `json:"records,omitempty"`
	// UpSeconds is when the readiness URL first answered at all (the
	// process is up: for a JVM, start-up is done).
	UpSeconds float64 `json:"up_seconds"`
	// ReadySeconds is when it first answered 200.
	ReadySeconds float64 `json:"ready_seconds"`
	// Seconds is when every probe answered 200 as well: restored.
	Seconds          float64 `json:"seconds"`
	RecordsPerSecond float64 `json:"records_per_second,omitempty"`
	// Memory at Seconds, and after Settle.
	Memory            Memory  `json:"memory"`
	MemoryAfterSettle *Memory `json:"memory_after_settle,omitempty"`
	SettleSeconds     float64 `json:"settle_seconds,omitempty"`
	// StopSeconds is how long the process took to exit after SIGTERM.
	StopSeconds float64 `json:"stop_seconds"`
}

// Restore starts the command (after wiping its state), waits until it is
// ready, reads its memory, stops it with SIGTERM and reports the times.
func Restore(ctx context.Context, o RestoreOptions) (*RestoreResult, error) {
	if len(o.Command) == 0 {
		return nil, errors.New("restore: no command")
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 30 * time.Second
	}
	if o.Wipe != "" {
		if err := os.RemoveAll(o.Wipe); err != nil {
			return nil, fmt.Errorf("restore: wipe %s: %w", o.Wipe, err)
		}
		if err := os.MkdirAll(o.Wipe, 0o755); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	cmd := exec.Command(o.Command[0], o.Command[1:]...)
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	// The child dies with us, whatever happens to us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stopped := false
	stop := func() time.Duration {
		if stopped {
			return 0
		}
		stopped = true
		t := time.Now()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(o.StopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
		return time.Since(t)
	}
	defer stop()

	wctx, cancel := context.WithTimeoutCause(ctx, o.Timeout, fmt.Errorf("gave up after %v", o.Timeout))
	defer cancel()
	times, err := WaitReady(wctx, start, o.Ready, exited)
	if err != nil {
		select {
		case <-exited:
			return nil, fmt.Errorf("restore: %s: %w (%v)", o.Command[0], err, waitErr)
		default:
		}
		return nil, fmt.Errorf("restore: %s: %w", o.Command[0], err)
	}
	res := &RestoreResult{
		Kind: "restore", Command: o.Command, Records: o.Records,
		UpSeconds: times.Up.Seconds(), ReadySeconds: times.Ready.Seconds(), Seconds: times.Probed.Seconds(),
	}
	if o.Records > 0 && res.Seconds > 0 {
		res.RecordsPerSecond = float64(o.Records) / res.Seconds
	}
	if res.Memory, err = ReadMemory(cmd.Process.Pid); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if o.Settle > 0 {
		select {
		case <-time.After(o.Settle):
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-exited:
			return nil, fmt.Errorf("restore: the process exited while settling: %v", waitErr)
		}
		m, err := ReadMemory(cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		res.MemoryAfterSettle = &m
		res.SettleSeconds = o.Settle.Seconds()
	}
	res.StopSeconds = stop().Seconds()
	return res, nil
}
