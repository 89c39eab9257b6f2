package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// envPrefix starts every variable's name.
const envPrefix = "IQENGINE_"

// envAliases are older names of variables, kept working: IQENGINE_BROKERS
// was the brokers' variable before every field had one. Setting both an
// alias and its variable is an error, as it is unclear which one is meant.
var envAliases = map[string]string{"IQENGINE_BROKERS": "IQENGINE_KAFKA_BROKERS"}

// envField is a configuration field that can come from the environment.
type envField struct {
	// name is the variable: IQENGINE_ and the field's YAML path, upper
	// case, with underscores for dots ("IQENGINE_QUERY_TIMEOUT").
	name string
	// path is the YAML path ("query.timeout").
	path  string
	index []int // for reflect.Value.FieldByIndex
}

// envFields derives the variables from Config's yaml tags, so that a new
// field has its variable without being listed anywhere. Every field has one
// but stores and the fields of types with no text form (maps, lists of
// mappings), which only the file sets.
func envFields() []envField {
	var out []envField
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, inline, ok := yamlName(f)
			if !ok {
				continue
			}
			idx := append(append([]int{}, index...), i)
			path := prefix + name
			switch {
			case inline:
				walk(f.Type, prefix, idx)
			case envSettable(f.Type):
				out = append(out, envField{envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_")), path, idx})
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, path+".", idx)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// yamlName is a struct field's key in YAML, as yaml.v3 derives it; ok is
// false for a field YAML does not see.
func yamlName(f reflect.StructField) (name string, inline, ok bool) {
	if !f.IsExported() {
		return "", false, false
	}
	name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return "", false, false
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, strings.Contains(","+opts+",", ",inline,"), true
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// isUnmarshaler reports whether t decodes itself from YAML (Duration, Size,
// Serde).
func isUnmarshaler(t reflect.Type) bool { return reflect.PointerTo(t).Implements(unmarshalerType) }

// envSettable reports whether a field of type t has a text form: a scalar,
// a type that decodes itself from a scalar, or a list of scalars (written
// comma separated).
func envSettable(t reflect.Type) bool {
	if isUnmarshaler(t) {
		return t.Kind() != reflect.Struct // Serde: a mapping too, and only in stores
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Slice && envSettable(t.Elem())
	}
	return false
}

// Env sets every field whose IQENGINE_* variable is set (see envFields)
// and not empty. A value reads as the same text would in the YAML file, with
// three differences: strings are taken as they are (no quoting, nothing is
// null), lists are comma separated ("a:9092,b:9092"), and an error names
// the variable. Every bad variable is reported, not only the first.
func (c *Config) Env(getenv func(string) string) error {
	v := reflect.ValueOf(c).Elem()
	var errs []error
	for _, f := range envFields() {
		name, text := f.name, getenv(f.name)
		for alias, target := range envAliases {
			if target != f.name || getenv(alias) == "" {
				continue
			}
			if text != "" {
				errs = append(errs, fmt.Errorf("%s and %s are both set (%s is the older name of %s): set one", alias, f.name, alias, f.name))
				continue
			}
			name, text = alias, getenv(alias)
		}
		if text == "" {
			continue
		}
		if err := setText(v.FieldByIndex(f.index), text); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// setText decodes text into dst as a YAML scalar of dst's type would be
// decoded, or for a list, each comma-separated item as an item of it.
func setText(dst reflect.Value, text string) error {
	t := dst.Type()
	node := scalarNode(text, t)
	if t.Kind() == reflect.Slice && !isUnmarshaler(t) {
		node = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, item := range splitList(text) {
			node.Content = append(node.Content, scalarNode(item, t.Elem()))
		}
	}
	out := reflect.New(t)
	if err := node.Decode(out.Interface()); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%q is not %s", text, describe(t))
		}
		return err
	}
	dst.Set(out.Elem())
	return nil
}

// scalarNode is text as a plain YAML scalar, resolved as YAML resolves it
// (so "10" is an integer and "true" a boolean), except that a string field
// takes the text as it is.
func scalarNode(text string, t reflect.Type) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: text}
	if t.Kind() == reflect.String && !isUnmarshaler(t) {
		n.Tag = "!!str"
	}
	return n
}

// describe names what a value of type t is written as, for errors.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a comma-separated list"
	case reflect.String:
		return "a string"
	}
	return "an integer"
}
