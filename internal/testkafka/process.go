//go:build unix

package testkafka

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The processes of a node: each node's home holds its pid file, and a
// process counts as the node's only while its command line names the
// node's server.properties, so a pid the system has given to another
// program since is never signalled.

// exited holds, for each broker this process started, a channel closed
// when it exits: a child that has exited but is not waited for stays a
// zombie, which signal 0 would still find.
var exited sync.Map // pid → chan struct{}

// launch starts a node's command in its own session, so that it outlives
// the program that started it and no signal meant for that program's
// terminal reaches it, with its output appended to kafka.out; it records
// the pid in kafka.pid.
func launch(home string, argv []string) error {
	out, err := os.OpenFile(filepath.Join(home, "kafka.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	exited.Store(cmd.Process.Pid, done)
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return writeFile(filepath.Join(home, "kafka.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"))
}

// runningPid returns the pid of the node in home if it runs.
func runningPid(home string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(home, "kafka.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, alive(pid, home)
}

func alive(pid int, home string) bool {
	if done, ok := exited.Load(pid); ok {
		select {
		case <-done.(chan struct{}):
			return false
		default:
			return true
		}
	}
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	if !isFile("/proc/self/cmdline") {
		return true // no /proc to check the command line with
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cmdline, []byte("\x00"+propsFile(home)+"\x00"))
}

// kill sends sig to the node in home if it runs, and reports whether it did.
func kill(home string, sig syscall.Signal) (int, bool) {
	pid, ok := runningPid(home)
	if ok {
		_ = syscall.Kill(pid, sig)
	}
	return pid, ok
}

// waitExit waits until pid, the node in home, has exited or ctx ends.
func waitExit(ctx context.Context, pid int, home string) error {
	for alive(pid, home) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// lock takes the state directory's lock, which every change of the
// cluster holds, so that two programs do not start or stop it at once.
func lock(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// freePorts returns n distinct ports that were free on 127.0.0.1: all are
// held at once so that none is returned twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// accepts reports whether addr takes TCP connections.
func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// writeFile replaces path with data at once: a reader sees the old content
// or the new, never a part.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
