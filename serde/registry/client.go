package registry

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Options configure a Client. Zero fields take the defaults below.
type Options struct {
	// URLs are the registry's base URLs (with a Confluent-compatible API:
	// for Apicurio, http://host:8080/apis/ccompat/v7); a request that
	// cannot reach the first tries the next.
	URLs []string
	// TLS configures https connections; nil: Go's defaults (system roots).
	TLS *tls.Config
	// Username and Password are sent as HTTP basic authentication when
	// Username is set; BearerToken as a bearer token when set.
	Username, Password string
	BearerToken        string
	// CacheSize bounds the schemas kept (by id, and by subject version).
	// Default 1000.
	CacheSize int
	// CacheTTL is how long a subject's latest version is trusted before it
	// is asked again. Schemas by id never change, so they stay until the
	// cache is full. Default 5m.
	CacheTTL time.Duration
	// Timeout bounds one request to the registry. Default 10s.
	Timeout time.Duration
	// HTTPClient, when set, makes the requests (TLS is then its business).
	HTTPClient *http.Client
}

// Defaults of Options.
const (
	DefaultCacheSize = 1000
	DefaultCacheTTL  = 5 * time.Minute
	DefaultTimeout   = 10 * time.Second
)

// Backoff after a failed fetch: a schema whose fetch failed is not asked
// again before this, doubling with each failure up to the maximum, so a
// registry that is down gets one request per schema per interval however
// many records name it, and a registry that comes back is used again within
// seconds.
const (
	minRetry = 500 * time.Millisecond
	maxRetry = 10 * time.Second
)

// maxRefDepth bounds how deep schema references are followed; a registry
// could answer with a cycle or an endless chain.
const maxRefDepth = 32

// Schema is a schema from the registry, with the schemas it references.
// It is immutable once returned.
type Schema struct {
	// ID is its global id; Subject and Version are set when it was asked for
	// by subject.
	ID      int
	Subject string
	Version int
	// Type is the registry's name of the format: AVRO, PROTOBUF or JSON.
	Type string
	// Text is the schema itself.
	Text string
	// References are the schemas it imports, in the registry's order.
	References []Reference

	compiled sync.Map // compile's key → compiledResult
}

// Reference is one schema a schema references, under the name it uses.
type Reference struct {
	Name   string
	Schema *Schema
}

type compiledResult struct {
	v   any
	err error
}

// compile returns build's result for this schema and key, building it once
// (or a few times, concurrently, of which one wins): a schema parsed per
// record would cost more than decoding the record.
func (s *Schema) compile(key string, build func() (any, error)) (any, error) {
	if r, ok := s.compiled.Load(key); ok {
		r := r.(compiledResult)
		return r.v, r.err
	}
	v, err := build()
	r, _ := s.compiled.LoadOrStore(key, compiledResult{v, err})
	return r.(compiledResult).v, r.(compiledResult).err
}

// Client fetches schemas from a registry through a cache: a schema is
// fetched once per id, never per record; concurrent lookups of one id share
// one fetch; a failed fetch is remembered only for a short backoff. It is
// safe for concurrent use.
type Client struct {
	sr      *sr.Client
	timeout time.Duration
	ttl     time.Duration
	size    int
	now     func() time.Time

	mu    sync.Mutex
	cache map[cacheKey]*list.Element // of *entry
	lru   list.List                  // most recently used first
}

// cacheKey is a schema by id (subject empty), or by subject and version
// (latest: version -1).
type cacheKey struct {
	id      int
	subject string
	version int
}

const latest = -1

func (k cacheKey) String() string {
	switch {
	case k == cacheKey{}:
		return "the list of subjects"
	case k.subject == "":
		return fmt.Sprintf("schema id %d", k.id)
	case k.version == latest:
		return fmt.Sprintf("subject %q (latest version)", k.subject)
	}
	return fmt.Sprintf("subject %q version %d", k.subject, k.version)
}

type entry struct {
	key      cacheKey
	loading  chan struct{} // non-nil while a fetch runs; closed when it ends
	s        *Schema       // the last schema fetched, nil if none yet
	err      error         // the last fetch's error, nil if it succeeded
	fetched  time.Time     // when s was fetched
	retryAt  time.Time     // after an error: no new fetch before this
	failures int           // consecutive failed fetches
}

