package ecremu

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// Model constraints, copied from botocore's ECR service model (service-2.json), which the SDKs
// are generated from. The prefix pattern there is slightly wider than the one the API reference
// page prints (it also allows "__" and runs of "-", like repository names do); the model wins
// because it is what the service is built from.
var (
	prefixRE     = regexp.MustCompile(`^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$`)
	credARNRE    = regexp.MustCompile(`^arn:aws(-\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\-pullthroughcache\/[a-zA-Z0-9\/_+=.@-]+$`)
	registryIDRE = regexp.MustCompile(`[0-9]{12}`)
	roleARNRE    = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::([0-9]{12}):role/.+$`)
	ecrHostRE    = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)
)

const (
	prefixMin, prefixMax   = 2, 30
	credARNMin, credARNMax = 50, 612
	roleARNMax             = 2048
	maxResultsMin          = 1
	maxResultsMax          = 1000
	defaultPageSize        = 100
	prefixListMax          = 100
	rootPrefix             = "ROOT"
)

// upstreamRegistries is the UpstreamRegistry enum, in the model's order (the order the
// ValidationException message lists them in).
var upstreamRegistries = []string{"ecr", "ecr-public", "quay", "k8s", "docker-hub",
	"github-container-registry", "azure-container-registry", "gitlab-container-registry", "chainguard"}

// needsCredential: registries ECR logs in to with a Secrets Manager secret.
var needsCredential = map[string]bool{
	"docker-hub": true, "github-container-registry": true, "azure-container-registry": true,
	"gitlab-container-registry": true, "chainguard": true,
}

// knownHosts maps the documented upstream URLs to their registry, for requests that omit
// upstreamRegistry (the API's original shape, which had only the URL).
var knownHosts = map[string]string{
	"public.ecr.aws":       "ecr-public",
	"quay.io":              "quay",
	"registry.k8s.io":      "k8s",
	"registry-1.docker.io": "docker-hub",
	"ghcr.io":              "github-container-registry",
	"registry.gitlab.com":  "gitlab-container-registry",
	"cgr.dev":              "chainguard",
}

// epoch renders a timestamp the way awsJson does: seconds since the epoch as a JSON number.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', -1, 64)), nil
}

func ts(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

// ruleJSON is the PullThroughCacheRule shape; each operation's output is a subset of it.
type ruleJSON struct {
	EcrRepositoryPrefix      string `json:"ecrRepositoryPrefix,omitempty"`
	UpstreamRegistryURL      string `json:"upstreamRegistryUrl,omitempty"`
	CreatedAt                *epoch `json:"createdAt,omitempty"`
	RegistryID               string `json:"registryId,omitempty"`
	CredentialARN            string `json:"credentialArn,omitempty"`
	CustomRoleARN            string `json:"customRoleArn,omitempty"`
	UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix,omitempty"`
	UpstreamRegistry         string `json:"upstreamRegistry,omitempty"`
	UpdatedAt                *epoch `json:"updatedAt,omitempty"`
}

func toJSON(r *Rule) ruleJSON {
	return ruleJSON{
		EcrRepositoryPrefix: r.EcrRepositoryPrefix, UpstreamRegistryURL: r.UpstreamRegistryURL,
		CreatedAt: ts(r.CreatedAt), RegistryID: r.RegistryID, CredentialARN: r.CredentialARN,
		CustomRoleARN: r.CustomRoleARN, UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix,
		UpstreamRegistry: r.UpstreamRegistry, UpdatedAt: ts(r.UpdatedAt),
	}
}

// --- input checking -------------------------------------------------------------------------

// violations collects model-constraint failures in AWS request-validation wording.
type violations []string

