package ecremu

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// newValidateEnv has one docker-hub rule reading the secret nameDocker of sm, which holds
// goodSecret (for the create-time existence check) until the caller changes it; it returns the
// secret's ARN.
func newValidateEnv(t *testing.T, sm *secretStore, verify VerifyFunc) (*env, string) {
	t.Helper()
	arn := sm.put(nameDocker, goodSecret)
	e := start(t, Options{SecretsManager: sm, Verify: verify})
	if _, err := e.ecr.CreatePullThroughCacheRule(ctx(t), &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
		UpstreamRegistry: types.UpstreamRegistryDockerHub, CredentialArn: aws.String(arn),
	}); err != nil {
		t.Fatal(err)
	}
	return e, arn
}

func TestValidateSecretProblems(t *testing.T) {
	const token = "dckr_pat_S3CRET-VALUE"
	tests := []struct {
		name        string
		value       *string // nil: no new string value (see the other fields)
		binary      []byte
		deleted     bool   // deleted for good
		scheduled   bool   // scheduled for deletion (in its recovery window)
		deny        string // reads fail with this Secrets Manager error code
		wantFailure []string
		wantARN     bool // the failure names the secret's ARN
	}{
		{name: "secret deleted", deleted: true, wantFailure: []string{"SecretNotFoundException", "ResourceNotFoundException"}, wantARN: true},
		{name: "secret scheduled for deletion", scheduled: true, wantFailure: []string{"UnableToAccessSecretException", "InvalidRequestException"}, wantARN: true},
		{name: "access denied", deny: "AccessDeniedException", wantFailure: []string{"UnableToAccessSecretException"}},
		{name: "customer key", deny: "DecryptionFailure", wantFailure: []string{"UnableToDecryptSecretValueException", "aws/secretsmanager"}},
		{name: "binary secret", binary: []byte(token), wantFailure: []string{"InvalidSecretFormat", "SecretString"}},
		{name: "not JSON", value: aws.String("user:" + token), wantFailure: []string{"InvalidSecretFormat", "not a JSON object"}},
		{name: "JSON array", value: aws.String(`["octo","` + token + `"]`), wantFailure: []string{"not a JSON object"}},
		{name: "wrong key case", value: aws.String(`{"username":"octo","AccessToken":"` + token + `"}`), wantFailure: []string{`unexpected field(s) ["AccessToken"]`}},
		{name: "extra key", value: aws.String(`{"username":"octo","accessToken":"` + token + `","note":"x"}`), wantFailure: []string{`unexpected field(s) ["note"]`}},
		{name: "missing accessToken", value: aws.String(`{"username":"octo"}`), wantFailure: []string{`field "accessToken" is missing`}},
		{name: "token not a string", value: aws.String(`{"username":"octo","accessToken":12345}`), wantFailure: []string{`field "accessToken" is not a string`}},
		{name: "null username", value: aws.String(`{"username":null,"accessToken":"` + token + `"}`), wantFailure: []string{`field "username" is not a string`}},
		{name: "empty token", value: aws.String(`{"username":"octo","accessToken":"  "}`), wantFailure: []string{`field "accessToken" is empty`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sm := newSecrets(t)
			ver := &fakeVerify{}
			e, arn := newValidateEnv(t, sm, ver.Verify)
			switch {
			case tc.deleted, tc.scheduled:
				sm.remove(arn, tc.scheduled)
			case tc.deny != "":
				sm.deny(arn, tc.deny)
			case tc.binary != nil:
				sm.putBinary(arn, tc.binary)
			default:
				sm.put(arn, *tc.value)
			}
			if tc.wantARN {
				tc.wantFailure = append(tc.wantFailure, arn)
			}

			body, status := rawCall(t, e.hs.URL, OpValidate, `{"ecrRepositoryPrefix":"docker-hub"}`)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			var out struct {
				IsValid *bool   `json:"isValid"`
				Failure *string `json:"failure"`
			}
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			if out.IsValid == nil || *out.IsValid || out.Failure == nil {
				t.Fatalf("isValid=%v failure=%v, want false with a failure", out.IsValid, out.Failure)
			}
			for _, w := range tc.wantFailure {
				if !strings.Contains(*out.Failure, w) {
					t.Errorf("failure %q does not contain %q", *out.Failure, w)
				}
			}
			if strings.Contains(string(body), token) {
				t.Errorf("response echoes the secret value: %s", body)
			}
			if calls := ver.recorded(); len(calls) != 0 {
				t.Errorf("login check ran on an unusable secret: %v", calls)
			}
		})
	}
}

