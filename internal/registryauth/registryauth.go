// Package registryauth answers one question: can this username/token obtain a pull token from
// this registry? It runs the standard OCI distribution token handshake — GET /v2/, read the
// WWW-Authenticate challenge, send the credential with Basic auth to the realm with a pull
// scope — through go-containerregistry's transport, which also validates the realm (no
// redirects of a credential to a private address).
//
// It tells "the registry refused the credential" apart from "the registry could not be reached",
// because the first means rotate nothing and page someone, the second means try again.
package registryauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
)

// Sentinel errors; every error Check returns wraps exactly one of them.
var (
	// ErrBadCredentials: the registry answered and refused the credential.
	ErrBadCredentials = errors.New("the registry refused the credential")
	// ErrUnreachable: no usable answer (network error, timeout, 5xx): try again later.
	ErrUnreachable = errors.New("the registry could not be reached")
	// ErrProtocol: the registry answered something the OCI token handshake does not allow.
	ErrProtocol = errors.New("the registry's answer does not follow the OCI token handshake")
)

// Target is where to log in.
type Target struct {
	// Registry is a host[:port] (https) or a URL; http:// is accepted only for loopback hosts.
	Registry string
	// Repository is any repository to request a pull scope for, e.g. "library/alpine".
	Repository string
}

// Credential is the login to check.
type Credential struct {
	Username string
	Password string
}

// Error says what failed and wraps one of the sentinel errors.
type Error struct {
	Registry string
	Kind     error
	// Detail is the underlying cause, with credentials and query strings removed.
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("login check at %s: %v", e.Registry, e.Kind)
	}
	return fmt.Sprintf("login check at %s: %v: %s", e.Registry, e.Kind, e.Detail)
}

func (e *Error) Unwrap() error { return e.Kind }

// ParseRegistry turns a configured registry (host or URL) into a go-containerregistry registry.
func ParseRegistry(raw string) (name.Registry, error) {
	host := strings.TrimSpace(raw)
	if strings.Contains(host, "@") {
		// Neither quoted nor passed on: the part before "@" may be a password.
		return name.Registry{}, errors.New("registry: credentials in the registry host or URL are not allowed; give a host[:port] or https:// URL")
	}
	var opts []name.Option
	if strings.Contains(host, "://") {
		u, err := httpapi.BaseURL("registry URL", host)
		if err != nil {
			return name.Registry{}, err
		}
		if u.Path != "" && u.Path != "/" {
			return name.Registry{}, fmt.Errorf("registry URL %q: a registry is a host, not a path", raw)
		}
		host = u.Host
		if u.Scheme == "http" {
			opts = append(opts, name.Insecure)
		}
	}
	reg, err := name.NewRegistry(host, append(opts, name.StrictValidation)...)
	if err != nil {
		return name.Registry{}, fmt.Errorf("registry %q is not a valid host[:port]: %w", raw, err)
	}
	// go-containerregistry accepts any URI authority ("Bad_Host!"); such a name would fail
	// every check as "unreachable", which reads as "try again" for what is a typo.
	if !validHostPort(reg.RegistryStr()) {
		return name.Registry{}, fmt.Errorf("registry %q is not a valid host[:port]: use a DNS name or IP address, optionally with a port", raw)
	}
	return reg, nil
}

var dnsNameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*\.?$`)

// validHostPort reports whether s is a DNS name or IP literal with an optional numeric port.
func validHostPort(s string) bool {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") {
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return net.ParseIP(host) != nil || (len(host) <= 253 && dnsNameRE.MatchString(host))
}

// Check proves cred can obtain a pull token for target.Repository. client may be nil. Every
// request of the handshake — the /v2/ ping and the token realm the challenge names — goes
// through client's transport (go-containerregistry builds its token client around it), so an
// upstream's pinned transport (upstream.Options.Client) decides which hosts the credential may
// reach; a host it refuses fails the check with ErrProtocol.
func Check(ctx context.Context, client *http.Client, target Target, cred Credential) error {
	ctx, cancel := withClientTimeout(ctx, client)
	defer cancel()
	_, err := login(ctx, client, target, cred)
	return err
}

// session is a finished login handshake: rt sends requests to reg with its token.
type session struct {
	reg name.Registry
	rt  http.RoundTripper
}

// withClientTimeout keeps client's per-call bound: go-containerregistry takes only the transport.
func withClientTimeout(ctx context.Context, client *http.Client) (context.Context, context.CancelFunc) {
	if client != nil && client.Timeout > 0 {
		return context.WithTimeout(ctx, client.Timeout)
	}
	return ctx, func() {}
}

// login runs the handshake of Check, asking the token realm once for a pull scope on
// target.Repository and on each of also (the distribution token spec repeats the "scope"
// parameter; go-containerregistry sends one per scope), and proves the credential: with a
// Bearer challenge the token exchange is the proof, with Basic one GET /v2/.
func login(ctx context.Context, client *http.Client, target Target, cred Credential, also ...string) (*session, error) {
	reg, err := ParseRegistry(target.Registry)
	if err != nil {
		return nil, &Error{Registry: target.Registry, Kind: ErrProtocol, Detail: err.Error()}
	}
	scopes := []string{reg.Repo(target.Repository).Scope(transport.PullScope)}
	for _, r := range also {
		if sc := reg.Repo(r).Scope(transport.PullScope); !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	inner := http.DefaultTransport
	if client != nil && client.Transport != nil {
		inner = client.Transport
	}
	// The handshake sends the credential to the registry and its token realm; go-containerregistry
	// builds its own http.Client (which follows redirects) around this transport, so redirects
	// are refused here, at the transport.
	rec := &challengeRecorder{inner: kit.RefuseRedirects(inner)}
	auth := &authn.Basic{Username: cred.Username, Password: cred.Password}
	rt, err := transport.NewWithContext(ctx, reg, auth, rec, scopes)
	if err != nil {
		return nil, classify(target.Registry, err, cred)
	}
	switch rec.scheme() {
	case "bearer":
		// The token exchange above succeeded with the credential: that is the proof.
		return &session{reg: reg, rt: rt}, nil
	case "basic":
		// Basic registries check the credential on every request: ask once.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return nil, classify(target.Registry, err, cred)
		}
		resp.Body.Close()
		if err := classifyStatus(target.Registry, resp.StatusCode); err != nil {
			return nil, err
		}
		return &session{reg: reg, rt: rt}, nil
	default:
		return nil, &Error{Registry: target.Registry, Kind: ErrProtocol, Detail: "GET /v2/ asked for no authentication, so the credential cannot be checked there"}
	}
}

func classifyStatus(registry string, code int) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return &Error{Registry: registry, Kind: ErrBadCredentials, Detail: fmt.Sprintf("HTTP %d", code)}
	case code >= 500 || code == http.StatusTooManyRequests:
		return &Error{Registry: registry, Kind: ErrUnreachable, Detail: fmt.Sprintf("HTTP %d", code)}
	default:
		return &Error{Registry: registry, Kind: ErrProtocol, Detail: fmt.Sprintf("HTTP %d", code)}
	}
}

func classify(registry string, err error, cred Credential) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		e, ok := classifyStatus(registry, terr.StatusCode).(*Error)
		if !ok { // a 2xx the handshake did not expect (GET /v2/ answering 204): nil, not an *Error
			e = &Error{Registry: registry, Kind: ErrProtocol, Detail: fmt.Sprintf("HTTP %d", terr.StatusCode)}
		}
		if len(terr.Errors) > 0 {
			e.Detail += ": " + scrub(terr.Errors[0].Message, cred)
		}
		return e
	}
	if errors.Is(err, pinned.ErrNotPinned) {
		// The upstream's pinned transport refused a host (the registry's, or the realm its
		// challenge named): no retry makes that host allowed, so it is not "unreachable".
		return &Error{Registry: registry, Kind: ErrProtocol, Detail: scrub(redact(err), cred)}
	}
	var uerr *url.Error
	if errors.As(err, &uerr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &Error{Registry: registry, Kind: ErrUnreachable, Detail: scrub(redact(err), cred)}
	}
	msg := err.Error()
	if strings.Contains(msg, "www-authenticate") || strings.Contains(msg, "realm") || strings.Contains(msg, "no token in bearer response") {
		// Never echo a token response: it may carry a token.
		if strings.Contains(msg, "no token in bearer response") {
			msg = "the realm answered 200 without a token"
		}
		return &Error{Registry: registry, Kind: ErrProtocol, Detail: scrub(msg, cred)}
	}
	return &Error{Registry: registry, Kind: ErrUnreachable, Detail: scrub(msg, cred)}
}

// scrub removes the credential from a message in case a registry echoed it, as sent (the
// password) or as the Basic header carried it (base64 of username:password).
func scrub(s string, cred Credential) string {
	if cred.Password != "" {
		s = strings.ReplaceAll(s, base64.StdEncoding.EncodeToString([]byte(cred.Username+":"+cred.Password)), "<redacted>")
		s = strings.ReplaceAll(s, cred.Password, "<redacted>")
	}
	return kit.Truncate(s, 300)
}

func redact(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		if u, perr := url.Parse(uerr.URL); perr == nil {
			u.RawQuery, u.User = "", nil
			return fmt.Sprintf("%s %s: %v", uerr.Op, u.String(), uerr.Err)
		}
	}
	return err.Error()
}

// challengeRecorder remembers the auth scheme of the /v2/ challenge the handshake saw. It also
// refuses plain http to any host but loopback: go-containerregistry falls back to http for
// RFC 1918 and .local hosts, which would send a Basic credential in clear text.
type challengeRecorder struct {
	inner http.RoundTripper
	mu    sync.Mutex
	seen  string
}

// errPlainHTTP is what the guard answers instead of sending a request.
var errPlainHTTP = errors.New("plain http is allowed only to loopback hosts")

func (c *challengeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !kit.IsLoopback(req.URL.Hostname()) {
		return nil, errPlainHTTP
	}
	resp, err := c.inner.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && strings.TrimRight(req.URL.Path, "/") == "/v2" {
		scheme, _, _ := strings.Cut(strings.TrimSpace(resp.Header.Get("WWW-Authenticate")), " ")
		c.mu.Lock()
		c.seen = strings.ToLower(scheme)
		c.mu.Unlock()
	}
	return resp, err
}

func (c *challengeRecorder) scheme() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen
}