func (v *violations) add(value *string, field, constraint string) {
	shown := "null"
	if value != nil {
		shown = "'" + *value + "'"
	}
	*v = append(*v, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: Member must %s", shown, field, constraint))
}

// str checks one string member against required/length/pattern constraints (max 0: none).
func (v *violations) str(field string, val *string, required bool, minLen, maxLen int, re *regexp.Regexp) {
	if val == nil {
		if required {
			v.add(nil, field, "not be null")
		}
		return
	}
	n := utf8.RuneCountInString(*val)
	if n < minLen {
		v.add(val, field, fmt.Sprintf("have length greater than or equal to %d", minLen))
	}
	if maxLen > 0 && n > maxLen {
		v.add(val, field, fmt.Sprintf("have length less than or equal to %d", maxLen))
	}
	if re != nil && !re.MatchString(*val) {
		v.add(val, field, "satisfy regular expression pattern: "+re.String())
	}
}

func (v violations) err() *Error {
	switch len(v) {
	case 0:
		return nil
	case 1:
		return errf("ValidationException", http.StatusBadRequest, "1 validation error detected: %s", v[0])
	}
	return errf("ValidationException", http.StatusBadRequest, "%d validation errors detected: %s", len(v), strings.Join(v, "; "))
}

// decode reads a JSON request body; an empty body is an empty structure. Unknown members are
// ignored, as AWS does, so a newer SDK's extra fields do not break the emulator.
func decode(body []byte, dst any) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errf(coralNS+"SerializationException", http.StatusBadRequest,
				"member %q: expected %s, got a JSON %s", te.Field, te.Type, te.Value)
		}
		return errf(coralNS+"SerializationException", http.StatusBadRequest, "request body is not a JSON object: %v", err)
	}
	return nil
}

// checkRegistryID answers for a registryId of another account: the emulator is one registry.
func (s *Server) checkRegistryID(id *string) *Error {
	if id != nil && *id != s.opts.AccountID {
		return errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter at 'registryId': registry %s is not this registry (%s)", *id, s.opts.AccountID)
	}
	return nil
}

// checkCredentialARN applies ECR's semantic rules to a pattern-valid credentialArn: the secret
// must be in the registry's own account and Region.
func (s *Server) checkCredentialARN(arn string) *Error {
	parts := strings.SplitN(arn, ":", 7) // arn:partition:secretsmanager:region:account:secret:name
	if len(parts) != 7 || parts[5] != "secret" {
		return errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter at 'credentialArn': %s is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)", arn)
	}
	if parts[3] != s.opts.Region || parts[4] != s.opts.AccountID {
		return errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter at 'credentialArn': the secret must be in the registry's account %s and Region %s, got account %s Region %s",
			s.opts.AccountID, s.opts.Region, parts[4], parts[3])
	}
	return nil
}

// checkRoleARN: ECR assumes the role, which must be an IAM role of the registry's account.
func (s *Server) checkRoleARN(arn string) *Error {
	m := roleARNRE.FindStringSubmatch(arn)
	if m == nil {
		return errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter at 'customRoleArn': %s is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", arn)
	}
	if m[2] != s.opts.AccountID {
		return errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter at 'customRoleArn': the role must be in the registry's account %s, got %s", s.opts.AccountID, m[2])
	}
	return nil
}

// checkSecret reads the secret the way ECR's service-linked role does, to answer
// SecretNotFound/UnableToAccess/UnableToDecrypt on Create and Update. It never looks at the value.
func (s *Server) checkSecret(ctx context.Context, arn string) *Error {
	if s.opts.SecretsManager == nil || s.opts.SkipSecretCheckOnWrite {
		return nil
	}
	_, err := s.readSecret(ctx, arn)
	if err == nil {
		return nil
	}
	typ, msg := classifySecretError(arn, err)
	if typ == "" {
		return errf("ServerException", http.StatusInternalServerError, "%s", msg)
	}
	return errf(typ, http.StatusBadRequest, "%s", msg)
}

func (s *Server) readSecret(ctx context.Context, arn string) (*secretsmanager.GetSecretValueOutput, error) {
	if lag := s.opts.SecretLagReads; lag != 0 {
		s.mu.Lock()
		s.reads[arn]++
		n := s.reads[arn]
		s.mu.Unlock()
		if lag < 0 || n <= lag {
			return nil, notVisibleYet{}
		}
	}
	return s.opts.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(arn),
		VersionStage: aws.String(ptcsecret.StageCurrent),
	})
}

