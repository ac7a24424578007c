package ecremu

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

const goodSecret = `{"username":"octo","accessToken":"dckr_pat_GOOD"}`

func TestLifecycleWithSDK(t *testing.T) {
	sm := newSecrets(t)
	arnDocker := sm.put(nameDocker, goodSecret)
	arnDocker2 := sm.put(nameDocker2, `{"username":"octo","accessToken":"dckr_pat_NEXT"}`)
	ver := &fakeVerify{accept: ptcsecret.Value{Username: "octo", AccessToken: "dckr_pat_GOOD"}}
	clock := &stepClock{t: t0}
	e := start(t, Options{SecretsManager: sm, Verify: ver.Verify, Now: clock.Now})
	c := ctx(t)

	// Create.
	created, err := e.ecr.CreatePullThroughCacheRule(c, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("docker-hub"),
		UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
		UpstreamRegistry:    types.UpstreamRegistryDockerHub,
		CredentialArn:       aws.String(arnDocker),
	})
	if err != nil {
		t.Fatalf("CreatePullThroughCacheRule: %v", err)
	}
	if got := aws.ToString(created.EcrRepositoryPrefix); got != "docker-hub" {
		t.Errorf("create: ecrRepositoryPrefix = %q", got)
	}
	if got := aws.ToString(created.RegistryId); got != DefaultAccountID {
		t.Errorf("create: registryId = %q, want %q", got, DefaultAccountID)
	}
	if created.UpstreamRegistry != types.UpstreamRegistryDockerHub || aws.ToString(created.UpstreamRegistryUrl) != "registry-1.docker.io" ||
		aws.ToString(created.CredentialArn) != arnDocker {
		t.Errorf("create: echoed %+v", created)
	}
	if created.CreatedAt == nil || !created.CreatedAt.Equal(t0) {
		t.Errorf("create: createdAt = %v, want %v", created.CreatedAt, t0)
	}
	// Create checked the secret exists the way ECR's role reads it.
	if calls := sm.recorded(); len(calls) != 1 || aws.ToString(calls[0].SecretId) != arnDocker || aws.ToString(calls[0].VersionStage) != "AWSCURRENT" {
		t.Errorf("create: secret reads = %+v, want one read of %s at AWSCURRENT", calls, arnDocker)
	}

	// Describe: all, and by prefix (with and without the implied trailing slash).
	for _, in := range []*ecr.DescribePullThroughCacheRulesInput{
		{},
		{EcrRepositoryPrefixes: []string{"docker-hub"}},
		{EcrRepositoryPrefixes: []string{"docker-hub/"}},
	} {
		out, err := e.ecr.DescribePullThroughCacheRules(c, in)
		if err != nil {
			t.Fatalf("DescribePullThroughCacheRules(%v): %v", in.EcrRepositoryPrefixes, err)
		}
		if len(out.PullThroughCacheRules) != 1 || out.NextToken != nil {
			t.Fatalf("describe(%v): %d rules, nextToken %v; want 1, nil", in.EcrRepositoryPrefixes, len(out.PullThroughCacheRules), out.NextToken)
		}
		r := out.PullThroughCacheRules[0]
		if aws.ToString(r.EcrRepositoryPrefix) != "docker-hub" || r.UpstreamRegistry != types.UpstreamRegistryDockerHub ||
			aws.ToString(r.UpstreamRegistryUrl) != "registry-1.docker.io" || aws.ToString(r.CredentialArn) != arnDocker ||
			aws.ToString(r.RegistryId) != DefaultAccountID || !aws.ToTime(r.CreatedAt).Equal(t0) || !aws.ToTime(r.UpdatedAt).Equal(t0) {
			t.Errorf("describe: rule = %+v", r)
		}
	}

	// Validate: valid with the current secret.
	val, err := e.ecr.ValidatePullThroughCacheRule(c, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("docker-hub")})
	if err != nil {
		t.Fatalf("ValidatePullThroughCacheRule: %v", err)
	}
	if !val.IsValid || val.Failure != nil {
		t.Errorf("validate: isValid=%v failure=%q, want valid", val.IsValid, aws.ToString(val.Failure))
	}
	if aws.ToString(val.CredentialArn) != arnDocker || aws.ToString(val.UpstreamRegistryUrl) != "registry-1.docker.io" || aws.ToString(val.RegistryId) != DefaultAccountID {
		t.Errorf("validate: echoed %+v", val)
	}
	if calls := ver.recorded(); len(calls) != 1 || calls[0].Registry != "docker-hub" || calls[0].URL != "registry-1.docker.io" || calls[0].Cred != ver.accept {
		t.Errorf("validate: login checks = %v", calls)
	}

	// Update the credential in place, then validate: the login check now refuses it.
	upd, err := e.ecr.UpdatePullThroughCacheRule(c, &ecr.UpdatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("docker-hub"), CredentialArn: aws.String(arnDocker2),
	})
	if err != nil {
		t.Fatalf("UpdatePullThroughCacheRule: %v", err)
	}
	if aws.ToString(upd.CredentialArn) != arnDocker2 || aws.ToString(upd.EcrRepositoryPrefix) != "docker-hub" || !aws.ToTime(upd.UpdatedAt).After(t0) {
		t.Errorf("update: %+v", upd)
	}
	if r := e.srv.Rules(); len(r) != 1 || r[0].CredentialARN != arnDocker2 || !r[0].CreatedAt.Equal(t0) || !r[0].UpdatedAt.Equal(aws.ToTime(upd.UpdatedAt)) {
		t.Errorf("after update: Rules() = %+v", r)
	}
	val, err = e.ecr.ValidatePullThroughCacheRule(c, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("docker-hub")})
	if err != nil {
		t.Fatalf("ValidatePullThroughCacheRule after update: %v", err)
	}
	if val.IsValid || !strings.Contains(aws.ToString(val.Failure), "UpstreamAuthenticationFailed") || !strings.Contains(aws.ToString(val.Failure), string(errBadLogin)) {
		t.Errorf("validate after update: isValid=%v failure=%q, want an upstream authentication failure", val.IsValid, aws.ToString(val.Failure))
	}
	if strings.Contains(aws.ToString(val.Failure), "dckr_pat_NEXT") {
		t.Errorf("validate failure leaks the token: %q", aws.ToString(val.Failure))
	}

	// Delete returns the deleted rule.
	del, err := e.ecr.DeletePullThroughCacheRule(c, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("docker-hub")})
	if err != nil {
		t.Fatalf("DeletePullThroughCacheRule: %v", err)
	}
	if aws.ToString(del.EcrRepositoryPrefix) != "docker-hub" || aws.ToString(del.CredentialArn) != arnDocker2 ||
		aws.ToString(del.UpstreamRegistryUrl) != "registry-1.docker.io" || !aws.ToTime(del.CreatedAt).Equal(t0) {
		t.Errorf("delete: %+v", del)
	}
	if r := e.srv.Rules(); len(r) != 0 {
		t.Errorf("after delete: Rules() = %+v", r)
	}

	wantCalls := []string{OpCreate, OpDescribe, OpDescribe, OpDescribe, OpValidate, OpUpdate, OpValidate, OpDelete}
	if got := e.srv.Calls(); !reflect.DeepEqual(got, wantCalls) {
		t.Errorf("Calls() = %v, want %v", got, wantCalls)
	}
	for _, r := range e.rec.all() {
		if r.Method != http.MethodPost || r.Path != "/" || r.ContentType != "application/x-amz-json-1.1" || !r.HasAuth ||
			!strings.HasPrefix(r.Target, TargetPrefix) {
			t.Errorf("SDK request not awsJson1.1 as expected: %+v", r)
		}
	}
}

