package stsemu

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/jwtkit"
)

const (
	role   = "arn:aws:iam::123456789012:role/ptc-rotator"
	keyID  = "AKIDSTSEMU"
	secret = "sts-emu-secret"
)

func start(t *testing.T, now func() time.Time) (*Server, *httptest.Server, *sts.Client) {
	t.Helper()
	emu := New(Options{Region: "eu-west-1", Credentials: map[string]string{keyID: secret}, Roles: map[string]string{keyID: role}, Now: now})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, srv, client(srv.URL, keyID, secret)
}

func client(url, id, key string) *sts.Client {
	return sts.New(sts.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(id, key, "session-token"),
	})
}

// TestGetWebIdentityTokenThroughTheSDK: the real SDK client gets an RS256 and an ES384 token;
// each verifies against the keys discovered at the issuer, with the documented claims.
func TestGetWebIdentityTokenThroughTheSDK(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	emu, srv, c := start(t, func() time.Time { return t0 })
	keys, err := jwtkit.Discover(context.Background(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"RS256", "ES384"} {
		out, err := c.GetWebIdentityToken(context.Background(), &sts.GetWebIdentityTokenInput{
			Audience: []string{"api://AzureADTokenExchange"}, SigningAlgorithm: aws.String(alg), DurationSeconds: aws.Int32(120),
			Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
		})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if !out.Expiration.Equal(t0.Add(120 * time.Second)) {
			t.Errorf("%s: Expiration %v", alg, out.Expiration)
		}
		cl, err := jwtkit.Verify(*out.WebIdentityToken, keys, jwtkit.Expect{Issuer: srv.URL, Subject: role, Audience: "api://AzureADTokenExchange", Algorithms: []string{alg}, Now: t0})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if cl.ID == "" || !cl.IssuedAt.Equal(t0) {
			t.Errorf("%s: jti %q iat %v", alg, cl.ID, cl.IssuedAt)
		}
		var aws map[string]any
		_ = json.Unmarshal(cl.Raw[ClaimsNamespace], &aws)
		if aws["aws_account"] != "123456789012" || aws["source_region"] != "eu-west-1" || aws["request_tags"].(map[string]any)["team"] != "a" {
			t.Errorf("%s: AWS claims %v", alg, aws)
		}
		var aud string
		if json.Unmarshal(cl.Raw["aud"], &aud) != nil {
			t.Errorf("%s: a single audience is not a string claim: %s", alg, cl.Raw["aud"])
		}
	}
	if got := emu.Issued(); len(got) != 2 || got[1].Algorithm != "ES384" || got[0].Duration != 2*time.Minute {
		t.Errorf("Issued = %+v", got)
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestRefusals: federation off, a bad signature, an unknown key and each out-of-range parameter
// are refused with STS's codes, and no token is issued.
func TestRefusals(t *testing.T) {
	emu, srv, c := start(t, nil)
	in := func(f func(*sts.GetWebIdentityTokenInput)) *sts.GetWebIdentityTokenInput {
		i := &sts.GetWebIdentityTokenInput{Audience: []string{"x"}, SigningAlgorithm: aws.String("RS256")}
		if f != nil {
			f(i)
		}
		return i
	}
	ctx := context.Background()
	emu.SetEnabled(false)
	_, err := c.GetWebIdentityToken(ctx, in(nil))
	var off *types.OutboundWebIdentityFederationDisabledException
	if !errors.As(err, &off) {
		t.Errorf("disabled: %v, want OutboundWebIdentityFederationDisabledException", err)
	}
	emu.SetEnabled(true)
	if _, err := client(srv.URL, keyID, "wrong").GetWebIdentityToken(ctx, in(nil)); apiCode(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := client(srv.URL, "AKIDUNKNOWN", secret).GetWebIdentityToken(ctx, in(nil)); apiCode(err) != "InvalidClientTokenId" {
		t.Errorf("unknown key: %v", err)
	}
	for name, f := range map[string]func(*sts.GetWebIdentityTokenInput){
		"duration 59":      func(i *sts.GetWebIdentityTokenInput) { i.DurationSeconds = aws.Int32(59) },
		"duration 3601":    func(i *sts.GetWebIdentityTokenInput) { i.DurationSeconds = aws.Int32(3601) },
		"algorithm HS256":  func(i *sts.GetWebIdentityTokenInput) { i.SigningAlgorithm = aws.String("HS256") },
		"eleven audiences": func(i *sts.GetWebIdentityTokenInput) { i.Audience = strings.Split("a b c d e f g h i j k", " ") },
	} {
		if _, err := c.GetWebIdentityToken(ctx, in(f)); apiCode(err) != "ValidationError" {
			t.Errorf("%s: %v, want ValidationError", name, err)
		}
	}
	if got := emu.Issued(); len(got) != 0 {
		t.Errorf("issued %d tokens on refused requests", len(got))
	}
	resp, err := http.Post(srv.URL+"/", "application/x-www-form-urlencoded", strings.NewReader("Action=GetWebIdentityToken&Version=2011-06-15"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unsigned request: %s", resp.Status)
	}
}

// TestAWSCLI: the aws CLI (botocore's own signer and serializer) gets a token from the emulator
// that verifies (the audience is not an https URL: CLI v1 would fetch such a parameter value
// as a file). Skipped where the CLI is not installed or does not know the command.
func TestAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("aws CLI not installed")
	}
	if out, err := exec.Command("aws", "sts", "get-web-identity-token", "help").CombinedOutput(); err != nil || !strings.Contains(string(out), "--signing-algorithm") {
		t.Skip("this aws CLI does not know sts get-web-identity-token")
	}
	_, srv, _ := start(t, nil)
	cmd := exec.Command("aws", "sts", "get-web-identity-token", "--endpoint-url", srv.URL, "--region", "eu-west-1",
		"--audience", "api://AzureADTokenExchange", "--signing-algorithm", "ES384", "--duration-seconds", "300", "--output", "json")
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "AWS_") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_SESSION_TOKEN=t",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws: %v\n%s", err, out)
	}
	var res struct{ WebIdentityToken, Expiration string }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("aws output: %v", err)
	}
	keys, err := jwtkit.Discover(context.Background(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtkit.Verify(res.WebIdentityToken, keys, jwtkit.Expect{Issuer: srv.URL, Subject: role, Audience: "api://AzureADTokenExchange", Algorithms: []string{"ES384"}}); err != nil {
		t.Fatalf("CLI token: %v", err)
	}
}
