package chainguardemu

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/jwtkit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/stsemu"
)

const (
	group = "0123456789abcdef0123456789abcdef01234567"
	ident = group + "/aaaaaaaaaaaaaaaa"
	role  = "arn:aws:iam::123456789012:role/ptc-rotator"
)

type fixture struct {
	t      *testing.T
	now    time.Time
	issuer *stsemu.Server
	iss    string
	s      *Server
	url    string
}

func setup(t *testing.T) *fixture {
	f := &fixture{t: t, now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	f.issuer = stsemu.New(stsemu.Options{Region: "eu-west-1"})
	isrv := httptest.NewServer(f.issuer)
	t.Cleanup(isrv.Close)
	f.iss = isrv.URL
	f.s = New(Options{Now: func() time.Time { return f.now }, Group: group, Assumable: []Assumable{{ID: ident, Issuer: f.iss, Subject: role, Capabilities: MinterCapabilities}}})
	srv := httptest.NewServer(f.s)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fixture) do(method, path, auth string, form url.Values, body any) (int, map[string]any) {
	f.t.Helper()
	var rd io.Reader
	ct := ""
	switch {
	case form != nil:
		rd, ct = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	case body != nil:
		b, _ := json.Marshal(body)
		rd, ct = strings.NewReader(string(b)), "application/json"
	}
	req, _ := http.NewRequest(method, f.url+path, rd)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (f *fixture) awsToken(sub, aud string, iat time.Time) string {
	tok, err := f.issuer.SignAs("RS256", map[string]any{"iss": f.iss, "sub": sub, "aud": aud, "iat": iat.Unix(), "exp": iat.Add(5 * time.Minute).Unix()})
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func (f *fixture) exchange(tok string) (int, map[string]any) {
	return f.do(http.MethodPost, "/sts/exchange", "Bearer "+tok, url.Values{"aud": {APIAudience}, "identity": {ident}}, nil)
}

// TestExchangeRefusals: the exchange accepts the trusted role's token and refuses a wrong
// audience, another role, an expired token and one re-signed with another key; none of them
// gets a Chainguard token.
func TestExchangeRefusals(t *testing.T) {
	f := setup(t)
	if st, out := f.exchange(f.awsToken(role, IssuerAudience, f.now)); st != 200 || out["token"] == "" {
		t.Fatalf("trusted role: %d %v", st, out)
	}
	forger := jwtkit.MustKey("RS256", f.issuer.KeySet().Keys[0].Kid)
	resigned, _ := jwtkit.Sign(forger, map[string]any{"iss": f.iss, "sub": role, "aud": IssuerAudience, "iat": f.now.Unix(), "exp": f.now.Add(time.Minute).Unix()})
	for name, c := range map[string]struct {
		tok    string
		status int
	}{
		"wrong audience": {f.awsToken(role, "api://AzureADTokenExchange", f.now), 403},
		"another role":   {f.awsToken("arn:aws:iam::123456789012:role/other", IssuerAudience, f.now), 403},
		"expired":        {f.awsToken(role, IssuerAudience, f.now.Add(-time.Hour)), 401},
		"re-signed":      {resigned, 401},
		"not a JWT":      {"garbage", 401},
	} {
		if st, out := f.exchange(c.tok); st != c.status || out["token"] != nil {
			t.Errorf("%s: %d %v, want %d", name, st, out, c.status)
		}
	}
	if n := len(f.s.Issued()); n != 1 {
		t.Errorf("%d tokens issued, want 1", n)
	}
	if st, _ := f.do(http.MethodPost, "/sts/exchange", "Bearer "+f.awsToken(role, IssuerAudience, f.now), url.Values{"aud": {APIAudience}, "identity": {group + "/bbbbbbbbbbbbbbbb"}}, nil); st != 403 {
		t.Errorf("unknown identity: %d", st)
	}
}

// TestPullTokenLifecycle: an identity made through the API with a key's JWKS and bound to
// registry.pull gets a registry token for a JWT signed by that key; unbound, signed by another
// key, past its expiration, or deleted, it does not; a Chainguard token without a capability or
// for another audience is refused by the API.
func TestPullTokenLifecycle(t *testing.T) {
	f := setup(t)
	_, out := f.exchange(f.awsToken(role, IssuerAudience, f.now))
	auth := "Bearer " + out["token"].(string)
	key, other := jwtkit.MustKey("ES256", "k1"), jwtkit.MustKey("ES256", "k1")
	jwks, _ := json.Marshal(jwtkit.KeySet(key))
	st, id := f.do(http.MethodPost, "/iam/v1/identities/"+group, auth, nil, map[string]any{"name": "ptc-abc", "static": map[string]any{
		"issuer": "https://pulltoken.issuer.chainguard.dev", "subject": "ptc-abc", "issuerKeys": string(jwks), "expiration": f.now.Add(48 * time.Hour).Format(time.RFC3339)}})
	if st != 200 {
		t.Fatalf("create: %d %v", st, id)
	}
	idID := id["id"].(string)
	jwt := func(k jwtkit.Key, exp time.Time) string {
		s, _ := jwtkit.Sign(k, map[string]any{"iss": "https://pulltoken.issuer.chainguard.dev", "sub": "ptc-abc", "aud": IssuerAudience, "iat": f.now.Unix(), "exp": exp.Unix()})
		return s
	}
	login := func(user, pass string) int {
		req, _ := http.NewRequest(http.MethodGet, f.url+"/token?scope=repository:acme/static:pull&service=cgr.dev", nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := jwt(key, f.now.Add(48*time.Hour))
	if st := login(idID, good); st != 401 {
		t.Errorf("unbound identity logged in: %d", st)
	}
	_, roles := f.do(http.MethodGet, "/iam/v1/roles?name=registry.pull", auth, nil, nil)
	roleID := roles["items"].([]any)[0].(map[string]any)["id"].(string)
	if st, b := f.do(http.MethodPost, "/iam/v1/rolebindings/"+group, auth, nil, map[string]any{"identity": idID, "role": roleID}); st != 200 {
		t.Fatalf("bind: %d %v", st, b)
	}
	if st := login(idID, good); st != 200 {
		t.Fatalf("bound identity: %d", st)
	}
	if st := login(idID, jwt(other, f.now.Add(48*time.Hour))); st != 401 {
		t.Errorf("JWT of another key: %d", st)
	}
	f.now = f.now.Add(49 * time.Hour)
	if st := login(idID, jwt(key, f.now.Add(time.Hour))); st != 401 {
		t.Errorf("expired identity: %d", st)
	}
	f.now = f.now.Add(-49 * time.Hour)
	if st, b := f.do(http.MethodPost, "/iam/v1/identities/"+group, auth, nil, map[string]any{"name": "x", "static": map[string]any{
		"issuer": "i", "subject": "s", "issuerKeys": string(jwks), "expiration": f.now.Add(31 * 24 * time.Hour).Format(time.RFC3339)}}); st != 400 {
		t.Errorf("31-day static identity: %d %v", st, b)
	}
	if st, _ := f.do(http.MethodGet, "/iam/v1/identities?uidp.children_of="+group, "Bearer nope", nil, nil); st != 401 {
		t.Errorf("unknown token listed identities: %d", st)
	}
	if st, _ := f.do(http.MethodDelete, "/iam/v1/identities/"+idID, auth, nil, nil); st != 200 {
		t.Fatalf("delete: %d", st)
	}
	if st := login(idID, good); st != 401 {
		t.Errorf("deleted identity logged in: %d", st)
	}
	if st, _ := f.do(http.MethodDelete, "/iam/v1/identities/"+idID, auth, nil, nil); st != 404 {
		t.Errorf("second delete: %d", st)
	}
	// A token for another audience, and one lacking a capability.
	_, out2 := f.do(http.MethodPost, "/sts/exchange", "Bearer "+f.awsToken(role, IssuerAudience, f.now), url.Values{"aud": {"cgr.dev"}, "identity": {ident}}, nil)
	if st, _ := f.do(http.MethodGet, "/iam/v1/identities", "Bearer "+out2["token"].(string), nil, nil); st != 401 {
		t.Errorf("cgr.dev-audience token on the API: %d", st)
	}
	f.s.opts.Assumable[0].Capabilities = []string{CapIdentityList}
	_, out3 := f.exchange(f.awsToken(role, IssuerAudience, f.now))
	if st, _ := f.do(http.MethodDelete, "/iam/v1/identities/"+group+"/cccccccccccccccc", "Bearer "+out3["token"].(string), nil, nil); st != 403 {
		t.Errorf("delete without identity.delete: %d", st)
	}
}

// TestExchangeSubjectPattern: an assumable identity registered with a subject pattern (both
// function roles, as docs/deploy.md registers it) accepts each role it names, and refuses
// another role of the account and one that only contains a name it matches.
func TestExchangeSubjectPattern(t *testing.T) {
	f := setup(t)
	provisioner := "arn:aws:iam::123456789012:role/ptc-provisioner"
	f.s = New(Options{Now: func() time.Time { return f.now }, Group: group, Assumable: []Assumable{{ID: ident, Issuer: f.iss,
		SubjectPattern: regexp.QuoteMeta(role) + "|" + regexp.QuoteMeta(provisioner), Capabilities: MinterCapabilities}}})
	srv := httptest.NewServer(f.s)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	for _, sub := range []string{role, provisioner} {
		if st, out := f.exchange(f.awsToken(sub, IssuerAudience, f.now)); st != 200 || out["token"] == nil {
			t.Errorf("%s: %d %v, want a token", sub, st, out)
		}
	}
	for _, sub := range []string{"arn:aws:iam::123456789012:role/other", role + "-evil"} {
		if st, out := f.exchange(f.awsToken(sub, IssuerAudience, f.now)); st != 403 || out["token"] != nil {
			t.Errorf("%s: %d %v, want 403", sub, st, out)
		}
	}
}
