package registryauth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
)

// Planted credential. Fuzzed texts may write {{PW}} and {{B64}} where a careless registry would
// echo the password or the Basic header's value back; {{URL}} is the registry's own base URL, so
// that realms can point back at it.
const (
	fuzzUser     = "alice"
	fuzzPassword = "PLANTED-registry-pw-e41f"
)

var fuzzBasic = base64.StdEncoding.EncodeToString([]byte(fuzzUser + ":" + fuzzPassword))

var fuzzStatuses = []int{200, 401, 403, 404, 400, 429, 500, 502, 503, 301, 302, 204}

// fuzzRegistry answers GET /v2/ without credentials with pingStatus and the fuzzed challenge,
// GET /v2/ with credentials with authedStatus, and every other path (the realm) with
// realmStatus and the fuzzed body. It records whether it ever accepted the planted credential.
type fuzzRegistry struct {
	srv *httptest.Server

	mu                                    sync.Mutex
	challenge                             string
	pingStatus, authedStatus, realmStatus int
	realmBody                             string
	accepted                              bool
	offHost                               []string
}

func (r *fuzzRegistry) expand(s string) string {
	return strings.NewReplacer("{{PW}}", fuzzPassword, "{{B64}}", fuzzBasic, "{{URL}}", r.srv.URL).Replace(s)
}

func (r *fuzzRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, p, basic := req.BasicAuth()
	ours := basic && u == fuzzUser && p == fuzzPassword
	status := r.realmStatus
	if strings.TrimRight(req.URL.Path, "/") == "/v2" {
		status = r.pingStatus
		if req.Header.Get("Authorization") != "" {
			status = r.authedStatus
		} else if r.challenge != "" {
			w.Header().Set("WWW-Authenticate", r.expand(r.challenge))
		}
	}
	if ours && status >= 200 && status < 300 {
		r.accepted = true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status != http.StatusNoContent {
		_, _ = w.Write([]byte(r.expand(r.realmBody)))
	}
}

// RoundTrip lets requests reach only the fake registry. A realm on another host is normal (Docker
// Hub's is auth.docker.io) and gets the credential over https; one sent in clear text to a host
// that is not this machine is recorded.
func (r *fuzzRegistry) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != strings.TrimPrefix(r.srv.URL, "http://") {
		// Host names are case-insensitive: LOCALHOST is this machine as much as localhost is.
		ip := net.ParseIP(req.URL.Hostname())
		clear := req.URL.Scheme != "https" && !strings.EqualFold(req.URL.Hostname(), "localhost") && (ip == nil || !ip.IsLoopback())
		if clear && (req.Header.Get("Authorization") != "" || strings.Contains(req.URL.String(), fuzzPassword)) {
			r.mu.Lock()
			r.offHost = append(r.offHost, req.URL.Redacted())
			r.mu.Unlock()
		}
		return nil, errors.New("fuzz: only the test registry is reachable")
	}
	return r.srv.Client().Transport.RoundTrip(req)
}

// FuzzCheck runs the login check against a registry whose /v2/ answers with a fuzzed
// WWW-Authenticate challenge and status, and whose realm answers a fuzzed status and body (the
// {{...}} markers plant the credential where a registry could echo it). It asserts: no panic;
// every error wraps exactly one of ErrBadCredentials, ErrUnreachable, ErrProtocol, is bounded
// and never contains the password or the Basic header value; success only when the registry
// accepted the credential; the credential never goes in clear text to another host.
func FuzzCheck(f *testing.F) {
	reg := &fuzzRegistry{}
	reg.srv = httptest.NewServer(reg)
	f.Cleanup(reg.srv.Close)
	f.Fuzz(func(t *testing.T, challenge string, realmBody string, ping, authed, realm uint8) {
		reg.mu.Lock()
		reg.challenge, reg.realmBody, reg.accepted, reg.offHost = challenge, realmBody, false, nil
		reg.pingStatus = fuzzStatuses[int(ping)%len(fuzzStatuses)]
		reg.authedStatus = fuzzStatuses[int(authed)%len(fuzzStatuses)]
		reg.realmStatus = fuzzStatuses[int(realm)%len(fuzzStatuses)]
		reg.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := registryauth.Check(ctx, &http.Client{Transport: reg},
			registryauth.Target{Registry: strings.TrimPrefix(reg.srv.URL, "http://"), Repository: "library/alpine"},
			registryauth.Credential{Username: fuzzUser, Password: fuzzPassword})

		reg.mu.Lock()
		accepted, offHost := reg.accepted, reg.offHost
		reg.mu.Unlock()
		if len(offHost) > 0 {
			t.Fatalf("the credential was sent in clear text to another host: %v", offHost)
		}
		if err == nil {
			if !accepted {
				t.Fatal("Check passed but the registry never accepted the credential")
			}
			return
		}
		kinds := 0
		for _, k := range []error{registryauth.ErrBadCredentials, registryauth.ErrUnreachable, registryauth.ErrProtocol} {
			if errors.Is(err, k) {
				kinds++
			}
		}
		msg := err.Error()
		switch {
		case kinds != 1:
			t.Fatalf("error wraps %d of the sentinel errors: %v", kinds, err)
		case strings.Contains(msg, fuzzPassword) || strings.Contains(msg, fuzzBasic):
			t.Fatalf("error contains the credential: %s", msg)
		case strings.Contains(msg, "%!") || strings.Contains(msg, "<nil>"):
			t.Fatalf("malformed error: %s", msg)
		case len(msg) > 600:
			t.Fatalf("error of %d bytes: %s", len(msg), msg)
		}
	})
}