func TestValidateEdges(t *testing.T) {
	t.Run("no SecretsManager", func(t *testing.T) {
		e := start(t, Options{SkipSecretCheckOnWrite: true})
		if _, err := e.ecr.CreatePullThroughCacheRule(ctx(t), &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"), CredentialArn: aws.String(arnNoStore),
		}); err != nil {
			t.Fatal(err)
		}
		_, err := e.ecr.ValidatePullThroughCacheRule(ctx(t), &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub")})
		var se *types.ServerException
		if !errors.As(err, &se) {
			t.Errorf("validate without a SecretsManager: %v, want ServerException", err)
		}
	})
	t.Run("rule without credential checks the registry anonymously", func(t *testing.T) {
		ver := &fakeVerify{} // accepts the zero credential
		e := start(t, Options{Verify: ver.Verify})
		if _, err := e.ecr.CreatePullThroughCacheRule(ctx(t), &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("quay"), UpstreamRegistryUrl: aws.String("quay.io"),
		}); err != nil {
			t.Fatal(err)
		}
		out, err := e.ecr.ValidatePullThroughCacheRule(ctx(t), &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("quay")})
		if err != nil || !out.IsValid {
			t.Fatalf("validate: %+v, %v", out, err)
		}
		if calls := ver.recorded(); len(calls) != 1 || calls[0].Cred != (ptcsecret.Value{}) || calls[0].Registry != "quay" {
			t.Errorf("login checks = %v, want one anonymous check of quay", calls)
		}
	})
	t.Run("no Verify checks syntax only", func(t *testing.T) {
		e, _ := newValidateEnv(t, newSecrets(t), nil)
		out, err := e.ecr.ValidatePullThroughCacheRule(ctx(t), &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("docker-hub")})
		if err != nil || !out.IsValid {
			t.Fatalf("validate: %+v, %v", out, err)
		}
	})
	t.Run("panicking login check", func(t *testing.T) {
		e, _ := newValidateEnv(t, newSecrets(t), func(context.Context, string, string, ptcsecret.Value) error { panic("boom dckr_pat_GOOD") })
		body, status := rawCall(t, e.hs.URL, OpValidate, `{"ecrRepositoryPrefix":"docker-hub"}`)
		if status != http.StatusOK || !bytes.Contains(body, []byte(`"isValid":false`)) || bytes.Contains(body, []byte("dckr_pat_GOOD")) {
			t.Errorf("status %d body %s", status, body)
		}
	})
}

// A login check that puts the credential in its error (as a careless one might: in a URL, a
// Basic header, plain) must not get the token into the response.
func TestValidateDoesNotLeakToken(t *testing.T) {
	const user, token = "octo", "dckr_pat_LEAKCANARY_7f3a9c/+="
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + token))
	sm := newSecrets(t)
	ver := &fakeVerify{fail: func(c ptcsecret.Value) error {
		return fmt.Errorf("GET https://auth.example/token?password=%s: Authorization: Basic %s; raw %s; b64url %s; got 401",
			url.QueryEscape(c.AccessToken), base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.AccessToken)), c.AccessToken,
			base64.RawURLEncoding.EncodeToString([]byte(c.AccessToken)))
	}}
	e, arn := newValidateEnv(t, sm, ver.Verify)
	sm.put(arn, `{"username":"`+user+`","accessToken":"`+token+`"}`)

	body, status := rawCall(t, e.hs.URL, OpValidate, `{"ecrRepositoryPrefix":"docker-hub"}`)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	if calls := ver.recorded(); len(calls) != 1 || calls[0].Cred.AccessToken != token {
		t.Fatalf("the login check did not get the planted token: %v", calls)
	}
	for _, form := range []string{token, "LEAKCANARY", url.QueryEscape(token), basic, base64.RawURLEncoding.EncodeToString([]byte(token))} {
		if bytes.Contains(body, []byte(form)) {
			t.Errorf("response contains the token (form %q): %s", form, body)
		}
	}
	if !bytes.Contains(body, []byte(`"isValid":false`)) || !bytes.Contains(body, []byte("<redacted>")) || !bytes.Contains(body, []byte("got 401")) {
		t.Errorf("want an invalid verdict that keeps the useful part of the error: %s", body)
	}
}

