package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadEnv reads a YAML file over the defaults, as Load does, with the
// ${VAR} references in its values expanded from getenv:
//
//	${VAR}          VAR's value; an error naming VAR and the line if it is unset or empty
//	${VAR:-default} VAR's value, or default when VAR is unset or empty
//	$${             a literal ${
//
// References are expanded in values only, never in keys or comments, after
// the file is parsed: a value is never read as YAML syntax, so a password
// may hold any character, and a plain value takes its type from what it
// expands to (port: ${PORT} is a number).
func LoadEnv(path string, getenv func(string) string) (Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if err := decodeFile(data, getenv, &c); err != nil {
		return c, fmt.Errorf("config %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return c, nil
}

// decodeFile decodes a file's text into c: parse, refuse unknown fields,
// expand references, decode. yaml.v3 refuses unknown fields only when it
// decodes text, and the expanded values are in the parsed nodes, so
// unknownFields does that check on the nodes.
func decodeFile(data []byte, getenv func(string) string, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	var errs []error
	unknownFields(&doc, reflect.TypeOf(c).Elem(), &errs)
	expand(&doc, getenv, &errs)
	if len(errs) > 0 {
		// A mapping merged with <<: *anchor is checked where it is
		// defined and where it is merged: say each problem once.
		seen := map[string]bool{}
		errs = slices.DeleteFunc(errs, func(e error) bool {
			dup := seen[e.Error()]
			seen[e.Error()] = true
			return dup
		})
		return errors.Join(errs...)
	}
	return doc.Decode(c)
}

// unknownFields adds an error, worded as yaml.v3's, for every mapping key
// that is not a field of the struct it decodes into. Types that decode
// themselves (Serde) check their own.
func unknownFields(n *yaml.Node, t reflect.Type, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isUnmarshaler(t) {
		return
	}
	switch {
	case n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode:
		for _, c := range n.Content {
			unknownFields(c, t, errs)
		}
		if n.Alias != nil {
			unknownFields(n.Alias, t, errs)
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for _, c := range n.Content {
			unknownFields(c, t.Elem(), errs)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 1; i < len(n.Content); i += 2 {
			unknownFields(n.Content[i], t.Elem(), errs)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := structFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.ShortTag() == "!!merge" {
				unknownFields(v, t, errs) // <<: *defaults, or a list of them
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, fmt.Errorf("line %d: field %s not found in type %s", k.Line, k.Value, t))
				continue
			}
			unknownFields(v, ft, errs)
		}
	}
	// Any other pairing is a type error, which Decode reports.
}

// structFields maps the YAML keys of t's fields, inline ones included, to
// their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, inline, ok := yamlName(f)
		switch {
		case !ok:
		case inline:
			for k, ft := range structFields(f.Type) {
				out[k] = ft
			}
		default:
			out[name] = f.Type
		}
	}
	return out
}

// expand replaces the ${VAR} references in every scalar value under n,
// adding an error with its line for each reference that cannot be.
func expand(n *yaml.Node, getenv func(string) string, errs *[]error) {
	switch n.Kind {
	case yaml.AliasNode:
		return // its anchor is expanded where it is defined
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		v, err := expandValue(n.Value, getenv)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("line %d: %w", n.Line, err))
			return
		}
		n.Value = v
		if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			n.Tag = "" // a plain value: resolve its type from what it now says
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			expand(n.Content[i], getenv, errs)
		}
	default:
		for _, c := range n.Content {
			expand(c, getenv, errs)
		}
	}
}

var envVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandValue expands the references in one value (see LoadEnv).
func expandValue(s string, getenv func(string) string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q has a ${ with no closing } (write $${ for a literal ${)", s[i:])
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !envVarName.MatchString(name) {
			return "", fmt.Errorf("${%s}: %q is not a variable name (write $${ for a literal ${)", ref, name)
		}
		v := getenv(name)
		if v == "" && !hasDef {
			return "", fmt.Errorf("${%s}: %s is not set (give it a value, or a default: ${%s:-default})", ref, name, name)
		}
		if v == "" {
			v = def
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}
