package ecremu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// maxFailureBytes caps the failure text, which may carry an upstream's error message. ECR's API
// model gives failure (PTCValidateFailure) no length constraint, so there is no limit in
// characters to reproduce: the cap is the emulator's own, and like every other cut in this
// project it counts bytes and never splits a character (kit.Truncate).
const maxFailureBytes = 1024

type validateOutput struct {
	EcrRepositoryPrefix      string `json:"ecrRepositoryPrefix,omitempty"`
	RegistryID               string `json:"registryId,omitempty"`
	UpstreamRegistryURL      string `json:"upstreamRegistryUrl,omitempty"`
	CredentialARN            string `json:"credentialArn,omitempty"`
	CustomRoleARN            string `json:"customRoleArn,omitempty"`
	UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix,omitempty"`
	IsValid                  bool   `json:"isValid"`
	Failure                  string `json:"failure,omitempty"`
}

// validate implements ValidatePullThroughCacheRule: read the rule's secret as ECR's service role
// does (by credentialArn, AWSCURRENT), check its syntax, then log in upstream. Problems with the
// secret or the login are not errors of the call — the API answers them as isValid=false with a
// failure reason (its error list has no secret exceptions); only a bad request, a missing rule
// or a broken emulator setup are errors.
func (s *Server) validate(ctx context.Context, body []byte) (any, *Error) {
	prefix, e := s.decodePrefix(body)
	if e != nil {
		return nil, e
	}
	rule, ok := s.lookup(prefix)
	if !ok {
		return nil, notFound(prefix, s.opts.AccountID)
	}
	out := validateOutput{
		EcrRepositoryPrefix: rule.EcrRepositoryPrefix, RegistryID: rule.RegistryID,
		UpstreamRegistryURL: rule.UpstreamRegistryURL, CredentialARN: rule.CredentialARN,
		CustomRoleARN: rule.CustomRoleARN, UpstreamRepositoryPrefix: rule.UpstreamRepositoryPrefix,
	}

	var cred ptcsecret.Value
	if rule.CredentialARN != "" {
		if s.opts.SecretsManager == nil {
			return nil, errf("ServerException", http.StatusInternalServerError,
				"the emulator has no SecretsManager configured, so it cannot read %s", rule.CredentialARN)
		}
		got, err := s.readSecret(ctx, rule.CredentialARN)
		if err != nil {
			typ, msg := classifySecretError(rule.CredentialARN, err)
			if typ == "" {
				typ = "SecretReadFailed"
			}
			out.Failure = typ + ": " + msg
			return out, nil
		}
		if got.SecretString == nil {
			out.Failure = fmt.Sprintf("InvalidSecretFormat: the secret %s has no SecretString; ECR reads a JSON string, not SecretBinary", rule.CredentialARN)
			return out, nil
		}
		v, problem := parseStrict(*got.SecretString)
		if problem != "" {
			out.Failure = fmt.Sprintf("InvalidSecretFormat: the secret %s must be a JSON object with exactly the string fields \"username\" and \"accessToken\": %s",
				rule.CredentialARN, problem)
			return out, nil
		}
		cred = v
	}
	if s.opts.Verify != nil {
		if err := s.verify(ctx, rule, cred); err != "" {
			out.Failure = kit.Truncate(fmt.Sprintf("UpstreamAuthenticationFailed: authentication to the upstream registry %s failed: %s",
				rule.UpstreamRegistryURL, scrub(err, cred)), maxFailureBytes)
			return out, nil
		}
	}
	out.IsValid = true
	return out, nil
}

// verify runs the login check and turns a panic into a failure, so a broken check cannot take
// the connection (and whatever net/http would log about it) down.
func (s *Server) verify(ctx context.Context, rule Rule, cred ptcsecret.Value) (failure string) {
	defer func() {
		if recover() != nil {
			failure = "the login check panicked"
		}
	}()
	if err := s.opts.Verify(ctx, rule.UpstreamRegistry, rule.UpstreamRegistryURL, cred); err != nil {
		return err.Error()
	}
	return ""
}

// parseStrict checks the document ECR reads: a JSON object whose only members are the strings
// "username" and "accessToken", both non-empty. The returned problem names fields, never values.
func parseStrict(doc string) (ptcsecret.Value, string) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &raw); err != nil || raw == nil {
		return ptcsecret.Value{}, "the value is not a JSON object"
	}
	var extra []string
	for k := range raw {
		if k != "username" && k != "accessToken" {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return ptcsecret.Value{}, fmt.Sprintf("unexpected field(s) %q", extra)
	}
	var v ptcsecret.Value
	for _, f := range []struct {
		name string
		dst  *string
	}{{"username", &v.Username}, {"accessToken", &v.AccessToken}} {
		r, ok := raw[f.name]
		if !ok {
			return ptcsecret.Value{}, fmt.Sprintf("field %q is missing", f.name)
		}
		if err := json.Unmarshal(r, f.dst); err != nil || string(r) == "null" {
			return ptcsecret.Value{}, fmt.Sprintf("field %q is not a string", f.name)
		}
		if strings.TrimSpace(*f.dst) == "" {
			return ptcsecret.Value{}, fmt.Sprintf("field %q is empty", f.name)
		}
	}
	return v, ""
}

// scrub removes the token from text in every form a login check might have echoed it: raw,
// URL-escaped, and inside a base64 Basic credential.
func scrub(text string, cred ptcsecret.Value) string {
	if cred.AccessToken == "" {
		return text
	}
	basic := cred.Username + ":" + cred.AccessToken
	forms := []string{cred.AccessToken, url.QueryEscape(cred.AccessToken), url.PathEscape(cred.AccessToken)}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		forms = append(forms, enc.EncodeToString([]byte(basic)), enc.EncodeToString([]byte(cred.AccessToken)))
	}
	sort.Slice(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	for _, f := range forms {
		if f != "" {
			text = strings.ReplaceAll(text, f, "<redacted>")
		}
	}
	return text
}
