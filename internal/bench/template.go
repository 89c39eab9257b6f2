package bench

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// The default URL templates: iqengine's public API. Kafka Streams' peer
// (bench/streams) answers the same shapes; another system's can differ, so
// every template is configurable.
const (
	LookupTemplate = "{base}/v1/stores/{store}/keys/{key}"
	ScanTemplate   = "{base}/v1/stores/{store}/keys?from={from}&to={to}&limit={limit}"
)

// Template is a request URL with placeholders:
//
//	{base}   the target's base URL, such as http://127.0.0.1:7070
//	{store}  the store name (path-escaped)
//	{key}    the key (path-escaped)
//	{from}   the first key of a scan (query-escaped)
//	{to}     the last key of a scan, inclusive (query-escaped)
//	{limit}  the scan's page size
type Template struct {
	text  string
	parts []part
}

type part struct {
	lit string
	ph  placeholder
}

type placeholder int

const (
	phNone placeholder = iota
	phBase
	phStore
	phKey
	phFrom
	phTo
	phLimit
)

var placeholders = map[string]placeholder{
	"base": phBase, "store": phStore, "key": phKey, "from": phFrom, "to": phTo, "limit": phLimit,
}

// ParseTemplate parses a URL template; an unknown or unclosed placeholder
// is an error.
func ParseTemplate(s string) (Template, error) {
	t := Template{text: s}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return Template{}, fmt.Errorf("template %q: unclosed {", s)
		}
		name := rest[i+1 : i+j]
		ph, ok := placeholders[name]
		if !ok {
			return Template{}, fmt.Errorf("template %q: unknown placeholder {%s} (want base, store, key, from, to or limit)", s, name)
		}
		t.parts = append(t.parts, part{ph: ph})
		rest = rest[i+j+1:]
	}
	return t, nil
}

// String is the template's text.
func (t Template) String() string { return t.text }

// has reports whether the template uses placeholder p.
func (t Template) has(p placeholder) bool {
	for _, pt := range t.parts {
		if pt.ph == p {
			return true
		}
	}
	return false
}

// values fills a template. Base and Store are used as they are (Store is
// path-escaped); Key, From and To are escaped for their place.
type values struct {
	Base, Store   string
	Key, From, To string
	Limit         int
}

func (t Template) appendURL(dst []byte, v *values) []byte {
	for _, p := range t.parts {
		switch p.ph {
		case phNone:
			dst = append(dst, p.lit...)
		case phBase:
			dst = append(dst, strings.TrimSuffix(v.Base, "/")...)
		case phStore:
			dst = append(dst, url.PathEscape(v.Store)...)
		case phKey:
			dst = append(dst, url.PathEscape(v.Key)...)
		case phFrom:
			dst = append(dst, url.QueryEscape(v.From)...)
		case phTo:
			dst = append(dst, url.QueryEscape(v.To)...)
		case phLimit:
			dst = strconv.AppendInt(dst, int64(v.Limit), 10)
		}
	}
	return dst
}

// URL fills the template for a lookup of key in store on base.
func (t Template) URL(base, store, key string) string {
	return string(t.appendURL(nil, &values{Base: base, Store: store, Key: key}))
}
