// Package kafkaconn turns the user's broker connection settings
// (config.Kafka) into franz-go client options, and checks at startup that the
// brokers can be reached and accept the credentials, so that a wrong address,
// password or certificate gives one clear error line instead of a hang or a
// retry loop in the logs.
//
// It is only about the connection: it must not know about stores, Pebble or
// HTTP.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/iqengine/iqengine/config"
)

// The classes of startup failure. Check's errors wrap exactly one of them, so
// callers can tell them apart with errors.Is; the error text itself is a
// complete sentence that starts with the sentinel's text.
var (
	// ErrAuth is a SASL failure: wrong user or password, or a mechanism the
	// brokers do not accept.
	ErrAuth = errors.New("kafka: authentication failed")
	// ErrUnreachable is a broker that could not be connected to, or did not
	// answer, within the startup timeout.
	ErrUnreachable = errors.New("kafka: no broker reachable")
	// ErrTLS is a TLS failure: a certificate that does not verify, a broker
	// that rejects the client certificate, or TLS on one side only.
	ErrTLS = errors.New("kafka: TLS failed")
)

// SASL mechanism names, as written in kafka.sasl.mechanism.
const (
	mechPlain    = "PLAIN"
	mechScram256 = "SCRAM-SHA-256"
	mechScram512 = "SCRAM-SHA-512"
)

const (
	// defaultBroker is franz-go's seed broker when none is set.
	defaultBroker = "127.0.0.1:9092"
	// defaultDialTimeout is franz-go's, for a zero kafka.dial_timeout.
	defaultDialTimeout = 10 * time.Second
)

// Options returns the franz-go client options for connecting to the brokers
// described by k: seed brokers, client id, dial timeout, TLS and SASL. The
// caller adds its own producing or consuming options. Errors are one line and
// name the config field they are about, for example
// "kafka.tls.ca_file: no PEM certificates in ca.pem".
//
// Call Options once per client: the hook belongs to one client.
//
// TLS is done by the options' own dialer (kgo.Dialer), so that Check can
// tell a failed TLS handshake from an unreachable broker: do not add
// kgo.DialTLSConfig or another kgo.Dialer to them. kafka.dial_timeout bounds
// the TCP connection and the TLS handshake together. The options also
// include a hook that lets Check name the user and mechanism that failed to
// authenticate; Check works without it, but says less.
func Options(k config.Kafka) ([]kgo.Opt, error) {
	brokers := k.Brokers
	if len(brokers) == 0 {
		return nil, errors.New("kafka.brokers: at least one broker is needed")
	}
	for i, b := range brokers {
		if strings.TrimSpace(b) == "" {
			return nil, fmt.Errorf("kafka.brokers[%d]: must not be empty", i)
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if k.ClientID != "" {
		opts = append(opts, kgo.ClientID(k.ClientID))
	}
	d, err := newDialer(k)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.Dialer(d.DialContext))

	mech, err := saslMechanism(k.SASL)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}

	opts = append(opts, kgo.WithHooks(&observer{
		user:      k.SASL.Username,
		mechanism: k.SASL.Mechanism,
	}))
	return opts, nil
}

// newDialer builds the dialer for k's timeout and TLS settings.
func newDialer(k config.Kafka) (*dialer, error) {
	if k.DialTimeout < 0 {
		return nil, errors.New("kafka.dial_timeout: must not be negative")
	}
	tlsCfg, err := TLSConfig("kafka.tls", k.TLS)
	if err != nil {
		return nil, err
	}
	d := &dialer{net: &net.Dialer{Timeout: k.DialTimeout.D()}, tls: tlsCfg}
	if d.net.Timeout == 0 {
		d.net.Timeout = defaultDialTimeout
	}
	return d, nil
}