// NewClient returns a client of the registry at o.URLs. It reaches nothing
// until a schema is asked for.
func NewClient(o Options) (*Client, error) {
	if len(o.URLs) == 0 {
		return nil, errors.New("schema registry: no URL")
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	httpcl := o.HTTPClient
	if httpcl == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = o.TLS
		httpcl = &http.Client{Transport: tr, Timeout: o.Timeout}
	}
	opts := []sr.ClientOpt{sr.URLs(o.URLs...), sr.HTTPClient(httpcl), sr.UserAgent("iqengine")}
	if o.Username != "" {
		opts = append(opts, sr.BasicAuth(o.Username, o.Password))
	}
	if o.BearerToken != "" {
		opts = append(opts, sr.BearerToken(o.BearerToken))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	return &Client{
		sr:      cl,
		timeout: o.Timeout,
		ttl:     o.CacheTTL,
		size:    o.CacheSize,
		now:     time.Now,
		cache:   map[cacheKey]*list.Element{},
	}, nil
}

// SchemaByID returns the schema with the given global id. An id the
// registry does not have is an *UnknownSchemaError; a registry that cannot
// answer, an *UnavailableError.
func (c *Client) SchemaByID(ctx context.Context, id int) (*Schema, error) {
	return c.get(ctx, cacheKey{id: id}, nil)
}

// SchemaByVersion returns a subject's version of a schema.
func (c *Client) SchemaByVersion(ctx context.Context, subject string, version int) (*Schema, error) {
	if version <= 0 {
		return nil, fmt.Errorf("schema registry: version %d of %q: versions start at 1", version, subject)
	}
	return c.get(ctx, cacheKey{subject: subject, version: version}, nil)
}

// Latest returns a subject's latest version. It is asked again after
// Options.CacheTTL; while the registry cannot answer, the version known
// last keeps being used.
func (c *Client) Latest(ctx context.Context, subject string) (*Schema, error) {
	return c.get(ctx, cacheKey{subject: subject, version: latest}, nil)
}

// Ping asks the registry for its subjects, to tell whether it answers and
// accepts the credentials; it returns how many subjects it has.
func (c *Client) Ping(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	subjects, err := c.sr.Subjects(ctx)
	if err != nil {
		return 0, classify(cacheKey{}, err)
	}
	return len(subjects), nil
}

// get returns k's schema from the cache, or fetches it (one fetch for all
// who ask at once). chain is the schemas whose references led here.
func (c *Client) get(ctx context.Context, k cacheKey, chain []cacheKey) (*Schema, error) {
	if slices.Contains(chain, k) {
		// Waiting for it would wait for ourselves.
		return nil, &UnavailableError{What: chain[0].String(), Err: fmt.Errorf("its references form a cycle through %s", k)}
	}
	for {
		c.mu.Lock()
		e := c.lookup(k)
		if e.loading != nil {
			ch := e.loading
			c.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, &UnavailableError{What: k.String(), Err: ctx.Err()}
			}
		}
		now := c.now()
		switch {
		case e.s != nil && (k.version != latest || now.Sub(e.fetched) < c.ttl):
			s := e.s
			c.mu.Unlock()
			return s, nil
		case e.err != nil && now.Before(e.retryAt):
			s, err := e.s, e.err
			c.mu.Unlock()
			if s != nil && errors.Is(err, ErrRegistryUnavailable) {
				return s, nil // a latest version past its TTL: better than nothing
			}
			return nil, err
		}
		ch := make(chan struct{})
		e.loading = ch
		c.mu.Unlock()

		// The fetch is shared: it must not end because the one caller
		// who started it went away, so it runs on its own, and that
		// caller waits for it no longer than its ctx allows, as the
		// others do (a plugin's call must end by its deadline however
		// long the registry takes).
		var s *Schema
		var err error
		go func() {
			fs, ferr := c.fetch(context.WithoutCancel(ctx), k, chain)
			c.mu.Lock()
			defer c.mu.Unlock()
			now := c.now()
			if ferr == nil {
				e.s, e.err, e.fetched, e.failures = fs, nil, now, 0
			} else {
				e.err = ferr
				e.failures++
				e.retryAt = now.Add(backoff(e.failures))
				if e.s != nil && k.version == latest && errors.Is(ferr, ErrRegistryUnavailable) {
					fs, ferr = e.s, nil // better than nothing
				}
			}
			s, err = fs, ferr
			e.loading = nil
			close(ch)
		}()
		select {
		case <-ch:
			return s, err
		case <-ctx.Done():
			return nil, &UnavailableError{What: k.String(), Err: ctx.Err()}
		}
	}
}

