package gitlab_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/gitlabemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// The two ways to configure the source: a group's tokens (the descriptor's source secret) or a
// project's.
var kinds = []struct {
	name   string
	source map[string]any
}{
	{"group", nil},
	{"project", map[string]any{"groupId": nil, "checkRepository": nil, "projectId": registries.GitLabProject}},
}

// TestConformance runs the shared rotation suite against the GitLab emulator (real clock: the
// rotator, moto and the emulator agree on time) and moto, for a group's and a project's tokens.
func TestConformance(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			upstreamtest.Run(t, moto, registries.GitLab, upstreamtest.Options{
				Emulator: registries.Options{Source: k.source},
				// The pending value is the new token labelled for its version, minted the way
				// the source asks for: a group or project access token, Reporter, read_registry,
				// with an expiry.
				AfterMint: func(f *upstreamtest.Fixture, version string) {
					pending := f.Value(version)
					tok, ok := liveTokens(f)[version]
					if !ok || pending.AccessToken != tok.Secret || pending.Username != tok.Name {
						f.T.Fatalf("the pending value is not the new token labelled for its version: %v", liveTokens(f))
					}
					if tok.Kind != k.name+"s" || tok.AccessLevel != 20 || fmt.Sprint(tok.Scopes) != "[read_registry]" || tok.ExpiresAt.IsZero() {
						f.T.Fatalf("minted %+v", tok)
					}
				},
			})
		})
	}
}

// newFixture is one managed secret whose tokens come from the descriptor's GitLab emulator, with
// two more members of the group (planted tokens of gitlab_test.go): a Developer, and an Owner
// whose token has only read_api.
func newFixture(t *testing.T) *upstreamtest.Fixture {
	t.Helper()
	f := upstreamtest.New(t, moto, registries.GitLab, upstreamtest.Options{})
	f.E.GitLab.AddUser(gitlabemu.User{Username: "dev", Token: devToken})
	f.E.GitLab.AddUser(gitlabemu.User{Username: "reader", Token: readToken, Scopes: []string{"read_api"}})
	f.E.GitLab.SetMember(registries.GitLabGroup, "dev", gitlabemu.Developer)
	f.E.GitLab.SetMember(registries.GitLabGroup, "reader", gitlabemu.Owner)
	f.Planted = append(f.Planted, devToken, readToken)
	return f
}

// liveTokens returns the emulator's live tokens labelled for the secret, by version id.
func liveTokens(f *upstreamtest.Fixture) map[string]gitlabemu.Token {
	f.T.Helper()
	out := map[string]gitlabemu.Token{}
	for _, t := range f.E.GitLab.Tokens() {
		if v, ok := ptcsecret.VersionFromLabel(f.Key, t.Name); ok && !t.Revoked {
			if _, dup := out[v]; dup {
				f.T.Fatalf("two live tokens carry the label of version %s", v)
			}
			out[v] = t
		}
	}
	return out
}

// putSource replaces fields of the descriptor's source secret (nil removes one) and stores it.
func putSource(f *upstreamtest.Fixture, fields map[string]any) {
	f.T.Helper()
	var src map[string]any
	if err := json.Unmarshal([]byte(f.E.Source(0)), &src); err != nil {
		f.T.Fatal(err)
	}
	for k, v := range fields {
		if v == nil {
			delete(src, k)
		} else {
			src[k] = v
		}
	}
	b, _ := json.Marshal(src)
	f.PutSource(string(b))
}

func runSteps(f *upstreamtest.Fixture, token string, steps ...rotation.Step) {
	f.T.Helper()
	for _, s := range steps {
		if err := f.Step(s, token); err != nil {
			f.T.Fatalf("%s: %v", s, err)
		}
	}
}

