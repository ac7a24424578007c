package acremu

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/jwtkit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/stsemu"
)

const (
	fedRole   = "arn:aws:iam::123456789012:role/ptc-rotator"
	fedAud    = "api://AzureADTokenExchange"
	jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// fedEnv is an Entra ID whose app has one federated credential for the role on an STS
// emulator's issuer, with no client secret at all.
func fedEnv(t *testing.T) (*env, *stsemu.Server, string) {
	t.Helper()
	issuer := stsemu.New(stsemu.Options{Region: "eu-west-1"})
	isrv := httptest.NewServer(issuer)
	t.Cleanup(isrv.Close)
	e := newEnv(t, Options{FederatedCredentials: []FederatedCredential{{Issuer: isrv.URL, Subject: fedRole, Audience: fedAud}}})
	e.s.opts.ClientSecret = "" // federated only: no secret to fall back on
	return e, issuer, isrv.URL
}

func (e *env) assert(assertion string, extra url.Values) answer {
	e.t.Helper()
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "scope": {ManagementScope},
		"client_assertion_type": {jwtBearer}, "client_assertion": {assertion}}
	for k, v := range extra {
		f[k] = v
	}
	return e.do(http.MethodPost, "/"+tenant+"/oauth2/v2.0/token", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(f.Encode()))
}

func claims(iss, sub, aud string, iat time.Time, life time.Duration) map[string]any {
	return map[string]any{"iss": iss, "sub": sub, "aud": aud, "iat": iat.Unix(), "exp": iat.Add(life).Unix(), "jti": "j"}
}

// TestFederatedAssertionAccepted: a token of the registered issuer about the registered role for
// the registered audience, signed RS256 or ES384 by the issuer, gets an ARM token that ARM takes.
func TestFederatedAssertionAccepted(t *testing.T) {
	e, issuer, iss := fedEnv(t)
	for _, alg := range []string{"RS256", "ES384"} {
		tok, err := issuer.SignAs(alg, claims(iss, fedRole, fedAud, e.clk.Now(), 5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		a := e.assert(tok, nil)
		if a.status != http.StatusOK || a.body["access_token"] == "" {
			t.Fatalf("%s: %d %v", alg, a.status, a.body)
		}
	}
}

// TestFederatedAssertionRefusals plays each forged or misdirected assertion; each is refused
// with the AADSTS code Entra ID answers for it and no token is issued.
func TestFederatedAssertionRefusals(t *testing.T) {
	e, issuer, iss := fedEnv(t)
	now := e.clk.Now()
	sign := func(c map[string]any) string {
		tok, err := issuer.SignAs("RS256", c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// Re-signed: the issuer's claims and kid, but the attacker's own key.
	forger := jwtkit.MustKey("RS256", issuer.KeySet().Keys[0].Kid)
	resigned, err := jwtkit.Sign(forger, claims(iss, fedRole, fedAud, now, 5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	good := sign(claims(iss, fedRole, fedAud, now, 5*time.Minute))
	cases := []struct {
		name, assertion, code string
		extra                 url.Values
	}{
		{"wrong audience", sign(claims(iss, fedRole, "https://issuer.enforce.dev", now, 5*time.Minute)), "AADSTS700212", nil},
		{"another role", sign(claims(iss, "arn:aws:iam::123456789012:role/someone-else", fedAud, now, 5*time.Minute)), "AADSTS700213", nil},
		{"another account's issuer", sign(claims("http://127.0.0.1:1", fedRole, fedAud, now, 5*time.Minute)), "AADSTS700211", nil},
		{"expired", sign(claims(iss, fedRole, fedAud, now.Add(-10*time.Minute), 5*time.Minute)), "AADSTS700024", nil},
		{"re-signed with another key", resigned, "AADSTS50013", nil},
		{"not a JWT", "not-a-jwt", "AADSTS50027", nil},
		{"wrong assertion type", good, "AADSTS700023", url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}}},
		{"assertion and secret together", good, "AADSTS90014", url.Values{"client_secret": {secret}}},
	}
	before := len(e.s.Issued())
	for _, c := range cases {
		a := e.assert(c.assertion, c.extra)
		desc, _ := a.body["error_description"].(string)
		if a.status == http.StatusOK || !strings.HasPrefix(desc, c.code+":") {
			t.Errorf("%s: %d %q, want %s", c.name, a.status, desc, c.code)
		}
	}
	if n := len(e.s.Issued()); n != before {
		t.Errorf("%d ARM tokens issued on refused assertions", n-before)
	}
	// Without a client secret on the app, an empty client_secret is no way in either.
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "scope": {ManagementScope}}
	a := e.do(http.MethodPost, "/"+tenant+"/oauth2/v2.0/token", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(f.Encode()))
	if a.status != http.StatusUnauthorized {
		t.Errorf("no secret, no assertion: %d %v", a.status, a.body)
	}
}
