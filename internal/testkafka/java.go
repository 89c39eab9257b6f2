package testkafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// toolOpts are the JVM flags of Kafka's command line tools and the tests'
// Java programs: short-lived, so a small heap and a quick start.
var toolOpts = []string{"-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"}

// Java returns the command that runs a Java main class, or a single-file
// program (FILE.java, through Java's source launcher), with Apache Kafka's
// jars on the class path and warnings logged to stderr, e.g.
//
//	Java(ctx, "scripts/java/JavaProducer.java", bootstrap, topic, "string", "500")
//	Java(ctx, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bootstrap, "--list")
func Java(ctx context.Context, args ...string) (*exec.Cmd, error) {
	java, lib, err := locate(ctx, nil)
	if err != nil {
		return nil, err
	}
	return toolCmd(ctx, java, lib, args...)
}

// locate finds java and Kafka's jars (see Jars for progress).
func locate(ctx context.Context, progress io.Writer) (java, lib string, err error) {
	if java, err = javaBin(); err != nil {
		return "", "", err
	}
	lib, err = Jars(ctx, progress)
	return java, lib, err
}

// toolCmd is Java's command once the jars and java are found.
func toolCmd(ctx context.Context, java, lib string, args ...string) (*exec.Cmd, error) {
	log4j, err := repoFile("internal", "testkafka", "log4j2-tools.properties")
	if err != nil {
		return nil, err
	}
	argv := slices.Concat(toolOpts, []string{"-Dlog4j2.configurationFile=" + log4j, "-cp", classpath(lib)}, args)
	return exec.CommandContext(ctx, java, argv...), nil
}

// Jars returns the directory that holds Apache Kafka's jars. The jars are
// scripts/kafka.sh's business: it fetches them with Maven the first time
// (what it says goes to progress, if not nil, and into the error) and
// later only names its cache.
func Jars(ctx context.Context, progress io.Writer) (string, error) {
	script, err := repoFile("scripts", "kafka.sh")
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script, "fetch")
	cmd.Stderr = &stderr
	if progress != nil {
		cmd.Stderr = io.MultiWriter(&stderr, progress)
	}
	out, err := cmd.Output()
	lines := strings.Fields(string(out))
	if err != nil || len(lines) == 0 {
		return "", fmt.Errorf("scripts/kafka.sh fetch: %v\n%s", err, stderr.Bytes())
	}
	return lines[len(lines)-1], nil
}

// classpath names every jar of lib; java expands the star itself.
func classpath(lib string) string { return filepath.Join(lib, "*") }

// javaBin is $JAVA_HOME/bin/java if there is one, else java from PATH.
func javaBin() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		if p := filepath.Join(home, "bin", "java"); isFile(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", errors.New("java not found (install a JDK 17+ or set JAVA_HOME)")
	}
	return p, nil
}

// repoFile returns the absolute path of a file of this repository, found
// from the working directory up: tests run in their package's directory,
// the kafka command at the top.
func repoFile(parts ...string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(append([]string{root}, parts...)...), nil
}

func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if isFile(filepath.Join(dir, "scripts", "kafka.sh")) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("scripts/kafka.sh not found in %s or above: run from within the iqengine repository", wd)
		}
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