// notVisibleYet is the answer of a read SecretLagReads holds back: Secrets Manager's error code
// for a secret it does not know.
type notVisibleYet struct{}

func (notVisibleYet) Error() string {
	return "ResourceNotFoundException: Secrets Manager can't find the specified secret."
}
func (notVisibleYet) ErrorCode() string { return "ResourceNotFoundException" }

// apiError is the part of smithy.APIError used here: every aws-sdk-go-v2 service error has it.
type apiError interface{ ErrorCode() string }

// classifySecretError maps a Secrets Manager error to the ECR exception it becomes ("" when it
// is not the caller's fault) and a message. Only the error code is used, never the SDK's text.
func classifySecretError(arn string, err error) (string, string) {
	code := "unknown"
	var ae apiError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch code {
	case "ResourceNotFoundException":
		return "SecretNotFoundException", fmt.Sprintf("The ARN of the secret specified in the pull through cache rule was not found: %s (Secrets Manager: %s)", arn, code)
	case "AccessDeniedException", "InvalidRequestException":
		// InvalidRequestException: e.g. the secret is scheduled for deletion.
		return "UnableToAccessSecretException", fmt.Sprintf("ECR is unable to access the secret %s (Secrets Manager: %s)", arn, code)
	case "DecryptionFailure":
		return "UnableToDecryptSecretValueException", fmt.Sprintf("ECR is unable to decrypt the secret %s; use the aws/secretsmanager key (Secrets Manager: %s)", arn, code)
	}
	return "", fmt.Sprintf("reading the secret %s failed (Secrets Manager: %s)", arn, code)
}

// normPrefix is a rule's identity: ECR always applies a trailing "/", so "a" and "a/" are one rule.
func normPrefix(p string) string {
	if p == rootPrefix {
		return p
	}
	return strings.TrimSuffix(p, "/")
}

// inferRegistry maps an upstream URL to its registry when the request names none.
func inferRegistry(url string) (string, bool) {
	host := strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(url), "https://"), "/")
	if r, ok := knownHosts[host]; ok {
		return r, true
	}
	switch {
	case strings.HasSuffix(host, ".azurecr.io") && len(host) > len(".azurecr.io"):
		return "azure-container-registry", true
	case ecrHostRE.MatchString(host):
		return "ecr", true
	}
	return "", false
}

// --- CreatePullThroughCacheRule -------------------------------------------------------------

type createInput struct {
	EcrRepositoryPrefix      *string `json:"ecrRepositoryPrefix"`
	UpstreamRegistryURL      *string `json:"upstreamRegistryUrl"`
	RegistryID               *string `json:"registryId"`
	UpstreamRegistry         *string `json:"upstreamRegistry"`
	CredentialARN            *string `json:"credentialArn"`
	CustomRoleARN            *string `json:"customRoleArn"`
	UpstreamRepositoryPrefix *string `json:"upstreamRepositoryPrefix"`
}