// lookup returns k's entry, creating it, and marks it used; it evicts the
// least recently used entries past the cache's size (never one loading).
// c.mu is held.
func (c *Client) lookup(k cacheKey) *entry {
	if el, ok := c.cache[k]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	e := &entry{key: k}
	c.cache[k] = c.lru.PushFront(e)
	for el := c.lru.Back(); len(c.cache) > c.size && el != nil; {
		prev := el.Prev()
		if old := el.Value.(*entry); old.loading == nil && old != e {
			c.lru.Remove(el)
			delete(c.cache, old.key)
		}
		el = prev
	}
	return e
}

func backoff(failures int) time.Duration {
	d := minRetry
	for i := 1; i < failures && d < maxRetry; i++ {
		d *= 2
	}
	return min(d, maxRetry)
}

// fetch asks the registry for k's schema and the schemas it references.
func (c *Client) fetch(ctx context.Context, k cacheKey, chain []cacheKey) (*Schema, error) {
	if len(chain) > maxRefDepth {
		return nil, fmt.Errorf("schema registry: %s: references nest deeper than %d", k, maxRefDepth)
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var s *Schema
	var refs []sr.SchemaReference
	if k.subject == "" {
		got, err := c.sr.SchemaByID(rctx, k.id)
		if err != nil {
			return nil, classify(k, err)
		}
		s = &Schema{ID: k.id, Type: typeName(got.Type), Text: got.Schema}
		refs = got.References
	} else {
		got, err := c.sr.SchemaByVersion(rctx, k.subject, k.version)
		if err != nil {
			return nil, classify(k, err)
		}
		s = &Schema{ID: got.ID, Subject: k.subject, Version: got.Version, Type: typeName(got.Type), Text: got.Schema.Schema}
		refs = got.References
		if got.ID <= 0 {
			return nil, &UnavailableError{What: k.String(), Err: fmt.Errorf("the registry answered schema id %d", got.ID)}
		}
	}
	if s.Type == "" {
		return nil, &UnavailableError{What: k.String(), Err: errors.New("the registry answered a schema of an unknown type")}
	}
	for _, r := range refs {
		if r.Subject == "" || r.Version <= 0 {
			return nil, &UnavailableError{What: k.String(), Err: fmt.Errorf("reference %q names subject %q version %d", r.Name, r.Subject, r.Version)}
		}
		rs, err := c.get(ctx, cacheKey{subject: r.Subject, version: r.Version}, append(slices.Clip(chain), k))
		if err != nil {
			return nil, fmt.Errorf("%s references %q: %w", k, r.Name, err)
		}
		s.References = append(s.References, Reference{Name: r.Name, Schema: rs})
	}
	return s, nil
}

// typeName is the registry's name of a schema type ("" for one this
// client does not know).
func typeName(t sr.SchemaType) string {
	switch t {
	case sr.TypeAvro:
		return "AVRO"
	case sr.TypeProtobuf:
		return "PROTOBUF"
	case sr.TypeJSON:
		return "JSON"
	}
	return ""
}

// classify turns what the registry client returned into an
// *UnknownSchemaError (the registry said 404) or an *UnavailableError
// (anything else: no connection, a timeout, a server error, an answer that
// does not parse, credentials refused).
func classify(k cacheKey, err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound && k != (cacheKey{}) {
		return &UnknownSchemaError{What: k.String()}
	}
	if errors.As(err, &re) {
		msg := strings.TrimSpace(re.Message)
		if msg == "" {
			msg = string(re.Raw)
			if len(msg) > 200 {
				msg = msg[:200] + "..."
			}
		}
		err = fmt.Errorf("%s %s answered %d: %s", re.Method, re.URL, re.StatusCode, msg)
	}
	return &UnavailableError{What: k.String(), Err: err}
}
