package ui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/iqengine/iqengine/ui"
)

// api stands for the router: it names itself, so a test sees which
// handler answered.
var api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusTeapot)
	io.WriteString(w, "api "+r.Method+" "+r.URL.Path)
})

func TestHandlerRoutes(t *testing.T) {
	srv := httptest.NewServer(ui.Handler(api))
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		method, path string
		status       int
		contentType  string // a prefix
		body         string // a substring
		location     string
	}{
		{"GET", "/ui/", 200, "text/html", "<title>iqengine console</title>", ""},
		{"GET", "/ui/console.js", 200, "text/javascript", "/v1/metadata/partitions", ""},
		{"GET", "/ui/console.css", 200, "text/css", ":root", ""},
		{"HEAD", "/ui/", 200, "text/html", "", ""},
		{"GET", "/", 302, "", "", "/ui/"},
		{"GET", "/ui", 302, "", "", "/ui/"},
		{"GET", "/ui/missing.js", 404, "text/plain", "", ""},
		{"POST", "/ui/", 405, "text/plain", "read-only", ""},
		// Everything else is the API's, also paths that only start like
		// the console's, and keys that look like paths.
		{"GET", "/v1/stores", 418, "application/problem+json", "api GET /v1/stores", ""},
		{"GET", "/uix", 418, "", "api GET /uix", ""},
		{"GET", "/v1/stores/s/keys/ui/", 418, "", "api GET /v1/stores/s/keys/ui/", ""},
		{"GET", "/v1/stores/s/keys/a//b", 418, "", "api GET /v1/stores/s/keys/a//b", ""},
		{"POST", "/", 418, "", "api POST /", ""},
		{"GET", "/metrics", 418, "", "api GET /metrics", ""},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.contentType) ||
			!strings.Contains(string(body), c.body) || resp.Header.Get("Location") != c.location {
			t.Errorf("%s %s: %d %q %q location %q, want %d %q containing %q, location %q", c.method, c.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), body, resp.Header.Get("Location"), c.status, c.contentType, c.body, c.location)
		}
		if strings.HasPrefix(c.path, "/ui/") && c.status == 200 {
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("%s: Content-Security-Policy %q, want default-src 'self'", c.path, csp)
			}
		}
	}
}

// The console loads nothing from elsewhere (no CDN: it works offline and
// under its own security policy), and every file the page names is served.
func TestConsoleIsSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|fetch\(\s*["'\x60]https?:`)
	files, err := os.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile("static/" + f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s loads from elsewhere: %q", f.Name(), m)
		}
	}
	srv := httptest.NewServer(ui.Handler(api))
	defer srv.Close()
	index, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([a-z][a-z0-9.-]*\.(?:js|css))"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) < 2 {
		t.Fatalf("index.html names %v, want the script and the style sheet", refs)
	}
	for _, ref := range refs {
		resp, err := http.Get(srv.URL + ui.Path + ref[1])
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("index.html names %s, which answers %d", ref[1], resp.StatusCode)
		}
	}
}
