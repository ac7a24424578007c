package staged_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/staged"
)

const planted = "dckr_pat_PLANTED-staged-91f3"

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not an object", `["x"]`, "not a JSON object"},
		{"wrong mode", `{"mode":"mint","username":"u","token":"` + planted + `"}`, `field "mode" must be "staged"`},
		{"mode not a string", `{"mode":1,"username":"u","token":"` + planted + `"}`, `field "mode" must be a string`},
		{"no username", `{"mode":"staged","token":"` + planted + `"}`, `field "username" is required`},
		{"blank username", `{"mode":"staged","username":" ","token":"` + planted + `"}`, `field "username" is empty`},
		{"no token", `{"mode":"staged","username":"u"}`, `field "token" is required`},
		{"token with spaces", `{"mode":"staged","username":"u","token":" ` + planted + `"}`, `field "token" must be the token alone`},
		{"bad expiresAt", `{"mode":"staged","username":"u","token":"` + planted + `","expiresAt":"next spring"}`, `field "expiresAt" must be a date`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := staged.ParseSource([]byte(tc.doc), "docker-hub")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "docker-hub source secret (staged mode): ") {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), planted) {
				t.Fatal("the error quotes the token")
			}
		})
	}
	s, err := staged.ParseSource([]byte(`{"mode":"staged","username":"u","token":"`+planted+`","expiresAt":"2026-03-01","checkRepository":"a/b","allowedSecrets":["ecr-pullthroughcache/"]}`), "docker-hub")
	if err != nil {
		t.Fatal(err)
	}
	if s.Username != "u" || s.Token != planted || !s.ExpiresAt.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || string(s.Fields) != `{"checkRepository":"a/b"}` {
		t.Fatalf("parsed %+v fields %s", s, s.Fields)
	}
	if s, err = staged.ParseSource([]byte(`{"mode":"staged","username":"u","token":"t","expiresAt":"2026-03-01T12:00:00+02:00"}`), "x"); err != nil || !s.ExpiresAt.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("RFC 3339 expiresAt: %v %v", s.ExpiresAt, err)
	}
}

// TestEveryProviderRunsStagedMode: providers.All builds the staged upstream for a staged source
// of every registry and the registry's own otherwise; a field the registry's verifier does not
// know is refused by name.
func TestEveryProviderRunsStagedMode(t *testing.T) {
	fields := map[string]string{
		ptcsecret.UpstreamDockerHub:  `,"checkRepository":"library/alpine"`,
		ptcsecret.UpstreamGHCR:       `,"checkRepository":"octo/app"`,
		ptcsecret.UpstreamGitLab:     `,"checkRepository":"acme/app"`,
		ptcsecret.UpstreamACR:        `,"loginServer":"myreg.azurecr.io"`,
		ptcsecret.UpstreamChainguard: `,"checkRepository":"acme.dev/nginx"`,
	}
	for reg, p := range providers.All() {
		t.Run(reg, func(t *testing.T) {
			f, ok := fields[reg]
			if !ok {
				t.Fatalf("no staged case for %s", reg)
			}
			doc := `{"mode":"staged","username":"octo","token":"ghp_` + planted + `"` + f + `}`
			up, err := p.New([]byte(doc), upstream.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := up.(*staged.Staged); !ok || up.Registry() != reg {
				t.Fatalf("built %T for %s", up, reg)
			}
			_, err = p.New([]byte(`{"mode":"staged","username":"octo","token":"ghp_`+planted+`","password":"x"}`), upstream.Options{RegistryURL: "myreg.azurecr.io"})
			if err == nil || !strings.Contains(err.Error(), `unknown field "password"`) || strings.Contains(err.Error(), planted) {
				t.Fatalf("unknown field: %v", err)
			}
		})
	}
	up, err := providers.All()[ptcsecret.UpstreamDockerHub].New([]byte(`{"username":"u","password":"p"}`), upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := up.(*dockerhub.DockerHub); !ok {
		t.Fatalf("a source without mode built %T, want the minting upstream", up)
	}
}

type reader struct{ doc string }

func (r reader) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(r.doc)}, nil
}

