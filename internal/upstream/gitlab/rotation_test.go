package gitlab_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/gitlabemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/gitlab"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// fixture is one managed secret whose tokens come from an emulated GitLab (real clock: the
// rotator, moto and the emulator agree on time).
type fixture struct {
	*rotationtest.Harness
	t   *testing.T
	emu *gitlabemu.Server
	url string
}

// The two ways to configure the source: a group's tokens or a project's.
var kinds = []struct {
	name   string
	source map[string]any
}{
	{"group", map[string]any{"groupId": "acme", "checkRepository": appRepo}},
	{"project", map[string]any{"projectId": appRepo}},
}

func newFixture(t *testing.T, source map[string]any) *fixture {
	t.Helper()
	emu := gitlabemu.New(gitlabemu.Options{})
	emu.AddUser(gitlabemu.User{Username: "olivia", Token: ownerToken})
	emu.AddUser(gitlabemu.User{Username: "dev", Token: devToken})
	emu.AddUser(gitlabemu.User{Username: "reader", Token: readToken, Scopes: []string{"read_api"}})
	emu.AddGroup(gitlabemu.Group{ID: 11, Path: "acme", Premium: true, Members: map[string]int{"olivia": gitlabemu.Owner, "dev": gitlabemu.Developer, "reader": gitlabemu.Owner}})
	emu.AddProject(gitlabemu.Project{ID: 31, Path: appRepo})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	src := map[string]any{"token": ownerToken, "apiUrl": srv.URL}
	for k, v := range source {
		src[k] = v
	}
	b, _ := json.Marshal(src)
	h := rotationtest.New(t, moto, rotationtest.Config{Provider: gitlab.Provider, SourceJSON: string(b), RegistryURL: srv.URL})
	return &fixture{Harness: h, t: t, emu: emu, url: srv.URL}
}

// loginErr checks a credential with the OCI handshake directly, not through the upstream.
func (f *fixture) loginErr(v ptcsecret.Value) error {
	return registryauth.Check(f.Ctx, nil, registryauth.Target{Registry: f.url, Repository: appRepo},
		registryauth.Credential{Username: v.Username, Password: v.AccessToken})
}

func (f *fixture) mustLogIn(v ptcsecret.Value, what string) {
	f.t.Helper()
	if err := f.loginErr(v); err != nil {
		f.t.Fatalf("%s does not log in: %v", what, err)
	}
}

// tokens returns the emulator's live tokens labelled for this secret, by version id.
func (f *fixture) tokens() map[string]gitlabemu.Token {
	f.t.Helper()
	out := map[string]gitlabemu.Token{}
	for _, t := range f.emu.Tokens() {
		if v, ok := ptcsecret.VersionFromLabel(f.Key, t.Name); ok && !t.Revoked {
			if _, dup := out[v]; dup {
				f.t.Fatalf("two live tokens carry the label of version %s", v)
			}
			out[v] = t
		}
	}
	return out
}

// apiLabels lists this secret's tokens through the upstream (the GitLab API).
func (f *fixture) apiLabels() []string {
	f.t.Helper()
	toks, err := f.Upstream().Tokens(f.Ctx, ptcsecret.LabelPrefix(f.Key))
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, t := range toks {
		out = append(out, t.Label)
	}
	return out
}

func (f *fixture) assertNoLeak() {
	f.t.Helper()
	planted := []string{ownerToken, devToken, readToken}
	for _, t := range f.emu.Tokens() {
		planted = append(planted, t.Secret)
	}
	f.AssertNoLeak(planted...)
}

func (f *fixture) putSource(fields map[string]any) {
	f.t.Helper()
	src := map[string]any{"token": ownerToken, "apiUrl": f.url, "groupId": "acme", "checkRepository": appRepo}
	for k, v := range fields {
		if v == nil {
			delete(src, k)
		} else {
			src[k] = v
		}
	}
	b, _ := json.Marshal(src)
	f.putSourceRaw(string(b))
}