// TLSConfig builds a client TLS configuration, or nil when TLS is off;
// errors name the fields under prefix ("kafka.tls"). The schema registry's
// client uses it too.
func TLSConfig(prefix string, t config.TLS) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user asked for it, see config.TLS
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %s", prefix, oneLine(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: no PEM certificates in %s", prefix, t.CAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return nil, fmt.Errorf("%s.key_file: is required with %[1]s.cert_file", prefix)
	case t.CertFile == "" && t.KeyFile != "":
		return nil, fmt.Errorf("%s.cert_file: is required with %[1]s.key_file", prefix)
	case t.CertFile != "":
		certPEM, err := os.ReadFile(t.CertFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file: %s", prefix, oneLine(err))
		}
		keyPEM, err := os.ReadFile(t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.key_file: %s", prefix, oneLine(err))
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// crypto/tls says which input it did not like.
			field := prefix + ".key_file"
			if strings.Contains(err.Error(), "certificate input") {
				field = prefix + ".cert_file"
			}
			return nil, fmt.Errorf("%s: %s", field, oneLine(err))
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// saslMechanism returns the configured SASL mechanism, or nil for none.
func saslMechanism(s config.SASL) (sasl.Mechanism, error) {
	if s.Mechanism == "" {
		return nil, nil
	}
	if s.Username == "" {
		switch s.Mechanism {
		case mechPlain, mechScram256, mechScram512:
			return nil, fmt.Errorf("kafka.sasl.username: is required with mechanism %s", s.Mechanism)
		}
	}
	switch s.Mechanism {
	case mechPlain:
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case mechScram256:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case mechScram512:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism: %q is not %s, %s or %s", s.Mechanism, mechPlain, mechScram256, mechScram512)
	}
}

// dialer connects to a broker and, with tls set, does the TLS handshake, so
// that a handshake failure is reported as such rather than as a dial error.
type dialer struct {
	net *net.Dialer
	tls *tls.Config
}

// DialContext has the signature kgo.Dialer wants.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.tls == nil {
		return d.net.DialContext(ctx, network, addr)
	}
	// As with tls.Dialer, the timeout covers the dial and the handshake.
	hctx, cancel := context.WithTimeout(ctx, d.net.Timeout)
	defer cancel()
	conn, err := d.net.DialContext(hctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := d.tls.Clone()
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("%q is not host:port: %w", addr, err)
		}
		c.ServerName = host
	}
	tc := tls.Client(conn, c)
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		if ctx.Err() != nil {
			// Cut off by the caller, not by the broker: not a TLS problem.
			return nil, ctx.Err()
		}
		if hctx.Err() != nil {
			err = fmt.Errorf("no TLS handshake within %s (does the broker listen with TLS?)", d.net.Timeout)
		} else if isClosed(err) {
			err = fmt.Errorf("the broker closed the connection during the TLS handshake (does it listen with TLS?): %w", err)
		}
		return nil, &handshakeError{addr: addr, err: err}
	}
	return tc, nil
}

// handshakeError is a failed TLS handshake with one broker.
type handshakeError struct {
	addr string
	err  error
}

