package config

import (
	"reflect"
	"testing"
)

// The example config documents every field with its default: it must load,
// validate, and say the same as Default().
func TestExampleConfigMatchesDefaults(t *testing.T) {
	c, err := Load("../../examples/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := Default()
	d.NodeID = "node-1"
	d.Advertise = "http://127.0.0.1:7070"
	c.Stores = nil
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("examples/config.yaml and Default() disagree:\n file    %+v\n default %+v", c, d)
	}
}
