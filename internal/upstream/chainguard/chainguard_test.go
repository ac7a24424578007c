package chainguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/chainguardemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/stsemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/chainguard"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

const (
	group     = "0123456789abcdef0123456789abcdef01234567"
	assumable = group + "/aaaaaaaaaaaaaaaa"
	role      = "arn:aws:iam::123456789012:role/ptc-rotator"
	repo      = "acme.com/static"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	clock *clock
	sts   *stsemu.Server
	cg    *chainguardemu.Server
	url   string
	wid   webidentity.Source
	logs  bytes.Buffer
	mu    sync.Mutex
	errs  []error
}

func (e *env) Write(p []byte) (int, error) { e.mu.Lock(); defer e.mu.Unlock(); return e.logs.Write(p) }

// newEnv: an STS emulator (the AWS account's issuer) and a Chainguard emulator whose assumable
// identity trusts role on that issuer with caps.
func newEnv(t *testing.T, trusted string, caps []string) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}}
	e.sts = stsemu.New(stsemu.Options{Region: "eu-west-1", Credentials: map[string]string{"AKID": "s"}, Roles: map[string]string{"AKID": role}, Now: e.clock.Now})
	ssrv := httptest.NewServer(e.sts)
	t.Cleanup(ssrv.Close)
	e.cg = chainguardemu.New(chainguardemu.Options{Now: e.clock.Now, Group: group,
		Assumable: []chainguardemu.Assumable{{ID: assumable, Issuer: ssrv.URL, Subject: trusted, Capabilities: caps}}})
	csrv := httptest.NewServer(e.cg)
	t.Cleanup(csrv.Close)
	e.url = csrv.URL
	e.wid = &webidentity.STS{API: sts.New(sts.Options{Region: "eu-west-1", BaseEndpoint: aws.String(ssrv.URL), Credentials: credentials.NewStaticCredentialsProvider("AKID", "s", "")})}
	t.Cleanup(e.scan)
	return e
}

// scan fails the test if a log line or error shows a web identity token, a Chainguard token, a
// pull token JWT or a private key.
func (e *env) scan() {
	e.mu.Lock()
	all := []string{e.logs.String()}
	e.mu.Unlock()
	for _, err := range e.errs {
		if err != nil {
			all = append(all, err.Error())
		}
	}
	planted := append(e.sts.Tokens(), e.cg.Issued()...)
	for _, s := range all {
		for _, p := range planted {
			if strings.Contains(s, p) {
				e.t.Errorf("secret %.12s… leaked in %q", p, s)
			}
		}
		if strings.Contains(s, `"d":`) || strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, "eyJ") {
			e.t.Errorf("key material or a JWT in %q", s)
		}
	}
}

func (e *env) note(err error) error { e.errs = append(e.errs, err); return err }

