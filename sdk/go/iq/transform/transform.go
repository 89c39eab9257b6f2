// Package transform gives a plugin the query transform capability: importing
// it exports `iq_transform_begin`, `iq_transform_record` and
// `iq_transform_end` from the module, and Handle registers the Go function
// that starts a batch.
//
// For each query the host runs one batch: begin with the query's parameters
// (the store's defaults overridden by the query's t.NAME=VALUE parameters),
// then each record (key JSON and value JSON, as the store's serializers
// produced them, in key order), then end. A key lookup is a batch of one
// record.
//
//	func init() {
//		transform.Handle(func(params map[string]string) (transform.Func, error) {
//			if len(params) > 0 {
//				return nil, iq.Reject("this transform takes no parameters")
//			}
//			var out []byte // reused from record to record
//			return func(key, value []byte) ([]byte, bool, error) {
//				out = append(out[:0], `{"key":`...)
//				out = append(out, key...)
//				out = append(out, `,"value":`...)
//				out = append(out, value...)
//				return append(out, '}'), true, nil
//			}, nil
//		})
//	}
//
// The begin function validates the parameters once per batch and returns
// the Func that maps each record: a Reject from it answers the query 422 (a
// bad parameter), another error 500. The Func returns the value JSON to answer
// and keep=true, or keep=false to filter the record out (a lookup answers 404
// filtered, a scan leaves it out); its error fails the query (Reject: 422).
// The output must be valid JSON; it may be the value slice itself or a buffer
// reused from record to record. The key and value slices view the host's input
// buffer and are valid only during the call.
package transform

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
	_ "github.com/iqengine/iqengine/sdk/go/iq" // the core exports
)

// Func maps one record of a batch: it returns the value JSON to answer and
// keep=true, or keep=false to filter the record out (out is then ignored).
type Func func(key, value []byte) (out []byte, keep bool, err error)

var (
	handler func(map[string]string) (Func, error)
	// current is the batch's Func; inBatch is true between begin and end.
	current Func
	inBatch bool
)

func init() {
	abi.TransformBegin, abi.TransformRecord, abi.TransformEnd = beginBatch, record, endBatch
}

// Handle registers begin as the function that starts each batch with its
// parameters (a JSON object of strings, decoded; never nil). Call it from an
// init function (a c-shared Go module never runs main); a later call
// replaces begin. If begin returns a nil Func and no error, every record is
// kept unchanged.
func Handle(begin func(params map[string]string) (Func, error)) { handler = begin }

func beginBatch(in []byte) error {
	current, inBatch = nil, false
	if handler == nil {
		return abi.NoHandler("iq_transform_begin", "transform")
	}
	params, err := ParseParams(in)
	if err != nil {
		return fmt.Errorf("iq_transform_begin: parameters: %w", err)
	}
	f, err := handler(params)
	if err != nil {
		return err
	}
	current, inBatch = f, true
	return nil
}

func record(in []byte) (out []byte, keep bool, err error) {
	if !inBatch {
		return nil, false, errors.New("iq_transform_record: no batch begun")
	}
	key, value, err := SplitFrame(in)
	if err != nil {
		return nil, false, abi.Reject("iq_transform_record: %w", err)
	}
	if current == nil {
		return value, true, nil
	}
	return current(key, value)
}

func endBatch() { current, inBatch = nil, false }

// SplitFrame splits a record frame: u32 little-endian length of the key
// JSON, the key JSON, the value JSON.
func SplitFrame(frame []byte) (key, value []byte, err error) {
	if len(frame) < 4 {
		return nil, nil, errors.New("frame shorter than 4 bytes")
	}
	n := binary.LittleEndian.Uint32(frame)
	if uint64(n) > uint64(len(frame)-4) {
		return nil, nil, errors.New("frame's key length is past its end")
	}
	return frame[4 : 4+n], frame[4+n:], nil
}