func TestDuplicateCreate(t *testing.T) {
	e := start(t, Options{})
	c := ctx(t)
	create := func(prefix string) error {
		_, err := e.ecr.CreatePullThroughCacheRule(c, &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String(prefix), UpstreamRegistryUrl: aws.String("quay.io"),
		})
		return err
	}
	if err := create("quay"); err != nil {
		t.Fatalf("first create: %v", err)
	}
	for _, prefix := range []string{"quay", "quay/"} { // ECR appends "/" anyway: same rule
		var dup *types.PullThroughCacheRuleAlreadyExistsException
		if err := create(prefix); !errors.As(err, &dup) {
			t.Errorf("create %q again: err = %v, want PullThroughCacheRuleAlreadyExistsException", prefix, err)
		}
	}
	// The URL alone told the emulator the registry.
	if r := e.srv.Rules(); len(r) != 1 || r[0].UpstreamRegistry != "quay" {
		t.Errorf("Rules() = %+v, want one quay rule", r)
	}
}

func TestNotFound(t *testing.T) {
	sm := newSecrets(t)
	arnDocker := sm.put(nameDocker, goodSecret)
	e := start(t, Options{SecretsManager: sm})
	c := ctx(t)
	calls := map[string]func() error{
		"describe": func() error {
			_, err := e.ecr.DescribePullThroughCacheRules(c, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{"nope"}})
			return err
		},
		"update": func() error {
			_, err := e.ecr.UpdatePullThroughCacheRule(c, &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("nope"), CredentialArn: aws.String(arnDocker)})
			return err
		},
		"delete": func() error {
			_, err := e.ecr.DeletePullThroughCacheRule(c, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("nope")})
			return err
		},
		"validate": func() error {
			_, err := e.ecr.ValidatePullThroughCacheRule(c, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("nope")})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			var nf *types.PullThroughCacheRuleNotFoundException
			err := call()
			if !errors.As(err, &nf) {
				t.Fatalf("err = %v, want PullThroughCacheRuleNotFoundException", err)
			}
			if !strings.Contains(nf.ErrorMessage(), "'nope'") {
				t.Errorf("message %q does not name the prefix", nf.ErrorMessage())
			}
		})
	}
	// An empty registry describes as an empty list, not an error.
	out, err := e.ecr.DescribePullThroughCacheRules(c, &ecr.DescribePullThroughCacheRulesInput{})
	if err != nil || len(out.PullThroughCacheRules) != 0 {
		t.Errorf("describe all on empty registry: %v, %v", out, err)
	}
}

