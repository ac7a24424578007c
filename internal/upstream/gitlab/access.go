package gitlab

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// access is one entry of a registry token's "access" claim, as the distribution token spec
// (docs/spec/auth/jwt.md) defines it.
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// accessRecorder watches the handshake for the realm's answer and keeps only the "access"
// claim of the registry token it carries — never the token itself. The claim is read without
// checking the signature: it is what the issuer says it granted, and nothing is authorised on
// the strength of it here; it can only make the check stricter.
type accessRecorder struct {
	inner http.RoundTripper

	mu     sync.Mutex
	known  bool
	access []access
}

const maxTokenAnswer = 1 << 20

// RoundTrip implements http.RoundTripper.
func (a *accessRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	inner := a.inner
	if inner == nil {
		inner = http.DefaultTransport
	}
	resp, err := inner.RoundTrip(req)
	// The realm answer: a GET with the service parameter and Basic credentials, answered 200.
	if err != nil || resp.StatusCode != http.StatusOK || req.URL.Query().Get("service") == "" {
		return resp, err
	}
	if _, _, basic := req.BasicAuth(); !basic {
		return resp, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxTokenAnswer))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil // the handshake will report the short body itself
	}
	var answer struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &answer) != nil {
		return resp, nil
	}
	tok := answer.Token
	if tok == "" {
		tok = answer.AccessToken
	}
	if claims, ok := accessClaim(tok); ok {
		a.mu.Lock()
		a.known, a.access = true, claims
		a.mu.Unlock()
	}
	return resp, nil
}

func (a *accessRecorder) result() ([]access, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.access, a.known
}

// accessClaim decodes the "access" claim of a JWT; ok is false when tok is not a JWT or has
// no such claim (an opaque token says nothing about its rights).
func accessClaim(tok string) ([]access, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	var claims struct {
		Access *[]access `json:"access"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Access == nil {
		return nil, false
	}
	return *claims.Access, true
}

// grantsPull reports whether the claim grants pull on repo.
func grantsPull(granted []access, repo string) bool {
	for _, a := range granted {
		if a.Type == "repository" && a.Name == repo && (slices.Contains(a.Actions, "pull") || slices.Contains(a.Actions, "*")) {
			return true
		}
	}
	return false
}