func (e *handshakeError) Error() string { return "TLS handshake with " + e.addr + ": " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// Check is the startup check: it asks the brokers for cluster metadata (no
// topics) and returns nil once one answers, or one error line that says what
// is wrong, bounded by timeout (if positive) and ctx.
//
// Unreachable brokers are retried with backoff until the timeout, so that a
// cluster that is still starting is waited for; the error then wraps
// ErrUnreachable. Authentication and TLS failures are not transient and
// return at once, wrapping ErrAuth or ErrTLS. Any other failure is returned
// as is, in one line. If ctx itself ends, the error wraps ctx.Err().
//
// cl should be built with the options from Options: their hook lets Check
// notice a broker that closes the connection during SASL authentication
// (what older brokers do on a wrong password) and name the user.
func Check(ctx context.Context, cl *kgo.Client, timeout time.Duration) error {
	brokers := seedBrokers(cl)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if timeout > 0 {
		cctx, cancel = context.WithTimeout(cctx, timeout)
		defer cancel()
	}
	o := observerOf(cl)
	w := o.watch(cancel)
	defer o.unwatch(w)

	backoff := 100 * time.Millisecond
	var last error
	for {
		err := metadata(cctx, cl)
		if err == nil {
			return nil
		}
		if authErr := w.authErr(); authErr != nil {
			return authError(cl, o, authErr)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kafka: startup check against %s stopped: %w", brokers, ctx.Err())
		}
		switch {
		case isAuth(err):
			return authError(cl, o, err)
		case isTLS(err):
			return tlsError(brokers, err)
		case !isTransient(err):
			return fmt.Errorf("kafka: startup check against %s failed: %w", brokers, lineErr{err})
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			last = err
		}
		t := time.NewTimer(backoff)
		select {
		case <-cctx.Done():
			t.Stop()
			if authErr := w.authErr(); authErr != nil {
				return authError(cl, o, authErr)
			}
			if ctx.Err() != nil {
				return fmt.Errorf("kafka: startup check against %s stopped: %w", brokers, ctx.Err())
			}
			// The last failed connection attempt says more than a
			// request cut off by the deadline.
			if d := o.lastDialErr(); d != nil {
				last = d
			}
			if last == nil {
				last = err
			}
			return &checkError{
				kind: ErrUnreachable,
				msg:  fmt.Sprintf("%s at %s within %s: %s", ErrUnreachable, brokers, timeout, cause(last)),
				err:  last,
			}
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// metadata issues one metadata request for no topics: the cheapest request
// that needs a working, authenticated connection.
func metadata(ctx context.Context, cl *kgo.Client) error {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	_, err := cl.Request(ctx, req)
	return err
}

// checkError is a classified Check failure: its text is a whole sentence,
// it matches its class with errors.Is, and it unwraps to the cause.
type checkError struct {
	kind error
	msg  string
	err  error
}

func (e *checkError) Error() string   { return e.msg }
func (e *checkError) Unwrap() []error { return []error{e.kind, e.err} }

// lineErr shows an error on one line and unwraps to it.
type lineErr struct{ err error }

func (e lineErr) Error() string { return oneLine(e.err) }
func (e lineErr) Unwrap() error { return e.err }

// seedBrokers is the client's seed brokers, comma separated, for messages.
func seedBrokers(cl *kgo.Client) string {
	if s, ok := cl.OptValue(kgo.SeedBrokers).([]string); ok && len(s) > 0 {
		return strings.Join(s, ",")
	}
	return defaultBroker
}

// authError builds the ErrAuth error for a SASL failure.
func authError(cl *kgo.Client, o *observer, err error) error {
	who := ""
	mech := ""
	if o != nil {
		mech = o.mechanism
		if o.user != "" {
			who = fmt.Sprintf(" for user %q", o.user)
		}
	}
	if mech == "" {
		if ms, ok := cl.OptValue(kgo.SASL).([]sasl.Mechanism); ok && len(ms) > 0 {
			mech = ms[0].Name()
		}
	}
	if mech == "" {
		mech = "no SASL configured"
	}
	return &checkError{
		kind: ErrAuth,
		msg:  fmt.Sprintf("%s%s (%s): %s", ErrAuth, who, mech, authCause(err)),
		err:  err,
	}
}

// authCause is the broker's own message for a SASL error code when it sent
// one, else a description of what happened.
func authCause(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		s := err.Error()
		if i := strings.Index(s, ke.Error()+": "); i >= 0 {
			return oneLine(errors.New(s[i+len(ke.Error())+2:]))
		}
		return oneLine(ke)
	}
	var eof *kgo.ErrFirstReadEOF
	if errors.As(err, &eof) {
		return "the broker closed the connection at the first request, as brokers that require SASL do (is kafka.sasl missing?)"
	}
	if isClosed(err) {
		return "the broker closed the connection during SASL authentication (wrong user or password?)"
	}
	return cause(err)
}

// tlsError builds the ErrTLS error for a TLS failure.
func tlsError(brokers string, err error) error {
	var (
		hs  *handshakeError
		eof *kgo.ErrFirstReadEOF
		why string
	)
	switch {
	case errors.As(err, &hs):
		brokers, why = hs.addr, cause(hs.err)
	case errors.As(err, &eof):
		why = "the broker closed the connection at the first request, as TLS listeners do with plaintext clients (is kafka.tls.enabled missing?)"
	default:
		why = cause(err)
	}
	return &checkError{kind: ErrTLS, msg: fmt.Sprintf("%s with %s: %s", ErrTLS, brokers, why), err: err}
}

var authCodes = []error{
	kerr.SaslAuthenticationFailed,
	kerr.UnsupportedSaslMechanism,
	kerr.IllegalSaslState,
}

func isAuth(err error) bool {
	for _, c := range authCodes {
		if errors.Is(err, c) {
			return true
		}
	}
	var eof *kgo.ErrFirstReadEOF
	return errors.As(err, &eof) && strings.Contains(eof.Error(), "SASL")
}

func isTLS(err error) bool {
	var (
		hs       *handshakeError
		verify   *tls.CertificateVerificationError
		alert    tls.AlertError
		record   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		eof      *kgo.ErrFirstReadEOF
	)
	switch {
	case errors.As(err, &hs), errors.As(err, &verify), errors.As(err, &alert), errors.As(err, &record),
		errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return true
	case errors.As(err, &eof):
		return strings.Contains(eof.Error(), "TLS")
	}
	return strings.Contains(err.Error(), "tls: ")
}

// isTransient reports whether err may go away by itself: a broker that
// cannot be dialed yet, a dropped connection, a retriable Kafka error, or a
// request cut off by the timeout.
func isTransient(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) ||
		kgo.IsRetryableBrokerErr(err) ||
		kerr.IsRetriable(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled)
}

// isClosed reports whether err is the broker closing the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// cause is err's text without franz-go's wrapping, on one line.
func cause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return oneLine(op)
	}
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) {
		return oneLine(verify)
	}
	return strings.TrimPrefix(oneLine(err), "unable to dial: ")
}