func (s *Server) create(ctx context.Context, body []byte) (any, *Error) {
	var in createInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	var v violations
	v.str("ecrRepositoryPrefix", in.EcrRepositoryPrefix, true, prefixMin, prefixMax, prefixRE)
	v.str("upstreamRegistryUrl", in.UpstreamRegistryURL, true, 0, 0, nil)
	v.str("registryId", in.RegistryID, false, 0, 0, registryIDRE)
	if in.UpstreamRegistry != nil && !contains(upstreamRegistries, *in.UpstreamRegistry) {
		v.add(in.UpstreamRegistry, "upstreamRegistry", "satisfy enum value set: ["+strings.Join(upstreamRegistries, ", ")+"]")
	}
	v.str("credentialArn", in.CredentialARN, false, credARNMin, credARNMax, credARNRE)
	v.str("customRoleArn", in.CustomRoleARN, false, 0, roleARNMax, nil)
	v.str("upstreamRepositoryPrefix", in.UpstreamRepositoryPrefix, false, prefixMin, prefixMax, prefixRE)
	if e := v.err(); e != nil {
		return nil, e
	}
	if e := s.checkRegistryID(in.RegistryID); e != nil {
		return nil, e
	}

	prefix, url := *in.EcrRepositoryPrefix, strings.TrimSpace(*in.UpstreamRegistryURL)
	if url == "" {
		return nil, errf("InvalidParameterException", http.StatusBadRequest, "Invalid parameter at 'upstreamRegistryUrl': must not be empty")
	}
	// With upstreamRegistry named, any URL is accepted: that is how tests and the demo point a
	// rule at a local registry emulator. Without it, ECR must recognise the URL.
	registry := ""
	if in.UpstreamRegistry != nil {
		registry = *in.UpstreamRegistry
	} else if r, ok := inferRegistry(url); ok {
		registry = r
	} else {
		return nil, errf("UnsupportedUpstreamRegistryException", http.StatusBadRequest,
			"The specified upstream registry %s isn't supported; name its upstreamRegistry", url)
	}
	cred, role, upPrefix := deref(in.CredentialARN), deref(in.CustomRoleARN), deref(in.UpstreamRepositoryPrefix)
	switch {
	case needsCredential[registry] && cred == "":
		return nil, errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter at 'credentialArn': upstream registry %s requires a credentialArn (a secret named ecr-pullthroughcache/...)", registry)
	case !needsCredential[registry] && cred != "":
		return nil, errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter at 'credentialArn': upstream registry %s does not use a credentialArn", registry)
	case registry == "ecr" && role == "":
		return nil, errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter at 'customRoleArn': upstream registry ecr requires a customRoleArn")
	case registry != "ecr" && role != "":
		return nil, errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter at 'customRoleArn': only upstream registry ecr uses a customRoleArn, not %s", registry)
	case prefix == rootPrefix && upPrefix != "" && upPrefix != rootPrefix:
		return nil, errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter at 'upstreamRepositoryPrefix': with ecrRepositoryPrefix ROOT the upstream repository prefix must be ROOT or omitted, got %s", upPrefix)
	}
	if cred != "" {
		if e := s.checkCredentialARN(cred); e != nil {
			return nil, e
		}
	}
	if role != "" {
		if e := s.checkRoleARN(role); e != nil {
			return nil, e
		}
	}
	// Reject a duplicate before reading the secret (cheap, and what a caller retrying expects),
	// then again under the lock after it, since the read happens unlocked.
	if e := s.checkFree(prefix); e != nil {
		return nil, e
	}
	if cred != "" {
		if e := s.checkSecret(ctx, cred); e != nil {
			return nil, e
		}
	}

	now := s.opts.Now()
	rule := &Rule{
		EcrRepositoryPrefix: prefix, RegistryID: s.opts.AccountID, UpstreamRegistry: registry,
		UpstreamRegistryURL: url, CredentialARN: cred, CustomRoleARN: role,
		UpstreamRepositoryPrefix: upPrefix, CreatedAt: now, UpdatedAt: now,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.rules[normPrefix(prefix)]; dup {
		return nil, alreadyExists(prefix, s.opts.AccountID)
	}
	if len(s.rules) >= s.opts.MaxRules {
		return nil, errf("LimitExceededException", http.StatusBadRequest,
			"The operation did not succeed because it would have exceeded the limit of %d pull through cache rules for registry %s", s.opts.MaxRules, s.opts.AccountID)
	}
	s.rules[normPrefix(prefix)] = rule
	out := toJSON(rule)
	out.UpdatedAt = nil // not a member of CreatePullThroughCacheRuleResponse
	return out, nil
}

func (s *Server) checkFree(prefix string) *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.rules[normPrefix(prefix)]; dup {
		return alreadyExists(prefix, s.opts.AccountID)
	}
	return nil
}