// rawCall sends one awsJson1.1 request by hand, so tests see the exact bytes on the wire.
func rawCall(t *testing.T, endpoint, op, body string) ([]byte, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", TargetPrefix+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20250301/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, resp.StatusCode
}

// TestSecretLag: with SecretLagReads, a new secret is not found by ECR for its first reads —
// Create answers SecretNotFoundException and Validate isValid=false with it — and is the real
// one afterwards; a negative lag never lets it through.
func TestSecretLag(t *testing.T) {
	t.Run("create sees the secret after the lag", func(t *testing.T) {
		sm := newSecrets(t)
		arn := sm.put(nameDocker, goodSecret)
		e := start(t, Options{SecretsManager: sm, SecretLagReads: 2})
		in := &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
			UpstreamRegistry: types.UpstreamRegistryDockerHub, CredentialArn: aws.String(arn),
		}
		for i := 1; i <= 2; i++ {
			_, err := e.ecr.CreatePullThroughCacheRule(ctx(t), in)
			var nf *types.SecretNotFoundException
			if !errors.As(err, &nf) {
				t.Fatalf("create #%d: %v, want SecretNotFoundException", i, err)
			}
			if !strings.Contains(err.Error(), arn) {
				t.Errorf("create #%d: error %q does not name the secret", i, err)
			}
		}
		if len(e.srv.Rules()) != 0 {
			t.Fatal("a refused create stored a rule")
		}
		if _, err := e.ecr.CreatePullThroughCacheRule(ctx(t), in); err != nil {
			t.Fatalf("create after the lag: %v", err)
		}
		if len(sm.recorded()) != 1 {
			t.Errorf("Secrets Manager was read %d times, want only the read after the lag", len(sm.recorded()))
		}
		v, err := e.ecr.ValidatePullThroughCacheRule(ctx(t), &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("docker-hub")})
		if err != nil || !v.IsValid {
			t.Fatalf("validate after the lag: %v %v", err, v)
		}
	})
	t.Run("validate sees the secret after the lag", func(t *testing.T) {
		sm := newSecrets(t)
		arn := sm.put(nameDocker, goodSecret)
		e := start(t, Options{SecretsManager: sm, SecretLagReads: 1, SkipSecretCheckOnWrite: true})
		if _, err := e.ecr.CreatePullThroughCacheRule(ctx(t), &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
			UpstreamRegistry: types.UpstreamRegistryDockerHub, CredentialArn: aws.String(arn),
		}); err != nil {
			t.Fatal(err)
		}
		in := &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("docker-hub")}
		v, err := e.ecr.ValidatePullThroughCacheRule(ctx(t), in)
		if err != nil || v.IsValid || !strings.Contains(aws.ToString(v.Failure), "SecretNotFoundException") {
			t.Fatalf("first validate: %v isValid=%v failure=%q, want SecretNotFoundException", err, v.IsValid, aws.ToString(v.Failure))
		}
		if v, err = e.ecr.ValidatePullThroughCacheRule(ctx(t), in); err != nil || !v.IsValid {
			t.Fatalf("second validate: %v isValid=%v failure=%q", err, v.IsValid, aws.ToString(v.Failure))
		}
	})
	t.Run("never visible", func(t *testing.T) {
		sm := newSecrets(t)
		arn := sm.put(nameDocker, goodSecret)
		e := start(t, Options{SecretsManager: sm, SecretLagReads: -1})
		for range 5 {
			_, err := e.ecr.CreatePullThroughCacheRule(ctx(t), &ecr.CreatePullThroughCacheRuleInput{
				EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
				UpstreamRegistry: types.UpstreamRegistryDockerHub, CredentialArn: aws.String(arn),
			})
			var nf *types.SecretNotFoundException
			if !errors.As(err, &nf) {
				t.Fatalf("create: %v, want SecretNotFoundException", err)
			}
		}
		if len(sm.recorded()) != 0 {
			t.Errorf("Secrets Manager was read %d times while the secret was held back", len(sm.recorded()))
		}
	})
}
