package iq

import (
	"errors"
	"fmt"
	"testing"
)

func TestAllocReusesAndGrows(t *testing.T) {
	scratch = nil
	a := alloc(0)
	if len(a) == 0 {
		t.Fatal("alloc(0) has no address")
	}
	b := alloc(10)
	if &a[0] != &b[0] {
		t.Fatal("a small alloc did not reuse the buffer")
	}
	c := alloc(5000)
	if len(c) < 5000 {
		t.Fatalf("alloc(5000) gave %d bytes", len(c))
	}
	if d := alloc(100); &d[0] != &c[0] {
		t.Fatal("the grown buffer was not reused")
	}
}

func TestInitKeepsACopyAndRunsFuncsInOrder(t *testing.T) {
	defer func() { initFuncs = nil; config = nil }()
	var order []string
	OnInit(func(c []byte) error { order = append(order, "a:"+string(c)); return nil })
	OnInit(func(c []byte) error { order = append(order, "b"); return Reject("no %s", "way") })
	OnInit(func(c []byte) error { order = append(order, "c"); return nil })
	in := []byte(`{"k":"v"}`)
	err := initialize(in)
	in[0] = 'X'
	if fmt.Sprint(order) != `[a:{"k":"v"} b]` {
		t.Fatalf("ran %v", order)
	}
	if !IsReject(err) || err.Error() != "no way" {
		t.Fatalf("err = %v", err)
	}
	if string(Config()) != `{"k":"v"}` {
		t.Fatalf("Config() = %q (not a copy?)", Config())
	}
	if IsReject(errors.New("x")) {
		t.Fatal("a plain error is a rejection")
	}
}
