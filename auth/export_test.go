package auth

// ReadFilesAlways makes t look at its files on every handshake, rather
// than at most once a second, so that the tests need not wait.
func ReadFilesAlways(t *TLS) {
	t.cert.every = 0
	if t.clientCAs != nil {
		t.clientCAs.every = 0
	}
}

// ReadJWKSAlways makes a look at its JWKS file on every JWT.
func ReadJWKSAlways(a *Authenticator) { a.jwt.keys.every = 0 }
