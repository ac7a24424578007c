package webidentity_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/jwtkit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/stsemu"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

const role = "arn:aws:iam::123456789012:role/ptc-rotator"

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t *testing.T, clk *clock) (*stsemu.Server, *httptest.Server, *webidentity.STS) {
	t.Helper()
	emu := stsemu.New(stsemu.Options{Region: "eu-west-1", Credentials: map[string]string{"AKID": "s"}, Roles: map[string]string{"AKID": role}, Now: clk.now})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	c := sts.New(sts.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("AKID", "s", "")})
	return emu, srv, &webidentity.STS{API: c}
}

// TestTokenFromSTS: the STS source asks with the audience, algorithm and duration given and
// returns a token that verifies at the issuer, with STS's expiry.
func TestTokenFromSTS(t *testing.T) {
	clk := &clock{time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	emu, srv, src := setup(t, clk)
	tok, err := src.Token(context.Background(), webidentity.Request{Audience: "api://AzureADTokenExchange", Algorithm: webidentity.ES384, Duration: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Expires.Equal(clk.t.Add(2 * time.Minute)) {
		t.Errorf("Expires = %v", tok.Expires)
	}
	keys, err := jwtkit.Discover(context.Background(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtkit.Verify(tok.JWT, keys, jwtkit.Expect{Issuer: srv.URL, Subject: role, Audience: "api://AzureADTokenExchange", Algorithms: []string{"ES384"}, Now: clk.t}); err != nil {
		t.Fatal(err)
	}
	if is := emu.Issued(); len(is) != 1 || is[0].Algorithm != "ES384" || is[0].Duration != 2*time.Minute {
		t.Errorf("asked STS for %+v", is)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok); strings.Contains(s, tok.JWT) {
		t.Errorf("formatting a Token shows the JWT: %s", s)
	}
}

// TestCacheReusesWithinExpiry: one STS call for repeated requests until ReuseMargin before the
// expiry, a new one after; another audience is another token.
func TestCacheReusesWithinExpiry(t *testing.T) {
	clk := &clock{time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	emu, _, src := setup(t, clk)
	c := webidentity.NewCache(src, clk.now)
	req := webidentity.Request{Audience: "api://AzureADTokenExchange"} // defaults: RS256, 5 minutes
	first, err := c.Token(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(webidentity.DefaultDuration - webidentity.ReuseMargin - time.Second)
	again, err := c.Token(context.Background(), req)
	if err != nil || again.JWT != first.JWT {
		t.Fatalf("not reused within expiry: %v", err)
	}
	if n := len(emu.Issued()); n != 1 {
		t.Fatalf("%d STS calls, want 1", n)
	}
	clk.t = clk.t.Add(2 * time.Second)
	fresh, err := c.Token(context.Background(), req)
	if err != nil || fresh.JWT == first.JWT {
		t.Fatalf("not renewed near expiry: %v", err)
	}
	if _, err := c.Token(context.Background(), webidentity.Request{Audience: "https://issuer.enforce.dev"}); err != nil {
		t.Fatal(err)
	}
	if n := len(emu.Issued()); n != 3 {
		t.Errorf("%d STS calls, want 3", n)
	}
	c.Drop()
	if _, err := c.Token(context.Background(), req); err != nil || len(emu.Issued()) != 4 {
		t.Errorf("Drop did not forget the token: %v, %d calls", err, len(emu.Issued()))
	}
}

// TestFederationDisabledNamesTheFix: with federation off in the account the error says which
// command to run.
func TestFederationDisabledNamesTheFix(t *testing.T) {
	clk := &clock{time.Now()}
	emu, _, src := setup(t, clk)
	emu.SetEnabled(false)
	_, err := src.Token(context.Background(), webidentity.Request{Audience: "api://AzureADTokenExchange"})
	if err == nil || !strings.Contains(err.Error(), "run `aws iam enable-outbound-web-identity-federation` once in this account") {
		t.Fatalf("error %v does not name the fix", err)
	}
}

// TestRequestChecks: what STS would refuse is refused before any call, naming the parameter.
func TestRequestChecks(t *testing.T) {
	clk := &clock{time.Now()}
	emu, _, src := setup(t, clk)
	for _, r := range []webidentity.Request{
		{},
		{Audience: "a", Algorithm: "HS256"},
		{Audience: "a", Duration: 30 * time.Second},
		{Audience: "a", Duration: 2 * time.Hour},
	} {
		if _, err := src.Token(context.Background(), r); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
	if n := len(emu.Issued()); n != 0 {
		t.Errorf("%d calls made", n)
	}
	var none *webidentity.STS
	if _, err := none.Token(context.Background(), webidentity.Request{Audience: "a"}); err == nil || !strings.Contains(err.Error(), "sts:GetWebIdentityToken") {
		t.Errorf("no client: %v", err)
	}
}
