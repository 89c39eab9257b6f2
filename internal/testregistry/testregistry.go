//go:build unix

// Package testregistry runs a real Schema Registry for the tests: Apicurio
// Registry 3.3.3's ready distribution (io.apicurio:apicurio-registry-app,
// tar.gz, classifier all) from Maven Central, on 127.0.0.1 with its
// in-memory storage, its Confluent-compatible API at /apis/ccompat/v7. It
// runs in the background, past the program that started it, with its state
// (pid, URL, log) in a directory (.registry at the top of the repository,
// or IQENGINE_REGISTRY_DIR) until Stop. The cmd/registry command wraps it
// for make and CI; tests find it with Running.
//
// Apicurio 3 needs Java 21 or newer, where the project's Java is 17: the
// JDK is found at run time (JAVA21_HOME, else a JDK of 21 or newer under
// /usr/lib/jvm, else java on PATH if it is new enough).
package testregistry

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Version is the Apicurio Registry release the tests run.
const Version = "3.3.3"

// Environment variables.
const (
	// EnvRegistry points tests at the running registry's ccompat URL, as
	// `make registry-test` sets it.
	EnvRegistry = "IQENGINE_TEST_REGISTRY"
	// EnvDir overrides the state directory.
	EnvDir = "IQENGINE_REGISTRY_DIR"
	// EnvJava21 names a JDK of 21 or newer.
	EnvJava21 = "JAVA21_HOME"
	// EnvCache overrides where the distribution is kept
	// ($HOME/.cache/iqengine/apicurio).
	EnvCache = "IQENGINE_REGISTRY_CACHE"
)

// CompatPath is the Confluent-compatible API under the registry's root.
const CompatPath = "/apis/ccompat/v7"

// Registry is a running Apicurio Registry.
type Registry struct {
	dir string
	// URL is the Confluent-compatible API's base URL.
	URL string
	pid int
}

// Dir is the state directory named by IQENGINE_REGISTRY_DIR, or else
// .registry at the top of the repository.
func Dir() (string, error) {
	if dir := os.Getenv(EnvDir); dir != "" {
		return filepath.Abs(dir)
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".registry"), nil
}

// Running returns the registry the tests run against (IQENGINE_TEST_REGISTRY
// is its URL, as `make registry-test`, which CI runs, sets it). Without it, t
// is skipped, as the test brokers' tests are; with it set but no such
// registry running, t fails under CI=true (a broken setup must not pass).
func Running(t testing.TB) *Registry {
	t.Helper()
	const how = "needs the registry of `go run ./internal/testregistry/cmd/registry start`, as `make registry-test` runs it"
	url := os.Getenv(EnvRegistry)
	if url == "" {
		// As with the test brokers: only make registry-test (which CI
		// runs) starts it and sets the variable.
		t.Skipf("%s (%s is not set)", how, EnvRegistry)
		return nil
	}
	// Asked for a registry that is not there: a broken setup, which CI
	// must not mistake for a pass.
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	r, err := Open("")
	if err == nil && r.URL != url {
		err = fmt.Errorf("it runs at %s", r.URL)
	}
	if err != nil {
		skip("%s (%s=%s: %v)", how, EnvRegistry, url, err)
		return nil
	}
	return r
}

// Open returns the registry running in dir (Dir() if empty), or an error
// saying why there is none.
func Open(dir string) (*Registry, error) {
	if dir == "" {
		var err error
		if dir, err = Dir(); err != nil {
			return nil, err
		}
	}
	pid, ok := runningPid(dir)
	if !ok {
		return nil, fmt.Errorf("no registry runs in %s", dir)
	}
	url, err := os.ReadFile(filepath.Join(dir, "url"))
	if err != nil {
		return nil, err
	}
	return &Registry{dir: dir, URL: strings.TrimSpace(string(url)), pid: pid}, nil
}