func alreadyExists(prefix, account string) *Error {
	return errf("PullThroughCacheRuleAlreadyExistsException", http.StatusBadRequest,
		"A pull through cache rule with the ECR repository prefix '%s' already exists in registry %s", prefix, account)
}

func notFound(prefix, account string) *Error {
	return errf("PullThroughCacheRuleNotFoundException", http.StatusBadRequest,
		"The pull through cache rule with the ECR repository prefix '%s' does not exist in registry %s", prefix, account)
}

// --- DescribePullThroughCacheRules ----------------------------------------------------------

type describeInput struct {
	RegistryID            *string   `json:"registryId"`
	EcrRepositoryPrefixes *[]string `json:"ecrRepositoryPrefixes"`
	NextToken             *string   `json:"nextToken"`
	MaxResults            *int      `json:"maxResults"`
}

type describeOutput struct {
	PullThroughCacheRules []ruleJSON `json:"pullThroughCacheRules"`
	NextToken             string     `json:"nextToken,omitempty"`
}

func (s *Server) describe(_ context.Context, body []byte) (any, *Error) {
	var in describeInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	var v violations
	v.str("registryId", in.RegistryID, false, 0, 0, registryIDRE)
	if in.EcrRepositoryPrefixes != nil {
		ps := *in.EcrRepositoryPrefixes
		if len(ps) < 1 || len(ps) > prefixListMax {
			shown := fmt.Sprintf("%v", ps)
			v.add(&shown, "ecrRepositoryPrefixes", fmt.Sprintf("have length between 1 and %d", prefixListMax))
		}
		for i := range ps {
			v.str(fmt.Sprintf("ecrRepositoryPrefixes.%d.member", i+1), &ps[i], true, prefixMin, prefixMax, prefixRE)
		}
	}
	if in.MaxResults != nil && (*in.MaxResults < maxResultsMin || *in.MaxResults > maxResultsMax) {
		shown := strconv.Itoa(*in.MaxResults)
		v.add(&shown, "maxResults", fmt.Sprintf("have value between %d and %d", maxResultsMin, maxResultsMax))
	}
	if e := v.err(); e != nil {
		return nil, e
	}
	if e := s.checkRegistryID(in.RegistryID); e != nil {
		return nil, e
	}

	s.mu.Lock()
	var keys []string
	if in.EcrRepositoryPrefixes != nil {
		seen := map[string]bool{}
		for _, p := range *in.EcrRepositoryPrefixes {
			k := normPrefix(p)
			if _, ok := s.rules[k]; !ok {
				s.mu.Unlock()
				return nil, notFound(p, s.opts.AccountID)
			}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	} else {
		for k := range s.rules {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	rules := make([]ruleJSON, 0, len(keys))
	for _, k := range keys {
		rules = append(rules, toJSON(s.rules[k]))
	}
	s.mu.Unlock()

	// nextToken is the (opaque) prefix of the last rule returned; the next page starts after it.
	start := 0
	if in.NextToken != nil && *in.NextToken != "" {
		after, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		if err != nil {
			return nil, errf("InvalidParameterException", http.StatusBadRequest, "Invalid parameter at 'nextToken': not a token this API returned")
		}
		start = sort.SearchStrings(keys, string(after))
		if start < len(keys) && keys[start] == string(after) {
			start++
		}
	}
	size := defaultPageSize
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	end := min(start+size, len(rules))
	out := describeOutput{PullThroughCacheRules: rules[start:end]}
	if end < len(rules) {
		out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(keys[end-1]))
	}
	return out, nil
}

// --- UpdatePullThroughCacheRule -------------------------------------------------------------

type updateInput struct {
	RegistryID          *string `json:"registryId"`
	EcrRepositoryPrefix *string `json:"ecrRepositoryPrefix"`
	CredentialARN       *string `json:"credentialArn"`
	CustomRoleARN       *string `json:"customRoleArn"`
}

func (s *Server) update(ctx context.Context, body []byte) (any, *Error) {
	var in updateInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	var v violations
	v.str("registryId", in.RegistryID, false, 0, 0, registryIDRE)
	v.str("ecrRepositoryPrefix", in.EcrRepositoryPrefix, true, prefixMin, prefixMax, prefixRE)
	v.str("credentialArn", in.CredentialARN, false, credARNMin, credARNMax, credARNRE)
	v.str("customRoleArn", in.CustomRoleARN, false, 0, roleARNMax, nil)
	if e := v.err(); e != nil {
		return nil, e
	}
	if e := s.checkRegistryID(in.RegistryID); e != nil {
		return nil, e
	}
	prefix, cred, role := *in.EcrRepositoryPrefix, deref(in.CredentialARN), deref(in.CustomRoleARN)
	if cred == "" && role == "" {
		return nil, errf("InvalidParameterException", http.StatusBadRequest,
			"Invalid parameter: an update needs a credentialArn or a customRoleArn")
	}
	current, ok := s.lookup(prefix)
	if !ok {
		return nil, notFound(prefix, s.opts.AccountID)
	}
	if cred != "" {
		if !needsCredential[current.UpstreamRegistry] {
			return nil, errf("InvalidParameterException", http.StatusBadRequest,
				"Invalid parameter at 'credentialArn': upstream registry %s does not use a credentialArn", current.UpstreamRegistry)
		}
		if e := s.checkCredentialARN(cred); e != nil {
			return nil, e
		}
	}
	if role != "" {
		if current.UpstreamRegistry != "ecr" {
			return nil, errf("InvalidParameterException", http.StatusBadRequest,
				"Invalid parameter at 'customRoleArn': only upstream registry ecr uses a customRoleArn, not %s", current.UpstreamRegistry)
		}
		if e := s.checkRoleARN(role); e != nil {
			return nil, e
		}
	}
	if cred != "" {
		if e := s.checkSecret(ctx, cred); e != nil {
			return nil, e
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	rule, ok := s.rules[normPrefix(prefix)]
	if !ok { // deleted while the secret was being read
		return nil, notFound(prefix, s.opts.AccountID)
	}
	if cred != "" {
		rule.CredentialARN = cred
	}
	if role != "" {
		rule.CustomRoleARN = role
	}
	rule.UpdatedAt = s.opts.Now()
	out := toJSON(rule)
	// UpdatePullThroughCacheRuleResponse has no URL, registry or createdAt.
	out.UpstreamRegistryURL, out.UpstreamRegistry, out.CreatedAt = "", "", nil
	return out, nil
}

// lookup returns a copy of the rule for prefix.
func (s *Server) lookup(prefix string) (Rule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rules[normPrefix(prefix)]
	if !ok {
		return Rule{}, false
	}
	return *r, true
}

// --- DeletePullThroughCacheRule -------------------------------------------------------------

type prefixInput struct {
	EcrRepositoryPrefix *string `json:"ecrRepositoryPrefix"`
	RegistryID          *string `json:"registryId"`
}

func (s *Server) decodePrefix(body []byte) (string, *Error) {
	var in prefixInput
	if e := decode(body, &in); e != nil {
		return "", e
	}
	var v violations
	v.str("ecrRepositoryPrefix", in.EcrRepositoryPrefix, true, prefixMin, prefixMax, prefixRE)
	v.str("registryId", in.RegistryID, false, 0, 0, registryIDRE)
	if e := v.err(); e != nil {
		return "", e
	}
	if e := s.checkRegistryID(in.RegistryID); e != nil {
		return "", e
	}
	return *in.EcrRepositoryPrefix, nil
}

func (s *Server) delete(_ context.Context, body []byte) (any, *Error) {
	prefix, e := s.decodePrefix(body)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rule, ok := s.rules[normPrefix(prefix)]
	if !ok {
		return nil, notFound(prefix, s.opts.AccountID)
	}
	delete(s.rules, normPrefix(prefix))
	out := toJSON(rule)
	// DeletePullThroughCacheRuleResponse has no upstreamRegistry or updatedAt.
	out.UpstreamRegistry, out.UpdatedAt = "", nil
	return out, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
