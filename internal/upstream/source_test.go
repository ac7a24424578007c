package upstream

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestDecodeSourceNamesTheProblemNeverTheValue(t *testing.T) {
	type src struct {
		Username string `json:"username"`
		Port     int    `json:"port"`
	}
	for _, tc := range []struct{ raw, want string }{
		{`{"username":"PLANTED-value-1"}`, ""},
		{``, "empty; store a JSON object"},
		{`{"username": "PLANTED-value-2"`, "it ends early"},
		{`{"username": PLANTED-value-3}`, "syntax error at byte"},
		{`[1, "PLANTED-value-4"]`, "not a JSON object"},
		{`{"port": "PLANTED-value-5"}`, `field "port" must be a int`},
		{`{"pasword": "PLANTED-value-6"}`, `unknown field "pasword"`},
		{`{"username":"a"} {"username":"PLANTED-value-7"}`, "more than one JSON value"},
	} {
		var s src
		err := DecodeSource([]byte(tc.raw), "docker-hub", &s)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.raw, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "docker-hub source secret: ") {
			t.Errorf("%s: got %v, want %q", tc.raw, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "PLANTED") {
			t.Errorf("%s: the error quotes the value: %v", tc.raw, err)
		}
	}
}

// fakeSM answers GetSecretValue for one source secret and records the ids asked for.
type fakeSM struct {
	asked []string
	value *string
	err   error
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.asked = append(f.asked, aws.ToString(in.SecretId))
	if f.err != nil {
		return nil, f.err
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: f.value}, nil
}

const sourceARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/hub-AbCdEf"

// strictProvider decodes the source secret the way every real provider does.
func strictProvider(got *Options) Provider {
	return Provider{Registry: "docker-hub", New: func(source []byte, opts Options) (Upstream, error) {
		var s struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := DecodeSource(source, "docker-hub", &s); err != nil {
			return nil, err
		}
		*got = opts
		return &recorder{}, nil
	}}
}

func TestFromSourceBuildsTheUpstreamFromTheSecretItReads(t *testing.T) {
	var got Options
	sm := &fakeSM{value: aws.String(`{"username":"u","password":"PLANTED-password","allowedSecrets":["ecr-pullthroughcache/hub"]}`)}
	var seen []string
	up, err := FromSource(context.Background(), sm, SourceRequest{
		Name: "SourceSecretArn", Registry: "docker-hub", ARN: sourceARN, ForSecret: "ecr-pullthroughcache/hub",
		Providers: map[string]Provider{"docker-hub": strictProvider(&got)},
		Options:   Options{RegistryURL: "registry.example"},
		Seen:      func(doc string) { seen = append(seen, doc) },
	})
	if err != nil || up == nil {
		t.Fatalf("FromSource: %v", err)
	}
	if !slices.Equal(sm.asked, []string{sourceARN}) || got.RegistryURL != "registry.example" {
		t.Fatalf("read %q, options %+v", sm.asked, got)
	}
	if len(seen) != 1 || !strings.Contains(seen[0], "PLANTED-password") {
		t.Fatalf("Seen was not handed the source secret before parsing: %q", seen)
	}
}

func TestFromSourceErrorsNameTheARNAndTheProblemNeverTheValue(t *testing.T) {
	denied := errors.New("AccessDeniedException: injected")
	var got Options
	providers := map[string]Provider{"docker-hub": strictProvider(&got), "gitlab-container-registry": {Registry: "gitlab-container-registry", New: strictProvider(&got).New}}
	for _, tc := range []struct {
		name     string
		registry string
		sm       *fakeSM
		want     string
		unusable bool
		reads    int
	}{
		{"unreadable", "docker-hub", &fakeSM{err: denied}, "reading SourceSecretArn " + sourceARN + ": AccessDeniedException", false, 1},
		{"binary only", "docker-hub", &fakeSM{}, "SourceSecretArn " + sourceARN + " has no string value; store the docker-hub settings as JSON", true, 1},
		{"not JSON", "docker-hub", &fakeSM{value: aws.String(`{"password": PLANTED-broken`)}, "SourceSecretArn " + sourceARN + ": docker-hub source secret: not valid JSON", true, 1},
		{"misspelt field", "docker-hub", &fakeSM{value: aws.String(`{"pasword": "PLANTED-value"}`)}, `SourceSecretArn ` + sourceARN + `: docker-hub source secret: `, true, 1},
		{"unsupported registry", "quay", &fakeSM{value: aws.String(`{}`)}, `SourceSecretArn ` + sourceARN + `: upstream registry "quay" is not supported; use one of docker-hub, gitlab-container-registry`, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromSource(context.Background(), tc.sm, SourceRequest{Name: "SourceSecretArn", Registry: tc.registry, ARN: sourceARN, Providers: providers})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if tc.name == "misspelt field" && !strings.Contains(err.Error(), `field "pasword"`) {
				t.Fatalf("the field at fault is not named: %v", err)
			}
			if strings.Contains(err.Error(), "PLANTED") {
				t.Fatalf("the error quotes the source secret: %v", err)
			}
			if errors.Is(err, ErrUnusableSource) != tc.unusable {
				t.Fatalf("errors.Is(err, ErrUnusableSource) = %v, want %v", !tc.unusable, tc.unusable)
			}
			if strings.Contains(err.Error(), ErrUnusableSource.Error()) {
				t.Fatalf("the marker's text reached the message: %v", err)
			}
			if len(tc.sm.asked) != tc.reads {
				t.Fatalf("read the source secret %d times, want %d", len(tc.sm.asked), tc.reads)
			}
		})
	}
	// A read failure keeps Secrets Manager's error for callers that tell "not found" apart.
	_, err := FromSource(context.Background(), &fakeSM{err: denied}, SourceRequest{Name: "source secret", Registry: "docker-hub", ARN: sourceARN, Providers: providers})
	if !errors.Is(err, denied) {
		t.Fatalf("the read error is not wrapped: %v", err)
	}
	// No ARN: nothing is read, and the caller's name for it is in the message.
	sm := &fakeSM{}
	if _, err := FromSource(context.Background(), sm, SourceRequest{Name: "source secret", Registry: "docker-hub", Providers: providers}); err == nil || !strings.Contains(err.Error(), "source secret: no ARN given") || len(sm.asked) != 0 {
		t.Fatalf("empty ARN: %v (reads %d)", err, len(sm.asked))
	}
}