// errCode returns the typed error's code, checking the SDK produced the modeled type for it.
func errCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want an API error", err, err)
	}
	typed := map[string]any{
		"ValidationException":                        &types.ValidationException{},
		"InvalidParameterException":                  &types.InvalidParameterException{},
		"UnsupportedUpstreamRegistryException":       &types.UnsupportedUpstreamRegistryException{},
		"SecretNotFoundException":                    &types.SecretNotFoundException{},
		"UnableToAccessSecretException":              &types.UnableToAccessSecretException{},
		"UnableToDecryptSecretValueException":        &types.UnableToDecryptSecretValueException{},
		"LimitExceededException":                     &types.LimitExceededException{},
		"ServerException":                            &types.ServerException{},
		"PullThroughCacheRuleAlreadyExistsException": &types.PullThroughCacheRuleAlreadyExistsException{},
	}
	if want, ok := typed[ae.ErrorCode()]; ok && reflect.TypeOf(ae) != reflect.TypeOf(want) {
		t.Errorf("SDK surfaced %T for %s, want %T", ae, ae.ErrorCode(), want)
	}
	return ae.ErrorCode()
}

func TestCreateRejects(t *testing.T) {
	const (
		otherAccount = "arn:aws:secretsmanager:us-east-1:210987654321:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
		otherRegion  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
		wrongPrefix  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dockerhub/credentials-AbCdEf"
		roleARN      = "arn:aws:iam::123456789012:role/ecr-upstream"
	)
	sm := newSecrets(t)
	arnDocker := sm.put(nameDocker, goodSecret)
	sm.deny(deniedSecret, "AccessDeniedException")
	dockerHub := func(mod func(*ecr.CreatePullThroughCacheRuleInput)) *ecr.CreatePullThroughCacheRuleInput {
		in := &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
			UpstreamRegistry: types.UpstreamRegistryDockerHub, CredentialArn: aws.String(arnDocker),
		}
		mod(in)
		return in
	}
	tests := []struct {
		name     string
		in       *ecr.CreatePullThroughCacheRuleInput
		wantCode string
		wantMsg  string
	}{
		{"prefix too short", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.EcrRepositoryPrefix = aws.String("d") }),
			"ValidationException", "at 'ecrRepositoryPrefix' failed to satisfy constraint: Member must have length greater than or equal to 2"},
		{"prefix too long", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) {
			in.EcrRepositoryPrefix = aws.String(strings.Repeat("a", 31))
		}),
			"ValidationException", "Member must have length less than or equal to 30"},
		{"prefix uppercase", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.EcrRepositoryPrefix = aws.String("DockerHub") }),
			"ValidationException", "Member must satisfy regular expression pattern"},
		{"prefix with leading slash", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.EcrRepositoryPrefix = aws.String("/hub") }),
			"ValidationException", "regular expression pattern"},
		{"ROOT with upstream prefix", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) {
			in.EcrRepositoryPrefix, in.UpstreamRepositoryPrefix = aws.String("ROOT"), aws.String("library")
		}), "InvalidParameterException", "upstreamRepositoryPrefix"},
		{"credential ARN outside ecr-pullthroughcache/", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.CredentialArn = aws.String(wrongPrefix) }),
			"ValidationException", "at 'credentialArn' failed to satisfy constraint: Member must satisfy regular expression pattern"},
		{"credential ARN of another account", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.CredentialArn = aws.String(otherAccount) }),
			"InvalidParameterException", "account 210987654321"},
		{"credential ARN of another Region", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.CredentialArn = aws.String(otherRegion) }),
			"InvalidParameterException", "Region eu-west-1"},
		{"docker-hub without credential", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.CredentialArn = nil }),
			"InvalidParameterException", "requires a credentialArn"},
		{"unsupported upstreamRegistry value", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.UpstreamRegistry = "harbor" }),
			"ValidationException", "at 'upstreamRegistry' failed to satisfy constraint: Member must satisfy enum value set"},
		{"unknown URL and no registry", &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("harbor"), UpstreamRegistryUrl: aws.String("harbor.example.com")},
			"UnsupportedUpstreamRegistryException", "harbor.example.com"},
		{"credential for quay", &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("quay"), UpstreamRegistryUrl: aws.String("quay.io"), CredentialArn: aws.String(arnDocker)},
			"InvalidParameterException", "does not use a credentialArn"},
		{"custom role for docker-hub", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.CustomRoleArn = aws.String(roleARN) }),
			"InvalidParameterException", "customRoleArn"},
		{"ecr upstream without role", &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("prod"), UpstreamRegistryUrl: aws.String("210987654321.dkr.ecr.us-west-2.amazonaws.com")},
			"InvalidParameterException", "requires a customRoleArn"},
		{"two violations at once", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) {
			in.EcrRepositoryPrefix, in.CredentialArn = aws.String("X"), aws.String("arn:short")
		}), "ValidationException", "validation errors detected"},
		{"secret does not exist", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.CredentialArn = aws.String(arnMissing) }),
			"SecretNotFoundException", arnMissing},
		{"secret not readable", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) {
			in.CredentialArn = aws.String(deniedSecret)
		}), "UnableToAccessSecretException", "AccessDeniedException"},
		{"registryId of another account", dockerHub(func(in *ecr.CreatePullThroughCacheRuleInput) { in.RegistryId = aws.String("210987654321") }),
			"InvalidParameterException", "registryId"},
	}
	e := start(t, Options{SecretsManager: sm})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ecr.CreatePullThroughCacheRule(ctx(t), tc.in)
			if code := errCode(t, err); code != tc.wantCode {
				t.Fatalf("code = %s (%v), want %s", code, err, tc.wantCode)
			}
			var ae smithy.APIError
			errors.As(err, &ae)
			if !strings.Contains(ae.ErrorMessage(), tc.wantMsg) {
				t.Errorf("message %q does not contain %q", ae.ErrorMessage(), tc.wantMsg)
			}
			if r := e.srv.Rules(); len(r) != 0 {
				t.Errorf("a refused create stored %+v", r)
			}
		})
	}
}