// TestFailuresLeaveCurrentWorking breaks one thing per case: the step fails with an error that
// says what to fix, AWSCURRENT stays and still logs in, nothing secret leaks.
func TestFailuresLeaveCurrentWorking(t *testing.T) {
	for _, tc := range []struct {
		name   string
		step   rotation.Step
		before func(f *upstreamtest.Fixture, token string)
		want   []string
		is     error
	}{
		{name: "source secret is not JSON", step: rotation.CreateSecret, before: func(f *upstreamtest.Fixture, _ string) {
			f.PutSource(`{"token": "glpat-PLANTED-broken-json`)
		}, want: []string{"gitlab-container-registry source secret: not valid JSON"}},
		{name: "both groupId and projectId", step: rotation.CreateSecret, before: func(f *upstreamtest.Fixture, _ string) {
			putSource(f, map[string]any{"projectId": registries.GitLabProjectID})
		}, want: []string{`either "groupId" or "projectId", not both`}},
		{name: "owner token without rights (a Developer's)", step: rotation.CreateSecret, before: func(f *upstreamtest.Fixture, _ string) {
			putSource(f, map[string]any{"token": devToken})
		}, want: []string{`GitLab refused the source token: check field "token" (an Owner's token with the api scope)`, "not an Owner of the group"}},
		{name: "owner token without the api scope (403)", step: rotation.CreateSecret, before: func(f *upstreamtest.Fixture, _ string) {
			putSource(f, map[string]any{"token": readToken})
			// read_api may list tokens; creating one needs api.
		}, want: []string{"HTTP 403", "needs the api scope", "must be an Owner of the group", "Premium/Ultimate on GitLab.com"}},
		{name: "source token revoked", step: rotation.CreateSecret, before: func(f *upstreamtest.Fixture, _ string) {
			putSource(f, map[string]any{"token": "glpat-PLANTED-revoked-owner"})
		}, want: []string{"HTTP 401", `check field "token"`}},
		{name: "group not found", step: rotation.CreateSecret, before: func(f *upstreamtest.Fixture, _ string) {
			putSource(f, map[string]any{"groupId": "acme-typo", "checkRepository": nil})
		}, want: []string{`group not found: check field "groupId"`}},
		{name: "GitLab down while minting", step: rotation.CreateSecret, before: func(f *upstreamtest.Fixture, _ string) {
			f.E.Inject("POST", "/api/v4/groups/", 503, 1)
		}, want: []string{"create group access token: HTTP 503"}},
		{name: "a Guest token cannot pull the private project", step: rotation.TestSecret, before: func(f *upstreamtest.Fixture, token string) {
			putSource(f, map[string]any{"accessLevel": 10})
			runSteps(f, token, rotation.CreateSecret, rotation.SetSecret)
		}, want: []string{"cannot log in to the gitlab-container-registry registry", `granted no pull on "` + registries.GitLabProject + `"`, `raise field "accessLevel"`}, is: registryauth.ErrBadCredentials},
		{name: "pending token revoked before testSecret", step: rotation.TestSecret, before: func(f *upstreamtest.Fixture, token string) {
			runSteps(f, token, rotation.CreateSecret, rotation.SetSecret)
			if err := f.Upstream().Revoke(f.Ctx, upstream.Token{ID: fmt.Sprint(liveTokens(f)[token].ID)}); err != nil {
				f.T.Fatal(err)
			}
		}, want: []string{"cannot log in to the gitlab-container-registry registry"}, is: registryauth.ErrBadCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.Planted = append(f.Planted, "glpat-PLANTED-broken-json", "glpat-PLANTED-revoked-owner")
			curID, cur := f.Current()
			token := f.Begin()
			tc.before(f, token)
			err := f.Rotator().Handle(f.Ctx, rotation.Event{Step: tc.step, SecretID: f.ARN, ClientRequestToken: token})
			if err == nil {
				t.Fatal("the step succeeded")
			}
			f.Errs = append(f.Errs, err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if id, v := f.Current(); id != curID || v.AccessToken != cur.AccessToken {
				t.Fatal("AWSCURRENT changed")
			}
			f.MustLogIn(cur, "AWSCURRENT")
			if tc.step == rotation.CreateSecret {
				if _, ok := liveTokens(f)[token]; ok {
					t.Error("a token was minted for the failed version")
				}
			}
			f.ScanLeaks()
		})
	}
}

// TestUpstreamCallsPerRotation counts what one full rotation asks of GitLab (budget: 6).
func TestUpstreamCallsPerRotation(t *testing.T) {
	f := upstreamtest.New(t, moto, registries.GitLab, upstreamtest.Options{})
	for i, want := range []int{5, 6} { // the first rotation has nothing two generations old to revoke
		f.E.ResetCalls()
		f.Rotate()
		calls := f.E.Calls()
		var lines []string
		for _, c := range calls {
			lines = append(lines, fmt.Sprintf("%s %s -> %d", c.Method, c.Path, c.Status))
		}
		t.Logf("rotation %d: %d upstream calls:\n  %s", i+1, len(calls), strings.Join(lines, "\n  "))
		if len(calls) != want {
			t.Errorf("rotation %d made %d upstream calls, want %d", i+1, len(calls), want)
		}
		for _, c := range calls {
			if strings.HasSuffix(c.Path, "/rotate") {
				t.Errorf("the rotate endpoint was called: %s", c.Path)
			}
			if c.Status >= 300 && !(c.Path == "/v2/" && c.Status == http.StatusUnauthorized) {
				t.Errorf("call %s %s answered %d", c.Method, c.Path, c.Status)
			}
		}
	}
}
