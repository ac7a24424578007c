package registryauth

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	user     = "alice"
	password = "PLANTED-pw-9c2e71" // distinctive: every error is scanned for it
	repo     = "library/alpine"
	service  = "svc"
)

// seen is one request the fake registry received.
type seen struct {
	Method, Path string
	Query        url.Values
	Auth         string // the Authorization header
}

// fakeRegistry is an OCI distribution registry with a token endpoint on the same host. Fields
// change how it answers; zero values are a well-behaved Bearer registry.
type fakeRegistry struct {
	t   *testing.T
	srv *httptest.Server

	// challenge is "bearer" (default), "basic" or "none" (GET /v2/ answers 200).
	challenge string
	// wwwAuthenticate overrides the Bearer challenge header.
	wwwAuthenticate string
	// pingStatus overrides the status of GET /v2/ (0: by challenge).
	pingStatus int
	// realmStatus overrides the status of /token (0: check the credential).
	realmStatus int
	// realmBody overrides the body of /token on success.
	realmBody string
	// echo makes refusals quote the credential back, as a careless registry might.
	echo bool
	// scopes are the scope parameters /token expects (nil: the one pull scope on repo).
	scopes []string
	// manifestStatus is what a manifest request with the pull token gets (0: 200).
	manifestStatus int

	mu   sync.Mutex
	reqs []seen
}

func newRegistry(t *testing.T, configure func(*fakeRegistry)) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{t: t}
	if configure != nil {
		configure(f)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// host is the registry's host:port; ParseRegistry takes it as-is.
func (f *fakeRegistry) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeRegistry) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func (f *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Auth: r.Header.Get("Authorization")})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v2/", "/v2":
		f.ping(w, r)
	case "/token":
		f.token(w, r)
	default:
		if strings.Contains(r.URL.Path, "/manifests/") && r.Header.Get("Authorization") == "Bearer pull-token" {
			w.Header().Set("Ratelimit-Remaining", "7;w=60")
			w.WriteHeader(cmp.Or(f.manifestStatus, http.StatusOK))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeRegistry) refuse(w http.ResponseWriter, r *http.Request) {
	msg := "authentication required"
	if f.echo {
		_, pw, _ := r.BasicAuth()
		msg = fmt.Sprintf("incorrect password %q for header %s", pw, r.Header.Get("Authorization"))
	}
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": msg}}})
}

func (f *fakeRegistry) ping(w http.ResponseWriter, r *http.Request) {
	if f.pingStatus != 0 {
		w.WriteHeader(f.pingStatus)
		return
	}
	switch f.challenge {
	case "none":
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("{}"))
	case "basic":
		if u, p, ok := r.BasicAuth(); ok && u == user && p == password {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("{}"))
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
		f.refuse(w, r)
	default:
		if r.Header.Get("Authorization") == "Bearer pull-token" {
			w.WriteHeader(http.StatusOK)
			return
		}
		h := f.wwwAuthenticate
		if h == "" {
			h = fmt.Sprintf(`Bearer realm="http://%s/token",service="%s"`, r.Host, service)
		}
		w.Header().Set("WWW-Authenticate", h)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
	}
}