func TestCreateAccepts(t *testing.T) {
	sm := newSecrets(t)
	arnDocker := sm.put(nameDocker, goodSecret)
	e := start(t, Options{SecretsManager: sm})
	tests := []struct {
		name string
		in   *ecr.CreatePullThroughCacheRuleInput
		want Rule
	}{
		{"ROOT prefix", &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("ROOT"), UpstreamRegistryUrl: aws.String("public.ecr.aws")},
			Rule{EcrRepositoryPrefix: "ROOT", UpstreamRegistry: "ecr-public", UpstreamRegistryURL: "public.ecr.aws"}},
		{"nested prefix, 30 chars, model separators", &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("team-a/mirrors__x/docker.hub-1"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
			UpstreamRegistry: types.UpstreamRegistryDockerHub, CredentialArn: aws.String(arnDocker), UpstreamRepositoryPrefix: aws.String("library"),
		}, Rule{EcrRepositoryPrefix: "team-a/mirrors__x/docker.hub-1", UpstreamRegistry: "docker-hub", UpstreamRegistryURL: "registry-1.docker.io",
			CredentialARN: arnDocker, UpstreamRepositoryPrefix: "library"}},
		{"local registry URL with named registry", &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("ghcr"), UpstreamRegistryUrl: aws.String("http://127.0.0.1:5000"),
			UpstreamRegistry: types.UpstreamRegistryGitHubContainerRegistry, CredentialArn: aws.String(arnDocker),
		}, Rule{EcrRepositoryPrefix: "ghcr", UpstreamRegistry: "github-container-registry", UpstreamRegistryURL: "http://127.0.0.1:5000", CredentialARN: arnDocker}},
		{"ACR inferred from URL", &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("acr"), UpstreamRegistryUrl: aws.String("myreg.azurecr.io"), CredentialArn: aws.String(arnDocker),
		}, Rule{EcrRepositoryPrefix: "acr", UpstreamRegistry: "azure-container-registry", UpstreamRegistryURL: "myreg.azurecr.io", CredentialARN: arnDocker}},
		{"ECR upstream with role", &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("prod"), UpstreamRegistryUrl: aws.String("210987654321.dkr.ecr.us-west-2.amazonaws.com"),
			UpstreamRegistry: types.UpstreamRegistryEcr, CustomRoleArn: aws.String("arn:aws:iam::123456789012:role/ecr-upstream"),
		}, Rule{EcrRepositoryPrefix: "prod", UpstreamRegistry: "ecr", UpstreamRegistryURL: "210987654321.dkr.ecr.us-west-2.amazonaws.com",
			CustomRoleARN: "arn:aws:iam::123456789012:role/ecr-upstream"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.ecr.CreatePullThroughCacheRule(ctx(t), tc.in); err != nil {
				t.Fatalf("create: %v", err)
			}
			out, err := e.ecr.DescribePullThroughCacheRules(ctx(t), &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{tc.want.EcrRepositoryPrefix}})
			if err != nil || len(out.PullThroughCacheRules) != 1 {
				t.Fatalf("describe: %v %v", out, err)
			}
			r := out.PullThroughCacheRules[0]
			got := Rule{EcrRepositoryPrefix: aws.ToString(r.EcrRepositoryPrefix), UpstreamRegistry: string(r.UpstreamRegistry),
				UpstreamRegistryURL: aws.ToString(r.UpstreamRegistryUrl), CredentialARN: aws.ToString(r.CredentialArn),
				CustomRoleARN: aws.ToString(r.CustomRoleArn), UpstreamRepositoryPrefix: aws.ToString(r.UpstreamRepositoryPrefix)}
			if got != tc.want {
				t.Errorf("described %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestUpdateRejects(t *testing.T) {
	sm := newSecrets(t)
	arnDocker := sm.put(nameDocker, goodSecret)
	e := start(t, Options{SecretsManager: sm})
	c := ctx(t)
	for _, in := range []*ecr.CreatePullThroughCacheRuleInput{
		{EcrRepositoryPrefix: aws.String("hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"), CredentialArn: aws.String(arnDocker)},
		{EcrRepositoryPrefix: aws.String("quay"), UpstreamRegistryUrl: aws.String("quay.io")},
	} {
		if _, err := e.ecr.CreatePullThroughCacheRule(c, in); err != nil {
			t.Fatalf("create %s: %v", aws.ToString(in.EcrRepositoryPrefix), err)
		}
	}
	tests := []struct {
		name     string
		in       *ecr.UpdatePullThroughCacheRuleInput
		wantCode string
	}{
		{"nothing to change", &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub")}, "InvalidParameterException"},
		{"credential for quay", &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("quay"), CredentialArn: aws.String(arnDocker)}, "InvalidParameterException"},
		{"bad ARN pattern", &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub"),
			CredentialArn: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:other/credentials-AbCdEf")}, "ValidationException"},
		{"missing secret", &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub"), CredentialArn: aws.String(arnMissing)}, "SecretNotFoundException"},
		{"bad prefix", &ecr.UpdatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("H"), CredentialArn: aws.String(arnDocker)}, "ValidationException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ecr.UpdatePullThroughCacheRule(c, tc.in)
			if code := errCode(t, err); code != tc.wantCode {
				t.Errorf("code = %s (%v), want %s", code, err, tc.wantCode)
			}
		})
	}
	if r, _ := e.srv.lookup("hub"); r.CredentialARN != arnDocker {
		t.Errorf("a refused update changed the rule: %+v", r)
	}
}

func TestDescribePagination(t *testing.T) {
	e := start(t, Options{})
	c := ctx(t)
	var want []string
	for i := range 5 {
		p := fmt.Sprintf("quay-%d", i)
		want = append(want, p)
		if _, err := e.ecr.CreatePullThroughCacheRule(c, &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String(p), UpstreamRegistryUrl: aws.String("quay.io"), UpstreamRegistry: types.UpstreamRegistryQuay,
		}); err != nil {
			t.Fatal(err)
		}
	}
	pager := ecr.NewDescribePullThroughCacheRulesPaginator(e.ecr, &ecr.DescribePullThroughCacheRulesInput{MaxResults: aws.Int32(2)})
	var got []string
	pages := 0
	for pager.HasMorePages() {
		page, err := pager.NextPage(c)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		if len(page.PullThroughCacheRules) > 2 {
			t.Errorf("page %d has %d rules, maxResults was 2", pages, len(page.PullThroughCacheRules))
		}
		for _, r := range page.PullThroughCacheRules {
			got = append(got, aws.ToString(r.EcrRepositoryPrefix))
		}
	}
	if pages != 3 || !reflect.DeepEqual(got, want) {
		t.Errorf("paged %d pages %v, want 3 pages %v", pages, got, want)
	}

	_, err := e.ecr.DescribePullThroughCacheRules(c, &ecr.DescribePullThroughCacheRulesInput{MaxResults: aws.Int32(0)})
	if code := errCode(t, err); code != "ValidationException" {
		t.Errorf("maxResults 0: %s, want ValidationException", code)
	}
	_, err = e.ecr.DescribePullThroughCacheRules(c, &ecr.DescribePullThroughCacheRulesInput{NextToken: aws.String("!!not-a-token!!")})
	if code := errCode(t, err); code != "InvalidParameterException" {
		t.Errorf("bad nextToken: %s, want InvalidParameterException", code)
	}
	_, err = e.ecr.DescribePullThroughCacheRules(c, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{"quay-1", "missing"}})
	var nf *types.PullThroughCacheRuleNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("one unknown prefix among known: %v, want PullThroughCacheRuleNotFoundException", err)
	}
}

