//go:build unix

package testregistry

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/iqengine/iqengine/internal/testkafka"
)

// AvroJars returns the directory holding Apache Avro's jars (java/pom.xml),
// fetching them with mvn the first time.
func AvroJars(ctx context.Context) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	pom := filepath.Join(root, "internal", "testregistry", "java", "pom.xml")
	cache := os.Getenv(EnvCache)
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "iqengine", "apicurio")
	}
	b, err := os.ReadFile(pom)
	if err != nil {
		return "", err
	}
	// Named for the POM's content: a changed POM fetches anew.
	lib := filepath.Join(cache, fmt.Sprintf("avro-lib-%08x", crc(b)))
	if entries, err := os.ReadDir(lib); err == nil && len(entries) > 0 {
		return lib, nil
	}
	tmp := lib + ".tmp"
	_ = os.RemoveAll(tmp)
	var log bytes.Buffer
	mvn := exec.CommandContext(ctx, "mvn", "-B", "-q", "-Dstyle.color=never", "-f", pom,
		"dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory="+tmp)
	mvn.Stdout, mvn.Stderr = &log, &log
	if err := mvn.Run(); err != nil {
		return "", fmt.Errorf("mvn: fetching Apache Avro's jars: %v\n%s", err, tail(log.String()))
	}
	if err := os.Rename(tmp, lib); err != nil {
		return "", err
	}
	return lib, nil
}

func crc(b []byte) uint32 {
	var h uint32 = 2166136261 // FNV-1a: enough to name a cache directory
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// AvroProducer returns the command that runs java/AvroProducer.java with
// Kafka's jars and Apache Avro's (see the program for its arguments).
func AvroProducer(ctx context.Context, args ...string) (*exec.Cmd, error) {
	kafka, err := testkafka.Jars(ctx, nil)
	if err != nil {
		return nil, err
	}
	avro, err := AvroJars(ctx)
	if err != nil {
		return nil, err
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	java := "java"
	if home := os.Getenv("JAVA_HOME"); home != "" {
		java = filepath.Join(home, "bin", "java")
	}
	argv := append([]string{
		"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dlog4j2.configurationFile=" + filepath.Join(root, "internal", "testkafka", "log4j2-tools.properties"),
		"-cp", filepath.Join(kafka, "*") + string(os.PathListSeparator) + filepath.Join(avro, "*"),
		filepath.Join(root, "internal", "testregistry", "java", "AvroProducer.java"),
	}, args...)
	return exec.CommandContext(ctx, java, argv...), nil
}
