package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/reporter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// protoCodec renders Protobuf records through the canonical JSON mapping
// (protojson: lowerCamelCase field names, 64-bit integers as strings,
// enums by name, fields at their default value left out), with the message
// type chosen by the record's message indexes: Confluent's serializer
// writes, after the schema id, the path of the message among the schema
// file's messages ([0] for the first, [1, 0] for the first message nested
// in the second).
type protoCodec struct {
	// message is the full name of the message key text is encoded as;
	// empty: the schema's first message.
	message string
}

// maxIndexDepth bounds the message index path read from a record: no
// schema nests messages deeper, and the count comes from untrusted bytes.
const maxIndexDepth = 64

func (*protoCodec) schemaType() string { return "PROTOBUF" }

var protoJSON = protojson.MarshalOptions{}

// protoFile compiles a registry schema and its references (its imports,
// by the names it imports them under) into a file descriptor.
func protoFile(s *Schema) (protoreflect.FileDescriptor, error) {
	v, err := s.compile("protobuf", func() (any, error) {
		main := fmt.Sprintf("iqengine-registry-schema-%d.proto", s.ID)
		files := map[string]string{main: s.Text}
		var add func(s *Schema) error
		add = func(s *Schema) error {
			for _, r := range s.References {
				if _, ok := files[r.Name]; ok {
					continue
				}
				files[r.Name] = r.Schema.Text
				if err := add(r.Schema); err != nil {
					return err
				}
			}
			return nil
		}
		if err := add(s); err != nil {
			return nil, err
		}
		c := protocompile.Compiler{
			Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(files)}),
			MaxParallelism: 1,
			Reporter:       reporter.NewReporter(nil, nil),
		}
		fds, err := c.Compile(context.Background(), main)
		if err != nil {
			return nil, err
		}
		return protoreflect.FileDescriptor(fds[0]), nil
	})
	if err != nil {
		return nil, fmt.Errorf("schema id %d from the registry is not a valid Protobuf schema: %v", s.ID, err)
	}
	return v.(protoreflect.FileDescriptor), nil
}

// messageAt is the message at a message index path.
func messageAt(fd protoreflect.FileDescriptor, index []int) (protoreflect.MessageDescriptor, error) {
	msgs := fd.Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range index {
		if i < 0 || i >= msgs.Len() {
			return nil, fmt.Errorf("message index %v names no message of the schema", index)
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	if md == nil {
		return nil, fmt.Errorf("empty message index")
	}
	return md, nil
}

// indexOf is the message index path of md in its file.
func indexOf(md protoreflect.MessageDescriptor) []int {
	var index []int
	for d := protoreflect.Descriptor(md); ; d = d.Parent() {
		m, ok := d.(protoreflect.MessageDescriptor)
		if !ok {
			break
		}
		index = append([]int{m.Index()}, index...)
	}
	return index
}

func (c *protoCodec) appendJSON(dst []byte, s *Schema, payload []byte) ([]byte, error) {
	fd, err := protoFile(s)
	if err != nil {
		return dst, err
	}
	index, payload, err := header.DecodeIndex(payload, maxIndexDepth)
	if err != nil {
		return dst, invalidf("not a Protobuf record of schema id %d: its message indexes do not read: %v", s.ID, err)
	}
	md, err := messageAt(fd, index)
	if err != nil {
		return dst, invalidf("not a Protobuf record of schema id %d: %v", s.ID, err)
	}
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(payload, m); err != nil {
		return dst, invalidf("not a %s of schema id %d: %v", md.FullName(), s.ID, err)
	}
	js, err := protoJSON.Marshal(m)
	if err != nil {
		return dst, invalidf("%s of schema id %d has no JSON form: %v", md.FullName(), s.ID, err)
	}
	// protojson varies its whitespace on purpose; answers should not.
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, js); err != nil {
		return dst, fmt.Errorf("protojson wrote invalid JSON: %v", err)
	}
	return buf.Bytes(), nil
}

// appendEncoded encodes key text, the message's canonical JSON, as the
// configured message (or the schema's first), fields in field number
// order as every Protobuf library writes them.
func (c *protoCodec) appendEncoded(dst []byte, s *Schema, text string) ([]byte, error) {
	fd, err := protoFile(s)
	if err != nil {
		return nil, err
	}
	var md protoreflect.MessageDescriptor
	if c.message == "" {
		if fd.Messages().Len() == 0 {
			return nil, fmt.Errorf("the key's schema (id %d) has no message", s.ID)
		}
		md = fd.Messages().Get(0)
	} else {
		d := findMessage(fd.Messages(), protoreflect.FullName(c.message))
		if d == nil {
			return nil, fmt.Errorf("the key's schema (id %d) has no message %s", s.ID, c.message)
		}
		md = d
	}
	m := dynamicpb.NewMessage(md)
	if err := protojson.Unmarshal([]byte(text), m); err != nil {
		// protojson's message quotes the text and starts "proto:" and a
		// space that is sometimes U+00A0, on purpose; oneLine makes it ' '.
		return nil, invalidf("%q is not the JSON of a %s: %v", text, md.FullName(), strings.TrimPrefix(oneLine(err), "proto: "))
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, invalidf("%q: %v", text, err)
	}
	return append(appendHeader(dst, s.ID, indexOf(md)), b...), nil
}

func findMessage(msgs protoreflect.MessageDescriptors, name protoreflect.FullName) protoreflect.MessageDescriptor {
	for i := range msgs.Len() {
		m := msgs.Get(i)
		if m.FullName() == name {
			return m
		}
		if d := findMessage(m.Messages(), name); d != nil {
			return d
		}
	}
	return nil
}