// The unknown-field message says "unknown field" once (it used to read "unknown unknown field").
func TestUnknownFieldSaidOnce(t *testing.T) {
	var dst struct{ Password string }
	err := DecodeSource([]byte(`{"pasword": "x"}`), "docker-hub", &dst)
	if err == nil || strings.Contains(err.Error(), "unknown unknown") || !strings.Contains(err.Error(), `unknown field "pasword"`) {
		t.Fatalf("error %v", err)
	}
}

func TestBindingAllows(t *testing.T) {
	b := Binding{"ecr-pullthroughcache/hub", "ecr-pullthroughcache/team-a/"}
	for name, want := range map[string]bool{
		"ecr-pullthroughcache/hub":          true,
		"ecr-pullthroughcache/hub2":         false, // an exact entry is not a prefix
		"ecr-pullthroughcache/team-a/cache": true,
		"ecr-pullthroughcache/team-a":       false,
		"ecr-pullthroughcache/team-b/x":     false,
		"":                                  false,
	} {
		if got := b.Allows(name); got != want {
			t.Errorf("Allows(%q) = %v, want %v", name, got, want)
		}
	}
	if (Binding{}).Allows("ecr-pullthroughcache/hub") {
		t.Error("an empty binding allows nothing")
	}
}

func TestParseBinding(t *testing.T) {
	if b, err := ParseBinding([]byte(`{"allowedSecrets":["ecr-pullthroughcache/a/"],"password":"PLANTED-x"}`)); err != nil || len(b) != 1 {
		t.Fatalf("ParseBinding = %v, %v", b, err)
	}
	if b, err := ParseBinding([]byte(`{"password":"x"}`)); err != nil || b != nil {
		t.Fatalf("no field: %v, %v", b, err)
	}
	for _, doc := range []string{`{"allowedSecrets":"ecr-pullthroughcache/a"}`, `{"allowedSecrets":["other/a"]}`, `{"allowedSecrets":[1]}`} {
		if _, err := ParseBinding([]byte(doc)); err == nil || !strings.Contains(err.Error(), BindingField) {
			t.Errorf("%s: error %v, want one naming %s", doc, err, BindingField)
		}
	}
}

// FromSource refuses a managed secret the source does not list, after the provider accepted
// the document, and the strict providers never see the binding field.
func TestFromSourceChecksTheBinding(t *testing.T) {
	var got Options
	doc := `{"username":"u","password":"PLANTED-password","allowedSecrets":["ecr-pullthroughcache/team-a/"]}`
	req := SourceRequest{Name: "source secret", Registry: "docker-hub", ARN: sourceARN, Providers: map[string]Provider{"docker-hub": strictProvider(&got)}}
	req.ForSecret = "ecr-pullthroughcache/team-a/hub"
	if _, err := FromSource(context.Background(), &fakeSM{value: aws.String(doc)}, req); err != nil {
		t.Fatalf("allowed secret: %v", err)
	}
	req.ForSecret = "ecr-pullthroughcache/team-b/hub"
	_, err := FromSource(context.Background(), &fakeSM{value: aws.String(doc)}, req)
	if err == nil || !errors.Is(err, ErrUnusableSource) || !strings.Contains(err.Error(), BindingField) || strings.Contains(err.Error(), "PLANTED") {
		t.Fatalf("another team's secret: %v", err)
	}
	req.ForSecret, req.RevokeOnly = "", true
	if _, err := FromSource(context.Background(), &fakeSM{value: aws.String(doc)}, req); err != nil {
		t.Fatalf("revoke only: %v", err)
	}
	req.RevokeOnly = false
	if _, err := FromSource(context.Background(), &fakeSM{value: aws.String(doc)}, req); err == nil {
		t.Fatal("no ForSecret and not RevokeOnly: FromSource must refuse, not skip the check")
	}
}