func (f *fixture) putSourceRaw(doc string) {
	f.t.Helper()
	if _, err := f.SM.PutSecretValue(f.Ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(f.SourceARN), SecretString: aws.String(doc)}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) runSteps(token string, steps ...rotation.Step) {
	f.t.Helper()
	for _, s := range steps {
		if err := f.Step(s, token); err != nil {
			f.t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestFullRotationStagesAndLogin(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			f := newFixture(t, k.source)
			oldID, oldVal := f.Current()
			token := f.Begin()
			r := f.Rotator()
			if err := f.StepWith(r, rotation.CreateSecret, token); err != nil {
				t.Fatal(err)
			}
			st := f.Stages()
			if !slices.Contains(st[token], "AWSPENDING") || !slices.Contains(st[oldID], "AWSCURRENT") {
				t.Fatalf("after createSecret: stages %v", st)
			}
			pending := f.Value(token)
			tok, ok := f.tokens()[token]
			if !ok || pending.AccessToken != tok.Secret || pending.AccessToken == oldVal.AccessToken || pending.Username != tok.Name {
				t.Fatalf("the pending value is not the new token labelled for its version: %v", f.tokens())
			}
			if tok.Kind != k.name+"s" || tok.AccessLevel != 20 || fmt.Sprint(tok.Scopes) != "[read_registry]" || tok.ExpiresAt.IsZero() {
				t.Fatalf("minted %+v", tok)
			}
			for _, s := range []rotation.Step{rotation.SetSecret, rotation.TestSecret} {
				if err := f.StepWith(r, s, token); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				if st := f.Stages(); !slices.Contains(st[oldID], "AWSCURRENT") {
					t.Fatalf("%s moved AWSCURRENT: %v", s, st)
				}
			}
			if err := f.StepWith(r, rotation.FinishSecret, token); err != nil {
				t.Fatal(err)
			}
			f.AssertStages(token, "AWSCURRENT")
			f.AssertStages(oldID, "AWSPREVIOUS")
			_, cur := f.Current()
			f.mustLogIn(cur, "AWSCURRENT")
			f.mustLogIn(oldVal, "AWSPREVIOUS (one generation of overlap)")
			if !strings.Contains(f.EMF.String(), `"RotationSucceeded":1`) {
				t.Errorf("no RotationSucceeded metric")
			}
			f.assertNoLeak()
		})
	}
}

func TestTokenTwoGenerationsOldIsRevoked(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			f := newFixture(t, k.source)
			v0, val0 := f.Current()
			v1 := f.Rotate()
			v2 := f.Rotate()
			toks := f.tokens()
			if _, ok := toks[v0]; ok || len(toks) != 2 || toks[v1].ID == 0 || toks[v2].ID == 0 {
				t.Fatalf("want exactly the current and previous tokens live, have %v", toks)
			}
			for _, tk := range f.emu.Tokens() {
				if v, _ := ptcsecret.VersionFromLabel(f.Key, tk.Name); v == v0 && !tk.Revoked {
					t.Fatal("the token two generations old is not revoked in GitLab")
				}
			}
			if labels := f.apiLabels(); len(labels) != 2 || slices.Contains(labels, ptcsecret.Label(f.Key, v0)) {
				t.Fatalf("the API still offers the old token: %v", labels)
			}
			if err := f.loginErr(val0); !errors.Is(err, registryauth.ErrBadCredentials) {
				t.Fatalf("the revoked token still logs in (err=%v)", err)
			}
			f.mustLogIn(f.Value(v1), "AWSPREVIOUS")
			f.mustLogIn(f.Value(v2), "AWSCURRENT")
			if !strings.Contains(f.EMF.String(), `"TokensRevoked":1`) {
				t.Errorf("no TokensRevoked metric")
			}
			f.assertNoLeak()
		})
	}
}

func TestEveryStepTwiceChangesNothing(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			f := newFixture(t, k.source)
			oldID, _ := f.Current()
			f.Rotate() // so that finishSecret has a token to revoke, twice
			prevID, _ := f.Current()
			token := f.Begin()
			var pending ptcsecret.Value
			for i, s := range rotationtest.Steps {
				var after string
				for run := 1; run <= 2; run++ {
					// A retry may land in a fresh environment: a new Rotator each time.
					if err := f.Step(s, token); err != nil {
						t.Fatalf("%s run %d: %v", s, run, err)
					}
					now := fmt.Sprint(rotationtest.SortedStages(f.Stages()), len(f.tokens()))
					if run == 1 {
						after = now
						if i == 0 {
							pending = f.Value(token)
						}
					} else if now != after {
						t.Fatalf("%s run twice changed state: %s then %s", s, after, now)
					}
				}
			}
			if f.Value(token).AccessToken != pending.AccessToken {
				t.Fatal("the pending value changed between runs")
			}
			toks := f.tokens()
			if _, ok := toks[oldID]; ok || len(toks) != 2 {
				t.Fatalf("want the current and previous tokens only, have %d", len(toks))
			}
			f.AssertStages(prevID, "AWSPREVIOUS")
			_, cur := f.Current()
			f.mustLogIn(cur, "AWSCURRENT")
			f.assertNoLeak()
		})
	}
}

func TestTestSecretOnlyPassesWithoutMinting(t *testing.T) {
	f := newFixture(t, kinds[0].source)
	before := len(f.emu.Tokens())
	f.emu.ResetCalls()
	f.EnableRotation() // RotateSecret(RotateImmediately=false) again
	if after := len(f.emu.Tokens()); after != before {
		t.Fatalf("testSecret-only rotation minted: %d tokens before, %d after", before, after)
	}
	for _, c := range f.emu.Calls() {
		if strings.HasPrefix(c.Path, "/api/") {
			t.Errorf("testSecret called the token API: %s %s", c.Method, c.Path)
		}
	}
}

