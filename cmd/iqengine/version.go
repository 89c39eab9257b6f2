package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/iqengine/iqengine/internal/buildinfo"
)

// versionCmd prints the build: version, commit, Go version and the plugin
// ABI versions it loads, the same as GET /v1/info and the
// iqengine_build_info metric say.
func versionCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "version", stderr)
	if err := fs.parse(args); err != nil {
		return err
	}
	i := buildinfo.Get()
	commit := i.Commit
	if i.Modified {
		commit += " (modified)"
	}
	abi := make([]string, len(i.PluginABI))
	for n, v := range i.PluginABI {
		abi[n] = fmt.Sprint(v)
	}
	_, err := fmt.Fprintf(stdout, "iqengine %s\ncommit: %s\ngo: %s\nplugin ABI: %s\n",
		i.Version, commit, i.GoVersion, strings.Join(abi, ", "))
	return err
}