func (e *env) source(edit map[string]any) []byte {
	m := map[string]any{"group": group, "identity": assumable, "checkRepository": repo, "issuerUrl": e.url, "apiUrl": e.url, "tokenLifetimeHours": 48}
	for k, v := range edit {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}

func (e *env) opts() upstream.Options {
	return upstream.Options{Now: e.clock.Now, RegistryURL: e.url, Standins: pinned.NewStandins(e.url), WebIdentity: e.wid,
		Logger: slog.New(slog.NewJSONHandler(e, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

func (e *env) upstream() *chainguard.Chainguard {
	e.t.Helper()
	c, err := chainguard.New(e.source(nil), e.opts())
	if err != nil {
		e.t.Fatal(e.note(err))
	}
	return c
}

func ctx() context.Context { return context.Background() }

// TestMintVerifyListRevoke: Mint creates a bound static identity named with the label whose JWT
// logs in at the registry; Tokens finds it by label; Revoke deletes it and the login stops
// working; a second Revoke is not an error. The role's web identity token and the Chainguard
// token are each obtained once.
func TestMintVerifyListRevoke(t *testing.T) {
	e := newEnv(t, role, chainguardemu.MinterCapabilities)
	c := e.upstream()
	label := ptcsecret.Label("ecr-pullthroughcache/chainguard", "11111111-2222-3333-4444-555555555555")
	m, err := c.Mint(ctx(), upstream.MintRequest{SecretName: "ecr-pullthroughcache/chainguard", VersionID: "11111111-2222-3333-4444-555555555555", Label: label})
	if err != nil {
		t.Fatal(e.note(err))
	}
	ids := e.cg.Identities()
	if len(ids) != 1 || ids[0].Name != label || ids[0].ID != m.Credential.Username || !e.cg.Bound(ids[0].ID) {
		t.Fatalf("identities %+v, credential username %s", ids, m.Credential.Username)
	}
	if want := e.clock.Now().Add(48 * time.Hour); !ids[0].Expiration.Equal(want) || !m.Token.ExpiresAt.Equal(want) {
		t.Errorf("expiration %v / %v, want %v", ids[0].Expiration, m.Token.ExpiresAt, want)
	}
	v, err := c.Verify(ctx(), m.Credential)
	if err != nil {
		t.Fatal(e.note(err))
	}
	if !v.ExpiresAt.Equal(m.Token.ExpiresAt) {
		t.Errorf("Verify expiry %v, want %v", v.ExpiresAt, m.Token.ExpiresAt)
	}
	toks, err := c.Tokens(ctx(), ptcsecret.LabelPrefix(ptcsecret.Key("eu-west-1", "123456789012", "x")))
	if err != nil || len(toks) != 0 {
		t.Errorf("another secret's prefix lists %v, %v", toks, err)
	}
	toks, err = c.Tokens(ctx(), label)
	if err != nil || len(toks) != 1 || toks[0].ID != m.Credential.Username {
		t.Fatalf("Tokens = %v, %v", toks, e.note(err))
	}
	if err := c.Revoke(ctx(), toks[0]); err != nil {
		t.Fatal(e.note(err))
	}
	if _, err := c.Verify(ctx(), m.Credential); err == nil {
		t.Error("a revoked pull token still logs in")
	}
	if err := c.Revoke(ctx(), toks[0]); err != nil {
		t.Errorf("second Revoke: %v", e.note(err))
	}
	if n := len(e.sts.Issued()); n != 1 {
		t.Errorf("%d web identity tokens, want 1", n)
	}
}

// TestRefusals: the assumable identity trusts another role → the exchange is refused and the
// error says what to register; without identity.delete the revocation fails naming the role
// to bind; a revocation outside the group is refused without a call.
func TestRefusals(t *testing.T) {
	e := newEnv(t, "arn:aws:iam::123456789012:role/someone-else", chainguardemu.MinterCapabilities)
	_, err := e.upstream().Mint(ctx(), upstream.MintRequest{Label: "ptc-x"})
	if err == nil || !strings.Contains(e.note(err).Error(), "subject = this function's role ARN") {
		t.Fatalf("untrusted role: %v", err)
	}
	if len(e.cg.Identities()) != 0 {
		t.Error("an identity was created")
	}

	e = newEnv(t, role, []string{chainguardemu.CapIdentityCreate, chainguardemu.CapRoleBindingsCreate, chainguardemu.CapRolesList, chainguardemu.CapIdentityList})
	c := e.upstream()
	m, err := c.Mint(ctx(), upstream.MintRequest{Label: "ptc-y"})
	if err != nil {
		t.Fatal(e.note(err))
	}
	if err := c.Revoke(ctx(), m.Token); err == nil || !strings.Contains(e.note(err).Error(), "identity.delete") {
		t.Errorf("revoke without identity.delete: %v", err)
	}
	e.cg.ResetCalls()
	if err := c.Revoke(ctx(), upstream.Token{ID: "ffffffffffffffffffffffffffffffffffffffff/0000000000000000", Label: "ptc-y"}); err == nil {
		t.Error("revoked an identity of another group")
	}
	if len(e.cg.Calls()) != 0 {
		t.Error("a call was made for another group's identity")
	}
}

// TestPinnedHosts: without stand-ins the emulator's loopback URLs are refused, and so is a
// registry other than cgr.dev; with the defaults everything points at Chainguard.
func TestPinnedHosts(t *testing.T) {
	e := newEnv(t, role, chainguardemu.MinterCapabilities)
	o := e.opts()
	o.Standins = pinned.Standins{}
	if _, err := chainguard.New(e.source(nil), o); err == nil || !strings.Contains(err.Error(), `"issuerUrl"`) {
		t.Errorf("loopback issuer without stand-in: %v", err)
	}
	o.RegistryURL = "evil.example"
	if _, err := chainguard.New(e.source(map[string]any{"issuerUrl": nil, "apiUrl": nil}), o); err == nil || !strings.Contains(err.Error(), "cgr.dev") {
		t.Errorf("registry evil.example: %v", err)
	}
	o.RegistryURL = ""
	if _, err := chainguard.New(e.source(map[string]any{"issuerUrl": nil, "apiUrl": nil}), o); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestParseSource: each field's check names the field, never a value.
func TestParseSource(t *testing.T) {
	e := newEnv(t, role, nil)
	for name, c := range map[string]struct {
		edit map[string]any
		want string
	}{
		"no group":          {map[string]any{"group": nil}, `"group"`},
		"bad identity":      {map[string]any{"identity": "PLANTED-not-a-uidp"}, `"identity"`},
		"no repository":     {map[string]any{"checkRepository": nil}, `"checkRepository"`},
		"lifetime too long": {map[string]any{"tokenLifetimeHours": 8760}, `"tokenLifetimeHours"`},
		"unknown field":     {map[string]any{"password": "PLANTED-x"}, "password"},
	} {
		_, err := chainguard.ParseSource(e.source(c.edit))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "PLANTED") {
			t.Errorf("%s: %v", name, err)
		}
	}
	s, err := chainguard.ParseSource(e.source(map[string]any{"tokenLifetimeHours": nil, "issuerUrl": nil, "apiUrl": nil}))
	if err != nil || s.TokenLifetimeHours != 720 || s.IssuerURL != chainguard.DefaultIssuerURL || s.APIURL != chainguard.DefaultAPIURL {
		t.Errorf("defaults: %+v, %v", s, err)
	}
}