func (f *fakeRegistry) token(w http.ResponseWriter, r *http.Request) {
	if f.realmStatus != 0 {
		w.WriteHeader(f.realmStatus)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAVAILABLE","message":"token service down"}]}`))
		return
	}
	q := r.URL.Query()
	want := f.scopes
	if want == nil {
		want = []string{"repository:" + repo + ":pull"}
	}
	if q.Get("service") != service || !slices.Equal(q["scope"], want) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"bad scope or service"}]}`))
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
		f.refuse(w, r)
		return
	}
	body := f.realmBody
	if body == "" {
		body = `{"token":"pull-token","expires_in":300}`
	}
	_, _ = w.Write([]byte(body))
}

func check(t *testing.T, registry, pw string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Check(ctx, nil, Target{Registry: registry, Repository: repo}, Credential{Username: user, Password: pw})
	if err != nil {
		noLeak(t, err)
	}
	return err
}

// noLeak fails when an error shows the planted password, alone or inside a Basic header.
func noLeak(t *testing.T, err error) {
	t.Helper()
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	if s := err.Error(); strings.Contains(s, password) || strings.Contains(s, basic) {
		t.Errorf("error shows the credential: %s", s)
	}
}

// wantKind asserts err wraps exactly the wanted sentinel and is an *Error.
func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Check = nil, want %v", kind)
	}
	for _, k := range []error{ErrBadCredentials, ErrUnreachable, ErrProtocol} {
		if got := errors.Is(err, k); got != (k == kind) {
			t.Errorf("errors.Is(%v, %v) = %v", err, k, got)
		}
	}
	var e *Error
	if !errors.As(err, &e) || e.Kind != kind {
		t.Errorf("err %v is not an *Error of kind %v", err, kind)
	}
}

func TestCheckBearerGoodCredentials(t *testing.T) {
	reg := newRegistry(t, nil)
	if err := check(t, reg.host(), password); err != nil {
		t.Fatalf("Check: %v", err)
	}
	var pings, tokens int
	for _, r := range reg.requests() {
		switch r.Path {
		case "/v2/":
			pings++
			if r.Auth != "" {
				t.Errorf("the /v2/ ping carried Authorization %q; credentials belong to the realm only", r.Auth)
			}
		case "/token":
			tokens++
			u, p, ok := (&http.Request{Header: http.Header{"Authorization": {r.Auth}}}).BasicAuth()
			if !ok || u != user || p != password {
				t.Errorf("/token got Authorization %q, want Basic %s:<password>", r.Auth, user)
			}
			if got := r.Query["scope"]; len(got) != 1 || got[0] != "repository:library/alpine:pull" {
				t.Errorf("/token scope = %q", got)
			}
			if got := r.Query.Get("service"); got != service {
				t.Errorf("/token service = %q", got)
			}
			if r.Method != http.MethodGet {
				t.Errorf("/token method = %s", r.Method)
			}
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
		}
		if strings.HasPrefix(r.Auth, "Basic ") && r.Path != "/token" {
			t.Errorf("Basic credentials sent to %s", r.Path)
		}
	}
	if pings != 1 || tokens != 1 {
		t.Errorf("%d pings and %d token requests, want 1 and 1", pings, tokens)
	}
}

func TestCheckBearerBadCredentials(t *testing.T) {
	reg := newRegistry(t, nil)
	err := check(t, reg.host(), "wrong-"+password)
	wantKind(t, err, ErrBadCredentials)
	if !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), reg.host()) {
		t.Errorf("error %q does not name the registry and status", err)
	}
}

func TestCheckNeverEchoesPassword(t *testing.T) {
	for _, challenge := range []string{"bearer", "basic"} {
		t.Run(challenge, func(t *testing.T) {
			reg := newRegistry(t, func(f *fakeRegistry) { f.challenge, f.echo = challenge, true })
			// The registry refuses (the password has a different user) and echoes what it got.
			err := Check(context.Background(), nil, Target{Registry: reg.host(), Repository: repo}, Credential{Username: "bob", Password: password})
			wantKind(t, err, ErrBadCredentials)
			basic := base64.StdEncoding.EncodeToString([]byte("bob:" + password))
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), basic) {
				t.Errorf("error shows the credential: %s", err)
			}
		})
	}
}

func TestCheckEchoedPasswordIsRedactedButReasonKept(t *testing.T) {
	reg := newRegistry(t, func(f *fakeRegistry) { f.echo = true })
	err := check(t, reg.host(), password+"x")
	wantKind(t, err, ErrBadCredentials)
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error shows the credential: %s", err)
	}
	if !strings.Contains(err.Error(), "incorrect password") || !strings.Contains(err.Error(), "<redacted>") {
		t.Errorf("error lost the registry's reason: %s", err)
	}
}

func TestCheckUnreachable(t *testing.T) {
	reg := newRegistry(t, nil)
	host := reg.host()
	reg.srv.Close()
	err := check(t, host, password)
	wantKind(t, err, ErrUnreachable)
	if !strings.Contains(err.Error(), host) {
		t.Errorf("error %q does not name the registry", err)
	}
}

func TestCheckCanceledContext(t *testing.T) {
	reg := newRegistry(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Check(ctx, nil, Target{Registry: reg.host(), Repository: repo}, Credential{Username: user, Password: password})
	wantKind(t, err, ErrUnreachable)
	noLeak(t, err)
}

func TestCheckClassification(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*fakeRegistry)
		want      error
		wantText  string
	}{
		{"realm answers 500", func(f *fakeRegistry) { f.realmStatus = 500 }, ErrUnreachable, "HTTP 500"},
		{"realm answers 503", func(f *fakeRegistry) { f.realmStatus = 503 }, ErrUnreachable, "HTTP 503"},
		{"realm answers 429", func(f *fakeRegistry) { f.realmStatus = 429 }, ErrUnreachable, "HTTP 429"},
		{"realm answers 403", func(f *fakeRegistry) { f.realmStatus = 403 }, ErrBadCredentials, "HTTP 403"},
		{"ping answers 500", func(f *fakeRegistry) { f.pingStatus = 500 }, ErrUnreachable, "HTTP 500"},
		{"ping answers 404", func(f *fakeRegistry) { f.pingStatus = 404 }, ErrProtocol, "HTTP 404"},
		{"no challenge", func(f *fakeRegistry) { f.challenge = "none" }, ErrProtocol, "asked for no authentication"},
		{"challenge without realm", func(f *fakeRegistry) { f.wwwAuthenticate = `Bearer service="svc"` }, ErrProtocol, "realm"},
		{"realm on another private host", func(f *fakeRegistry) {
			f.wwwAuthenticate = `Bearer realm="http://127.0.0.2:9/token",service="svc"`
		}, ErrProtocol, "realm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(t, tt.configure)
			err := check(t, reg.host(), password)
			wantKind(t, err, tt.want)
			t.Log(err)
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

func TestCheckRealmWithoutToken(t *testing.T) {
	const body = `{"expires_in":300,"note":"PLANTED-body-d00d"}`
	reg := newRegistry(t, func(f *fakeRegistry) { f.realmBody = body })
	err := check(t, reg.host(), password)
	wantKind(t, err, ErrProtocol)
	if strings.Contains(err.Error(), "PLANTED-body") || strings.Contains(err.Error(), "expires_in") {
		t.Errorf("error quotes the token response: %s", err)
	}
	if !strings.Contains(err.Error(), "without a token") {
		t.Errorf("error %q does not say the realm gave no token", err)
	}
}

func TestCheckAccessTokenField(t *testing.T) {
	// Some registries answer access_token instead of token.
	reg := newRegistry(t, func(f *fakeRegistry) { f.realmBody = `{"access_token":"pull-token"}` })
	if err := check(t, reg.host(), password); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestCheckBasicRegistry(t *testing.T) {
	t.Run("good", func(t *testing.T) {
		reg := newRegistry(t, func(f *fakeRegistry) { f.challenge = "basic" })
		if err := check(t, reg.host(), password); err != nil {
			t.Fatalf("Check: %v", err)
		}
		reqs := reg.requests()
		if len(reqs) != 2 || reqs[0].Auth != "" || !strings.HasPrefix(reqs[1].Auth, "Basic ") || reqs[1].Path != "/v2/" {
			t.Errorf("requests = %+v, want an anonymous ping then one Basic GET /v2/", reqs)
		}
	})
	t.Run("bad", func(t *testing.T) {
		reg := newRegistry(t, func(f *fakeRegistry) { f.challenge = "basic" })
		err := check(t, reg.host(), "nope")
		wantKind(t, err, ErrBadCredentials)
	})
}

func TestCheckBadRegistryConfig(t *testing.T) {
	err := Check(context.Background(), nil, Target{Registry: "http://example.com", Repository: repo}, Credential{Username: user, Password: password})
	wantKind(t, err, ErrProtocol)
	noLeak(t, err)
}

func TestCheckUsesClientTransport(t *testing.T) {
	reg := newRegistry(t, nil)
	var n int
	var mu sync.Mutex
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		n++
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	if err := Check(context.Background(), client, Target{Registry: reg.srv.URL, Repository: repo}, Credential{Username: user, Password: password}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if n < 2 {
		t.Errorf("the given transport made %d requests, want the ping and the token request", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestParseRegistry(t *testing.T) {
	tests := []struct {
		raw        string
		wantHost   string
		wantScheme string
		wantErr    string
	}{
		{raw: "registry-1.docker.io", wantHost: "registry-1.docker.io", wantScheme: "https"},
		{raw: "  ghcr.io ", wantHost: "ghcr.io", wantScheme: "https"},
		{raw: "myreg.azurecr.io:443", wantHost: "myreg.azurecr.io:443", wantScheme: "https"},
		{raw: "https://registry.gitlab.com", wantHost: "registry.gitlab.com", wantScheme: "https"},
		{raw: "https://registry.gitlab.com/", wantHost: "registry.gitlab.com", wantScheme: "https"},
		{raw: "https://mirror.example.com:5000", wantHost: "mirror.example.com:5000", wantScheme: "https"},
		{raw: "http://127.0.0.1:5000", wantHost: "127.0.0.1:5000", wantScheme: "http"},
		{raw: "http://localhost:5000", wantHost: "localhost:5000", wantScheme: "http"},
		{raw: "http://[::1]:5000", wantHost: "[::1]:5000", wantScheme: "http"},
		{raw: "http://registry-1.docker.io", wantErr: "plain http is accepted only for loopback"},
		{raw: "http://10.1.2.3:5000", wantErr: "plain http is accepted only for loopback"},
		{raw: "https://registry.gitlab.com/v2", wantErr: "a registry is a host, not a path"},
		{raw: "https://ghcr.io/owner/image", wantErr: "a registry is a host, not a path"},
		{raw: "ftp://ghcr.io", wantErr: "not allowed"},
		{raw: "ghcr.io/owner", wantErr: "not a valid host"},
		{raw: "", wantErr: "not a valid host"},
		{raw: "Bad_Host!", wantErr: "not a valid host"},
		{raw: "ghcr.io:0", wantErr: "not a valid host"},
		{raw: "ghcr.io:99999", wantErr: "not a valid host"},
		{raw: "-ghcr.io", wantErr: "not a valid host"},
		{raw: "127.0.0.1:5000", wantHost: "127.0.0.1:5000", wantScheme: "http"}, // go-containerregistry's loopback rule
		{raw: "[::1]:5000", wantHost: "[::1]:5000", wantScheme: "http"},
		{raw: "10.0.0.5:5000", wantHost: "10.0.0.5:5000", wantScheme: "http"}, // RFC 1918 likewise
		{raw: "alice:" + password + "@ghcr.io", wantErr: "credentials"},
		{raw: "https://alice:" + password + "@ghcr.io", wantErr: "credentials"},
	}
	for _, tt := range tests {
		reg, err := ParseRegistry(tt.raw)
		if tt.wantErr != "" {
			if err == nil {
				t.Errorf("ParseRegistry(%q) = %v, want an error containing %q", tt.raw, reg, tt.wantErr)
			} else if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRegistry(%q) error = %q, want %q", tt.raw, err, tt.wantErr)
			} else if strings.Contains(err.Error(), password) {
				t.Errorf("ParseRegistry(%q) error shows the password: %q", tt.raw, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRegistry(%q): %v", tt.raw, err)
			continue
		}
		if reg.RegistryStr() != tt.wantHost || reg.Scheme() != tt.wantScheme {
			t.Errorf("ParseRegistry(%q) = %s (%s), want %s (%s)", tt.raw, reg.RegistryStr(), reg.Scheme(), tt.wantHost, tt.wantScheme)
		}
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Registry: "ghcr.io", Kind: ErrBadCredentials, Detail: "HTTP 401"}
	if got := e.Error(); got != "login check at ghcr.io: the registry refused the credential: HTTP 401" {
		t.Errorf("Error() = %q", got)
	}
	e.Detail = ""
	if got := e.Error(); got != "login check at ghcr.io: the registry refused the credential" {
		t.Errorf("Error() = %q", got)
	}
}

func TestScrub(t *testing.T) {
	cred := Credential{Username: user, Password: password}
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	got := scrub("pw="+password+" header=Basic "+basic+" "+strings.Repeat("ü", 200), cred)
	if strings.Contains(got, password) || strings.Contains(got, basic) {
		t.Errorf("scrub kept the credential: %q", got)
	}
	if !strings.HasSuffix(got, "…") || len(got) > 304 || !json.Valid([]byte(`"`+got+`"`)) {
		t.Errorf("scrub truncation: %d bytes, valid UTF-8 %v", len(got), json.Valid([]byte(`"`+got+`"`)))
	}
	if scrub("plain", Credential{}) != "plain" {
		t.Errorf("scrub changed a message with no credential")
	}
}

func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	var sent []string
	rec := &challengeRecorder{inner: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.URL.String())
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})}
	for _, u := range []string{"http://10.0.0.5:5000/v2/", "http://registry.local/v2/", "http://ghcr.io/token"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := rec.RoundTrip(req); !errors.Is(err, errPlainHTTP) {
			t.Errorf("RoundTrip(%s) = %v, want it refused", u, err)
		}
	}
	for _, u := range []string{"https://10.0.0.5:5000/v2/", "http://127.0.0.1:5000/v2/", "http://localhost/v2/", "http://[::1]:1/v2/"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := rec.RoundTrip(req); err != nil {
			t.Errorf("RoundTrip(%s): %v", u, err)
		}
	}
	if len(sent) != 4 || strings.HasPrefix(sent[0], "http://10.") {
		t.Errorf("sent %v", sent)
	}
}