// Start starts the registry in dir (Dir() if empty), fetching the
// distribution the first time (what that says goes to progress), and waits
// until its API answers or ctx ends. A registry already running there is
// returned as it is.
func Start(ctx context.Context, dir string, progress io.Writer) (*Registry, error) {
	if dir == "" {
		var err error
		if dir, err = Dir(); err != nil {
			return nil, err
		}
	}
	if r, err := Open(dir); err == nil {
		return r, r.wait(ctx)
	}
	java, err := Java21()
	if err != nil {
		return nil, err
	}
	home, err := Fetch(ctx, progress)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(dir, "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(java,
		"-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dquarkus.http.host=127.0.0.1",
		"-Dquarkus.http.port="+strconv.Itoa(port),
		// The management interface (health, metrics) would listen on
		// 0.0.0.0:9000: not wanted, and not free when two run.
		"-Dquarkus.management.enabled=false",
		"-Dquarkus.log.console.format=%d{HH:mm:ss} %-5p [%c{2.}] %s%e%n",
		"-Dregistry-id="+filepath.Base(dir), // names the process, for alive
		"-jar", filepath.Join(home, "quarkus-run.jar"))
	cmd.Dir = home
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait() }()
	r := &Registry{dir: dir, URL: fmt.Sprintf("http://127.0.0.1:%d%s", port, CompatPath), pid: cmd.Process.Pid}
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(r.pid)+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "url"), []byte(r.URL+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := r.wait(ctx); err != nil {
		_ = r.Stop(context.Background())
		return nil, fmt.Errorf("%w (its log: %s)", err, filepath.Join(dir, "registry.log"))
	}
	return r, nil
}

// wait waits until the API answers.
func (r *Registry) wait(ctx context.Context) error {
	for {
		if err := r.Ping(ctx); err == nil {
			return nil
		}
		if !alive(r.pid) {
			return errors.New("the registry exited while starting")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the registry did not answer at %s: %w", r.URL, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Ping asks the API for its subjects.
func (r *Registry) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/subjects", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/subjects: %s", r.URL, resp.Status)
	}
	return nil
}

// Pause freezes the registry's process (SIGSTOP): connections are still
// accepted but nothing answers, as with a registry that hangs or a network
// that drops its packets, and its in-memory schemas survive, which a stop
// would lose. Resume undoes it.
func (r *Registry) Pause() error { return syscall.Kill(r.pid, syscall.SIGSTOP) }

// Resume lets a paused registry run again.
func (r *Registry) Resume() error { return syscall.Kill(r.pid, syscall.SIGCONT) }