func TestFaultInjectionAndLimits(t *testing.T) {
	hookErr := error(nil)
	var mu sync.Mutex
	e := start(t, Options{MaxRules: 2, Hook: func(op string) error {
		mu.Lock()
		defer mu.Unlock()
		if op == OpDescribe {
			return hookErr
		}
		return nil
	}})
	c := ctx(t)
	create := func(p string) error {
		_, err := e.ecr.CreatePullThroughCacheRule(c, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(p), UpstreamRegistryUrl: aws.String("registry.k8s.io")})
		return err
	}

	e.srv.FailNext(OpCreate, "ServerException", http.StatusInternalServerError)
	var se *types.ServerException
	if err := create("k8s"); !errors.As(err, &se) {
		t.Fatalf("injected ServerException: got %v", err)
	}
	if len(e.srv.Rules()) != 0 {
		t.Fatal("an injected failure must not run the operation")
	}
	if err := create("k8s"); err != nil {
		t.Fatalf("FailNext is one-shot, second create: %v", err)
	}
	if err := create("k8s-2"); err != nil {
		t.Fatal(err)
	}
	var le *types.LimitExceededException
	if err := create("k8s-3"); !errors.As(err, &le) {
		t.Errorf("third rule with MaxRules 2: %v, want LimitExceededException", err)
	}

	mu.Lock()
	hookErr = &Error{Type: "ValidationException", Message: "hooked"}
	mu.Unlock()
	_, err := e.ecr.DescribePullThroughCacheRules(c, &ecr.DescribePullThroughCacheRulesInput{})
	var ve *types.ValidationException
	if !errors.As(err, &ve) || ve.ErrorMessage() != "hooked" {
		t.Errorf("hook *Error: %v, want ValidationException 'hooked'", err)
	}
	mu.Lock()
	hookErr = errors.New("plain error")
	mu.Unlock()
	_, err = e.ecr.DescribePullThroughCacheRules(c, &ecr.DescribePullThroughCacheRulesInput{})
	if !errors.As(err, &se) {
		t.Errorf("hook plain error: %v, want ServerException", err)
	}
}

// Many clients creating the same prefix at once: exactly one wins (run with -race).
func TestConcurrentCreate(t *testing.T) {
	sm := newSecrets(t)
	arnDocker := sm.put(nameDocker, goodSecret)
	e := start(t, Options{SecretsManager: sm})
	c := ctx(t)
	const n = 16
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.ecr.CreatePullThroughCacheRule(c, &ecr.CreatePullThroughCacheRuleInput{
				EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"), CredentialArn: aws.String(arnDocker),
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok, dup := 0, 0
	for err := range errs {
		var d *types.PullThroughCacheRuleAlreadyExistsException
		switch {
		case err == nil:
			ok++
		case errors.As(err, &d):
			dup++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || dup != n-1 || len(e.srv.Rules()) != 1 {
		t.Errorf("%d succeeded, %d duplicates, %d rules; want 1, %d, 1", ok, dup, len(e.srv.Rules()), n-1)
	}
}
