package acr_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/acremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/stsemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

const rotatorRole = "arn:aws:iam::123456789012:role/ptc-rotator"

// fedEnv is an ACR emulator whose app registration has no client secret, only a federated
// credential for rotatorRole on an STS emulator's issuer, and a web identity source that asks
// that STS through the real SDK client.
type fedEnv struct {
	*env
	sts    *stsemu.Server
	issuer string
	wid    webidentity.Source
}

func newFedEnv(t *testing.T, role, audience string) *fedEnv {
	t.Helper()
	var clk *clock
	s := stsemu.New(stsemu.Options{Region: "eu-west-1", Credentials: map[string]string{"AKIDROTATOR": "rotator-secret"},
		Roles: map[string]string{"AKIDROTATOR": role}, Now: func() time.Time { return clk.Now() }})
	ssrv := httptest.NewServer(s)
	t.Cleanup(ssrv.Close)
	e := newEnv(t, func(o *acremu.Options) {
		o.ClientSecret = ""
		o.FederatedCredentials = []acremu.FederatedCredential{{Issuer: ssrv.URL, Subject: rotatorRole, Audience: audience}}
	})
	clk = e.clock
	client := sts.New(sts.Options{Region: "eu-west-1", BaseEndpoint: aws.String(ssrv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDROTATOR", "rotator-secret", "")})
	f := &fedEnv{env: e, sts: s, issuer: ssrv.URL, wid: &webidentity.STS{API: client}}
	t.Cleanup(f.scanTokens)
	return f
}

// scanTokens fails the test when an error or log line shows a web identity token STS issued.
func (f *fedEnv) scanTokens() {
	f.logMu.Lock()
	all := []string{f.logs.String()}
	f.logMu.Unlock()
	for _, err := range f.errs {
		if err != nil {
			all = append(all, err.Error())
		}
	}
	for _, s := range all {
		for _, tok := range f.sts.Tokens() {
			if strings.Contains(s, tok) || strings.Contains(s, tok[strings.LastIndexByte(tok, '.')+1:]) {
				f.t.Errorf("web identity token leaked in %q", s)
			}
		}
	}
}

func (f *fedEnv) opts() upstream.Options {
	o := f.env.opts()
	o.WebIdentity = f.wid
	return o
}

func (f *fedEnv) federated(t *testing.T) *acr.ACR {
	t.Helper()
	a, err := acr.New(f.source(map[string]any{"clientSecret": nil, "federated": true}), f.opts())
	if err != nil {
		t.Fatal(f.note(err))
	}
	return a
}

// TestFederatedMintWithoutASecret: with no client secret anywhere, Mint gets Entra's token with
// the role's web identity token (RS256, audience api://AzureADTokenExchange, five minutes) and
// regenerates the slot; the password logs in; a second Mint in the same upstream reuses the
// web identity token and the ARM token.
func TestFederatedMintWithoutASecret(t *testing.T) {
	f := newFedEnv(t, rotatorRole, acr.DefaultAssertionAudience)
	a := f.federated(t)
	m, err := a.Mint(f.ctx(), upstream.MintRequest{Label: "l1"})
	if err != nil {
		t.Fatal(f.note(err))
	}
	f.clock.Advance(acremu.Options{}.ReplicationDelay)
	if err := f.loginErr(m.Credential); err != nil {
		t.Fatalf("minted password does not log in: %v", err)
	}
	if _, err := a.Mint(f.ctx(), upstream.MintRequest{Label: "l2", CurrentStages: []string{"AWSCURRENT", acr.StagePassword1}}); err != nil {
		t.Fatal(f.note(err))
	}
	issued := f.sts.Issued()
	if len(issued) != 1 || issued[0].Algorithm != "RS256" || issued[0].Audience[0] != acr.DefaultAssertionAudience || issued[0].Duration != webidentity.DefaultDuration {
		t.Errorf("STS was asked for %+v, want one RS256 token for %s", issued, acr.DefaultAssertionAudience)
	}
	if g := f.emu.Generations(); len(g) != 2 {
		t.Errorf("%d generations, want 2", len(g))
	}
}

// TestFederatedRefusedByEntraNamesTheCredential: a role Entra does not trust (no federated
// credential for its ARN) is refused; the error says what to register, and neither the web
// identity token nor anything else secret appears in it.
func TestFederatedRefusedByEntraNamesTheCredential(t *testing.T) {
	f := newFedEnv(t, "arn:aws:iam::123456789012:role/someone-else", acr.DefaultAssertionAudience)
	_, err := f.federated(t).Mint(f.ctx(), upstream.MintRequest{Label: "l1"})
	f.note(err)
	if err == nil || !strings.Contains(err.Error(), "AADSTS700213") || !strings.Contains(err.Error(), "federated credential") || !strings.Contains(err.Error(), "subject = this function's role ARN") {
		t.Fatalf("error %v does not name the federated credential to fix", err)
	}
	if len(f.emu.Generations()) != 0 {
		t.Error("generated a password without an Entra token")
	}
}

// TestFederatedAudienceMismatchRefused: Entra's credential names a sovereign cloud's audience
// while the source secret asks for the public one: refused (AADSTS700212); with the matching
// assertionAudience it works.
func TestFederatedAudienceMismatchRefused(t *testing.T) {
	f := newFedEnv(t, rotatorRole, "api://AzureADTokenExchangeUSGov")
	if _, err := f.federated(t).Mint(f.ctx(), upstream.MintRequest{Label: "l1"}); err == nil || !strings.Contains(f.note(err).Error(), "AADSTS700212") {
		t.Fatalf("mismatched audience: %v", err)
	}
	a, err := acr.New(f.source(map[string]any{"clientSecret": nil, "federated": true, "assertionAudience": "api://AzureADTokenExchangeUSGov"}), f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Mint(f.ctx(), upstream.MintRequest{Label: "l1"}); err != nil {
		t.Fatal(f.note(err))
	}
}

// TestFederatedNeedsOutboundFederation: federation off in the account → the error names the
// command to run; no STS client configured → the error says federated mode needs one.
func TestFederatedNeedsOutboundFederation(t *testing.T) {
	f := newFedEnv(t, rotatorRole, acr.DefaultAssertionAudience)
	f.sts.SetEnabled(false)
	_, err := f.federated(t).Mint(f.ctx(), upstream.MintRequest{Label: "l1"})
	if err == nil || !strings.Contains(f.note(err).Error(), "run `aws iam enable-outbound-web-identity-federation` once in this account") {
		t.Fatalf("federation off: %v", err)
	}
	f.wid = nil
	_, err = f.federated(t).Mint(f.ctx(), upstream.MintRequest{Label: "l1"})
	if err == nil || !strings.Contains(f.note(err).Error(), "sts:GetWebIdentityToken") {
		t.Fatalf("no STS client: %v", err)
	}
}

// TestFederatedSourceChecks: the two modes exclude each other and each names its fields.
func TestFederatedSourceChecks(t *testing.T) {
	f := newFedEnv(t, rotatorRole, acr.DefaultAssertionAudience)
	for name, c := range map[string]struct {
		fields map[string]any
		want   string
	}{
		"secret and federated":       {map[string]any{"federated": true}, `"clientSecret" and "federated" exclude each other`},
		"neither":                    {map[string]any{"clientSecret": nil}, `unless "federated": true`},
		"audience without federated": {map[string]any{"assertionAudience": "api://x"}, `"assertionAudience" applies to federated mode only`},
		"audience with a space":      {map[string]any{"clientSecret": nil, "federated": true, "assertionAudience": "a b"}, `"assertionAudience" must be one audience`},
	} {
		_, err := acr.New(f.source(c.fields), f.opts())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	s, err := acr.ParseSource(f.source(map[string]any{"clientSecret": nil, "federated": true}))
	if err != nil || s.AssertionAudience != acr.DefaultAssertionAudience {
		t.Errorf("default audience: %q, %v", s.AssertionAudience, err)
	}
}

// The Entra app a federated source names is what the deployer's FederatedBindings key on; a
// client-secret source is not federated and not limited by them.
func TestFederatedIdentityIsTheEntraApp(t *testing.T) {
	f := newFedEnv(t, rotatorRole, acr.DefaultAssertionAudience)
	id, fed := f.federated(t).FederatedIdentity()
	if !fed || !strings.Contains(id, "/") || strings.HasPrefix(id, "/") || strings.HasSuffix(id, "/") {
		t.Fatalf("FederatedIdentity = %q, %v; want <tenantId>/<clientId>, true", id, fed)
	}
	plain, err := acr.New(f.source(nil), f.env.opts())
	if err != nil {
		t.Fatal(err)
	}
	if _, fed := plain.FederatedIdentity(); fed {
		t.Error("a client-secret source reports federated mode")
	}
}