// Stop ends the registry (SIGTERM, then SIGKILL if it has not exited
// within ctx) and removes its state directory.
func (r *Registry) Stop(ctx context.Context) error {
	_ = syscall.Kill(r.pid, syscall.SIGCONT) // a paused one cannot handle SIGTERM
	_ = syscall.Kill(r.pid, syscall.SIGTERM)
	for alive(r.pid) {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(r.pid, syscall.SIGKILL)
			for alive(r.pid) {
				time.Sleep(50 * time.Millisecond)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	return os.RemoveAll(r.dir)
}

// runningPid is the pid of the registry in dir, if it runs.
func runningPid(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !alive(pid) {
		return 0, false
	}
	// The pid is ours only while the process is the registry of this
	// directory: the system may have given it to another since.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && !bytes.Contains(cmdline, []byte("-Dregistry-id="+filepath.Base(dir)+"\x00")) {
		return 0, false
	}
	return pid, true
}

// alive reports whether pid runs (a zombie, exited but not waited for,
// does not count).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: signal 0 is all there is
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Java21 finds a java of version 21 or newer: $JAVA21_HOME/bin/java, else
// the newest JDK of 21 or newer under /usr/lib/jvm, else $JAVA_HOME's or
// PATH's java if it is new enough.
func Java21() (string, error) {
	if home := os.Getenv(EnvJava21); home != "" {
		java := filepath.Join(home, "bin", "java")
		if v := javaVersion(java); v < 21 {
			return "", fmt.Errorf("%s=%s: %s is not a Java of 21 or newer (version %d)", EnvJava21, home, java, v)
		}
		return java, nil
	}
	best, bestV := "", 0
	homes, _ := filepath.Glob("/usr/lib/jvm/*")
	if h := os.Getenv("JAVA_HOME"); h != "" {
		homes = append(homes, h)
	}
	for _, home := range homes {
		java := filepath.Join(home, "bin", "java")
		if v := releaseVersion(home); v > bestV && isFile(java) {
			best, bestV = java, v
		}
	}
	if bestV < 21 {
		if p, err := exec.LookPath("java"); err == nil && javaVersion(p) >= 21 {
			return p, nil
		}
	}
	if bestV < 21 {
		return "", fmt.Errorf("apicurio Registry %s needs Java 21 or newer, and none was found (set %s to a JDK 21+, or install one under /usr/lib/jvm)", Version, EnvJava21)
	}
	return best, nil
}

var releaseRE = regexp.MustCompile(`(?m)^JAVA_VERSION="(?:1\.)?([0-9]+)`)

// releaseVersion is the major version in a JDK's release file, 0 if none.
func releaseVersion(home string) int {
	b, err := os.ReadFile(filepath.Join(home, "release"))
	if err != nil {
		return 0
	}
	m := releaseRE.FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

var versionRE = regexp.MustCompile(`version "(?:1\.)?([0-9]+)`)

// javaVersion asks java for its major version, 0 if it does not say.
func javaVersion(java string) int {
	out, err := exec.Command(java, "-version").CombinedOutput()
	if err != nil {
		return 0
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

// Fetch returns the directory of the unpacked distribution, fetching it
// from Maven Central with mvn the first time.
func Fetch(ctx context.Context, progress io.Writer) (string, error) {
	cache := os.Getenv(EnvCache)
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory to cache Apicurio in (set %s): %w", EnvCache, err)
		}
		cache = filepath.Join(home, ".cache", "iqengine", "apicurio")
	}
	dir := filepath.Join(cache, Version)
	if isFile(filepath.Join(dir, "quarkus-run.jar")) {
		return dir, nil
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return "", fmt.Errorf("mvn not found; it is needed once to fetch Apicurio Registry %s from Maven Central", Version)
	}
	if progress == nil {
		progress = io.Discard
	}
	fmt.Fprintf(progress, "registry: fetching Apicurio Registry %s from Maven Central into %s\n", Version, dir)
	tmp, err := os.MkdirTemp(cache+"-tmp", "")
	if err != nil {
		if err = os.MkdirAll(cache+"-tmp", 0o755); err == nil {
			tmp, err = os.MkdirTemp(cache+"-tmp", "")
		}
		if err != nil {
			return "", err
		}
	}
	defer os.RemoveAll(tmp)
	var log bytes.Buffer
	mvn := exec.CommandContext(ctx, "mvn", "-B", "-q", "-Dstyle.color=never", "dependency:copy",
		"-Dartifact=io.apicurio:apicurio-registry-app:"+Version+":tar.gz:all", "-DoutputDirectory="+tmp)
	mvn.Dir = tmp
	mvn.Stdout, mvn.Stderr = &log, &log
	if err := mvn.Run(); err != nil {
		return "", fmt.Errorf("mvn dependency:copy of apicurio-registry-app %s: %v\n%s", Version, err, tail(log.String()))
	}
	unpacked := filepath.Join(tmp, "app")
	if err := untar(filepath.Join(tmp, "apicurio-registry-app-"+Version+"-all.tar.gz"), unpacked); err != nil {
		return "", err
	}
	if !isFile(filepath.Join(unpacked, "quarkus-run.jar")) {
		return "", fmt.Errorf("the distribution has no quarkus-run.jar")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(unpacked, dir); err != nil && !isFile(filepath.Join(dir, "quarkus-run.jar")) {
		return "", err
	}
	return dir, nil
}

// untar unpacks a .tar.gz into dir, refusing entries that would land
// outside it.
func untar(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("%s: entry %q is outside the archive", file, h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// repoRoot is the top of the repository, found from the working directory
// up: tests run in their package's directory, the command at the top.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if isFile(filepath.Join(dir, "go.mod")) && isFile(filepath.Join(dir, "scripts", "kafka.sh")) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("the iqengine repository is not in %s or above", wd)
		}
	}
}