// TestBindingAppliesToStagedSources: a staged source secret must list the managed secret in
// allowedSecrets like any other, or FromSource refuses it.
func TestBindingAppliesToStagedSources(t *testing.T) {
	req := upstream.SourceRequest{Name: "source secret", Registry: ptcsecret.UpstreamDockerHub, ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/x",
		Providers: providers.All(), ForSecret: "ecr-pullthroughcache/team-a/hub"}
	base := `{"mode":"staged","username":"u","token":"` + planted + `"`
	_, err := upstream.FromSource(context.Background(), reader{base + `}`}, req)
	if !errors.Is(err, upstream.ErrUnusableSource) || !strings.Contains(err.Error(), "allowedSecrets") || strings.Contains(err.Error(), planted) {
		t.Fatalf("unbound staged source: %v", err)
	}
	_, err = upstream.FromSource(context.Background(), reader{base + `,"allowedSecrets":["ecr-pullthroughcache/team-b/"]}`}, req)
	if !errors.Is(err, upstream.ErrUnusableSource) {
		t.Fatalf("staged source bound to another team: %v", err)
	}
	up, err := upstream.FromSource(context.Background(), reader{base + `,"allowedSecrets":["ecr-pullthroughcache/team-a/"]}`}, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := up.(*staged.Staged); !ok {
		t.Fatalf("built %T", up)
	}
}

type fakeVerifier struct {
	v   upstream.Verification
	err error
}

func (f fakeVerifier) Verify(context.Context, upstream.Credential) (upstream.Verification, error) {
	return f.v, f.err
}

// TestVerifyExpiry: the vendor's expiry wins; else expiresAt, but only for the staged token
// itself; else unknown — a warning naming expiresAt, and no expiry. Mint hands out the staged
// token; nothing is listed or revoked.
func TestVerifyExpiry(t *testing.T) {
	vendor := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	doc := []byte(`{"mode":"staged","username":"u","token":"` + planted + `","expiresAt":"2026-04-01"}`)
	noExp := []byte(`{"mode":"staged","username":"u","token":"` + planted + `"}`)
	staged1 := upstream.Credential{Username: "u", AccessToken: planted}
	other := upstream.Credential{Username: "u", AccessToken: "dckr_pat_PLANTED-current-77"}
	for _, tc := range []struct {
		name   string
		doc    []byte
		vendor time.Time
		cred   upstream.Credential
		want   time.Time
		warn   bool
	}{
		{"vendor tells", doc, vendor, staged1, vendor, false},
		{"expiresAt", doc, time.Time{}, staged1, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), false},
		{"expiresAt is not the current token's", doc, time.Time{}, other, time.Time{}, true},
		{"unknown", noExp, time.Time{}, staged1, time.Time{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			opts := upstream.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			s, err := staged.New("docker-hub", tc.doc, opts, func(staged.Source, upstream.Options) (staged.Verifier, error) {
				return fakeVerifier{v: upstream.Verification{ExpiresAt: tc.vendor}}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.Verify(context.Background(), tc.cred)
			if err != nil || !v.ExpiresAt.Equal(tc.want) {
				t.Fatalf("expiry %v (%v), want %v", v.ExpiresAt, err, tc.want)
			}
			warned := strings.Contains(logs.String(), `"level":"WARN"`) && strings.Contains(logs.String(), "expiresAt")
			if warned != tc.warn {
				t.Errorf("warned=%v, want %v: %s", warned, tc.warn, logs.String())
			}
			m, err := s.Mint(context.Background(), upstream.MintRequest{Label: "l"})
			if err != nil || m.Credential != staged1 || m.Token.Label != "l" || m.Token.ID != "" {
				t.Fatalf("mint %+v %v", m.Token, err)
			}
			if toks, err := s.Tokens(context.Background(), "ptc-"); toks != nil || err != nil {
				t.Fatalf("tokens %v %v", toks, err)
			}
			if err := s.Revoke(context.Background(), upstream.Token{ID: "1"}); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(logs.String(), planted) {
				t.Fatal("the token reached the log")
			}
		})
	}
	s, _ := staged.New("docker-hub", doc, upstream.Options{}, func(staged.Source, upstream.Options) (staged.Verifier, error) {
		return fakeVerifier{err: errors.New("refused")}, nil
	})
	if _, err := s.Verify(context.Background(), staged1); err == nil {
		t.Fatal("a refused login verified")
	}
}
