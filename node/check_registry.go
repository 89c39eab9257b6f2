package node

import (
	"context"
	"fmt"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/serde/registry"
)

// checkRegistry checks, when a store uses a registry serde, that the
// schema registry answers and accepts the credentials, and that every
// registry key serde finds the schema it encodes key text with (its pinned
// id or version, or its subject's latest): without it, lookups of that
// store fail. Value serdes need no subject (each record names its schema),
// so only the registry is checked for them.
func checkRegistry(ctx context.Context, cfg config.Config, report reportFunc) {
	used := false
	for _, s := range cfg.Stores {
		used = used || s.Key.IsRegistry() || s.Value.IsRegistry()
	}
	if !used {
		return
	}
	what := "schema registry " + cfg.SchemaRegistry.URL
	c, err := newRegistryClient(cfg.SchemaRegistry)
	if err != nil {
		report(what, "", &ConfigError{err})
		return
	}
	n, err := c.Ping(ctx)
	if err != nil {
		report(what, "", err)
		return
	}
	report(what, fmt.Sprintf("answers; %s", plural(n, "subject")), nil)
	for i, s := range cfg.Stores {
		if !s.Key.IsRegistry() {
			continue
		}
		rc := s.Key.RegistryConfig(s.Topic, true, "")
		sd, err := registry.New(c, rc)
		if err != nil {
			report(fmt.Sprintf("key schema (stores[%d].key)", i), "", &ConfigError{err})
			continue
		}
		what := fmt.Sprintf("key schema %s (stores[%d].key)", describeKeySchema(rc), i)
		sch, err := sd.KeySchema(ctx)
		if err != nil {
			report(what, "", err)
			continue
		}
		report(what, fmt.Sprintf("schema id %d, a %s schema", sch.ID, sch.Type), nil)
	}
}

// describeKeySchema names the schema a key serde encodes with.
func describeKeySchema(rc registry.Config) string {
	switch {
	case rc.SchemaID > 0:
		return fmt.Sprintf("id %d", rc.SchemaID)
	case rc.Version > 0:
		return fmt.Sprintf("subject %s version %d", rc.Subject(), rc.Version)
	}
	return fmt.Sprintf("subject %s (latest version)", rc.Subject())
}
