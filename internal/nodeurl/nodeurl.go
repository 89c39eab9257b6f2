// Package nodeurl checks the URLs nodes advertise to each other.
package nodeurl

import (
	"fmt"
	"net/url"
	"strings"
)

// Check says what is wrong with a node's advertised URL, or nil: it must
// be an absolute http or https URL with a host, and no user info, query,
// fragment or path other than "/" (the router appends paths to it). The
// cluster checks other members' URLs when it reads their envelopes, so a
// member cannot make the nodes call anything but a node's base URL.
func Check(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q is not an http(s) URL", s)
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return fmt.Errorf("%q carries user info", s)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q carries a query", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%q carries a fragment", s)
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("%q has a path; give the node's base URL", s)
	}
	return nil
}
