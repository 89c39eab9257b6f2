// Package ui is the web console every node serves at /ui/: HTML, CSS and
// JavaScript embedded in the binary, which show the cluster, the stores, a
// key lookup, a scan browser and the plugins. The console runs in the
// browser and reads everything through the node's public HTTP API, like any
// other client; this package only serves its files. It knows nothing of the
// engine or the router, so the console can show nothing the API does not
// give, and it works wherever the API works (through a proxy, with a token).
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// Path is where the console lives on every node.
const Path = "/ui/"

//go:embed static
var static embed.FS

// securityHeaders keep the console's pages from running anything but the
// console's own files and from being framed by another site: a store's keys
// and values are data that the console shows as text, never as markup.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	// The files change with the binary: a browser asks again (and gets a
	// 304 when nothing changed) rather than keep an old console.
	"Cache-Control": "no-cache",
}

// Handler serves the console at Path and hands every other request to api.
// GET / and GET /ui redirect to the console; the API has nothing at either.
func Handler(api http.Handler) http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded directory is part of the build
	}
	console := http.StripPrefix(strings.TrimSuffix(Path, "/"), http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/" || p == strings.TrimSuffix(Path, "/"):
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				api.ServeHTTP(w, r) // the API's own 404 or 405 problem
				return
			}
			http.Redirect(w, r, Path, http.StatusFound)
		case strings.HasPrefix(p, Path):
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "the console is read-only", http.StatusMethodNotAllowed)
				return
			}
			for k, v := range securityHeaders {
				w.Header().Set(k, v)
			}
			console.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}