func TestCrashBetweenMintAndPutLeavesNoOrphan(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			f := newFixture(t, k.source)
			curID, cur := f.Current()
			token := f.Begin()
			crashing := f.Rotator()
			crashing.SM = rotationtest.CrashingSM{SecretsManager: f.SM}
			if err := f.StepWith(crashing, rotation.CreateSecret, token); err == nil {
				t.Fatal("the crashing createSecret reported success")
			}
			orphan, ok := f.tokens()[token]
			if !ok {
				t.Fatal("the crash did not leave an orphan token to clean up")
			}
			if id, _ := f.Current(); id != curID {
				t.Fatal("AWSCURRENT moved")
			}
			f.mustLogIn(cur, "AWSCURRENT after the crash")

			// Secrets Manager retries the rotation from createSecret in a new environment.
			r := f.Rotator()
			for _, s := range rotationtest.Steps {
				if err := f.StepWith(r, s, token); err != nil {
					t.Fatalf("retry %s: %v", s, err)
				}
			}
			toks := f.tokens()
			if toks[token].ID == orphan.ID || len(toks) != 2 {
				t.Fatalf("the orphan survived or extra tokens are live: %v", toks)
			}
			for _, tk := range f.emu.Tokens() {
				if tk.ID == orphan.ID && !tk.Revoked {
					t.Fatal("the orphan token is still live in GitLab")
				}
			}
			if err := f.loginErr(ptcsecret.Value{Username: orphan.Name, AccessToken: orphan.Secret}); !errors.Is(err, registryauth.ErrBadCredentials) {
				t.Fatalf("the orphan still logs in: %v", err)
			}
			_, now := f.Current()
			f.mustLogIn(now, "AWSCURRENT after the retry")
			if !strings.Contains(f.Logs.String(), "revoked token left by an earlier attempt") {
				t.Error("the orphan's revocation was not logged")
			}
			f.assertNoLeak()
		})
	}
}

// TestFailuresLeaveCurrentWorking breaks one thing per case: the step fails with an error that
// says what to fix, AWSCURRENT stays and still logs in, nothing secret leaks.
func TestFailuresLeaveCurrentWorking(t *testing.T) {
	for _, tc := range []struct {
		name   string
		step   rotation.Step
		before func(f *fixture, token string)
		want   []string
		is     error
	}{
		{name: "source secret is not JSON", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.putSourceRaw(`{"token": "glpat-PLANTED-broken-json`)
		}, want: []string{"gitlab-container-registry source secret: not valid JSON"}},
		{name: "both groupId and projectId", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.putSource(map[string]any{"projectId": 31})
		}, want: []string{`either "groupId" or "projectId", not both`}},
		{name: "owner token without rights (a Developer's)", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.putSource(map[string]any{"token": devToken})
		}, want: []string{`GitLab refused the source token: check field "token" (an Owner's token with the api scope)`, "not an Owner of the group"}},
		{name: "owner token without the api scope (403)", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.putSource(map[string]any{"token": readToken})
			// read_api may list tokens; creating one needs api.
		}, want: []string{"HTTP 403", "needs the api scope", "must be an Owner of the group", "Premium/Ultimate on GitLab.com"}},
		{name: "source token revoked", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.putSource(map[string]any{"token": "glpat-PLANTED-revoked-owner"})
		}, want: []string{"HTTP 401", `check field "token"`}},
		{name: "group not found", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.putSource(map[string]any{"groupId": "acme-typo", "checkRepository": nil})
		}, want: []string{`group not found: check field "groupId"`}},
		{name: "GitLab down while minting", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.emu.Inject("POST", "/api/v4/groups/", 503, 1)
		}, want: []string{"create group access token: HTTP 503"}},
		{name: "a Guest token cannot pull the private project", step: rotation.TestSecret, before: func(f *fixture, token string) {
			f.putSource(map[string]any{"accessLevel": 10})
			f.runSteps(token, rotation.CreateSecret, rotation.SetSecret)
		}, want: []string{"cannot log in to the gitlab-container-registry registry", `granted no pull on "acme/platform/app"`, `raise field "accessLevel"`}, is: registryauth.ErrBadCredentials},
		{name: "pending token revoked before testSecret", step: rotation.TestSecret, before: func(f *fixture, token string) {
			f.runSteps(token, rotation.CreateSecret, rotation.SetSecret)
			if err := f.Upstream().Revoke(f.Ctx, upstream.Token{ID: fmt.Sprint(f.tokens()[token].ID)}); err != nil {
				f.t.Fatal(err)
			}
		}, want: []string{"cannot log in to the gitlab-container-registry registry"}, is: registryauth.ErrBadCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, kinds[0].source)
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
			f.mustLogIn(cur, "AWSCURRENT")
			if tc.step == rotation.CreateSecret {
				if _, ok := f.tokens()[token]; ok {
					t.Error("a token was minted for the failed version")
				}
			}
			f.assertNoLeak()
			f.AssertNoLeak("glpat-PLANTED-broken-json", "glpat-PLANTED-revoked-owner")
		})
	}
}

// TestUpstreamCallsPerRotation counts what one full rotation asks of GitLab (budget: 6).
func TestUpstreamCallsPerRotation(t *testing.T) {
	f := newFixture(t, kinds[0].source)
	for i, want := range []int{5, 6} { // the first rotation has nothing two generations old to revoke
		f.emu.ResetCalls()
		f.Rotate()
		calls := f.emu.Calls()
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