// oneLine is err's text with line breaks folded, so that every error this
// package returns is one log line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// observer is the kgo hook that Options installs. It remembers the last
// failed connection attempt, and tells a running Check when a broker closes
// the connection during SASL authentication, which franz-go would otherwise
// retry until the timeout.
type observer struct {
	user, mechanism string

	mu      sync.Mutex
	dialErr error
	watches map[*watch]struct{}
}

// watch is one running Check's view of SASL failures.
type watch struct {
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

func (w *watch) authErr() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func observerOf(cl *kgo.Client) *observer {
	hooks, _ := cl.OptValue(kgo.WithHooks).([]kgo.Hook)
	for _, h := range hooks {
		if o, ok := h.(*observer); ok {
			return o
		}
	}
	return nil
}

func (o *observer) watch(cancel context.CancelFunc) *watch {
	if o == nil {
		return nil
	}
	w := &watch{cancel: cancel}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.watches == nil {
		o.watches = map[*watch]struct{}{}
	}
	o.watches[w] = struct{}{}
	o.dialErr = nil
	return w
}

func (o *observer) unwatch(w *watch) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.watches, w)
}

func (o *observer) lastDialErr() error {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dialErr
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (o *observer) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return // no news: the attempt was cut off by the caller
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dialErr = err
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (o *observer) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key != int16(kmsg.SASLHandshake) && key != int16(kmsg.SASLAuthenticate) {
		return
	}
	err := e2e.Err()
	if err == nil || !isClosed(err) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for w := range o.watches {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
			w.cancel()
		}
		w.mu.Unlock()
	}
}
