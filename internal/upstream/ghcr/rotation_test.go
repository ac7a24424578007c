package ghcr_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ghcremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/ghcr"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// owner is the GitHub user of the descriptor's emulator, whose PATs a person stages.
const owner = registries.GHCRUser

// checkRepo is the default login-check repository for owner (lower-cased namespace).
var checkRepo = strings.ToLower(owner) + "/" + ghcr.DefaultCheckImage

// verifyCalls are what verifying a staged PAT asks of GitHub: the API, then the registry.
var verifyCalls = []string{"/user", "/v2/", "/token"}

// paths renders calls as their paths.
func paths(calls []emukit.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Path)
	}
	return out
}

// TestConformance runs the shared rotation suite against the GitHub emulator and moto. Nothing
// is minted: before each rotation the suite stages the next PAT as a person would. GHCR's own
// fact as a hook: verifying asks GET /user, GET /v2/, GET /token and nothing else.
func TestConformance(t *testing.T) {
	upstreamtest.Run(t, moto, registries.GHCR, upstreamtest.Options{
		AfterRotation: func(f *upstreamtest.Fixture, r upstreamtest.Rotation) {
			for _, c := range r.Calls {
				f.T.Logf("  %s %s auth=%s -> %d", c.Method, c.Path, c.Auth, c.Status)
			}
			if !slices.Equal(paths(r.Calls), verifyCalls) {
				f.T.Errorf("want GET /user, GET /v2/, GET /token; got %+v", r.Calls)
			}
		},
		AfterTestSecretOnly: func(f *upstreamtest.Fixture, calls []emukit.Call) {
			if !slices.Equal(paths(calls), verifyCalls) {
				f.T.Errorf("testSecret made calls %v, want %v", paths(calls), verifyCalls)
			}
		},
	})
}

// fixture is one managed secret holding PATs of the descriptor's GitHub emulator.
type fixture struct {
	*upstreamtest.Fixture
	t   *testing.T
	emu *ghcremu.Server
	url string
}

// pat returns a fresh classic PAT for owner with the given scopes and lifetime (0: never
// expires), registered in the emulator as a person creating it in GitHub's settings would.
func (f *fixture) pat(scopes []string, lifetime time.Duration) ghcremu.Token {
	t := ghcremu.Token{Value: "ghp_PLANTED" + strings.ReplaceAll(rotationtest.NewID(), "-", "")[:29], User: owner, Scopes: scopes}
	if lifetime > 0 {
		// The rotator reads the wall clock, so the emulator does too (its default).
		t.ExpiresAt = time.Now().Add(lifetime).UTC().Truncate(time.Second)
	}
	f.emu.AddToken(t)
	return t
}

// newFixture returns the fixture and the PAT the first version holds (read:packages, 90 days).
func newFixture(t *testing.T) (*fixture, ghcremu.Token) {
	t.Helper()
	uf := upstreamtest.New(t, moto, registries.GHCR, upstreamtest.Options{})
	f := &fixture{Fixture: uf, t: t, emu: uf.E.GHCR, url: uf.E.URL}
	return f, f.emu.Tokens()[0]
}

func (f *fixture) sourceJSON(token string) string {
	b, _ := json.Marshal(map[string]string{"username": owner, "token": token, "apiUrl": f.url})
	return string(b)
}

// stage is what a person does: put the next PAT into the source secret.
func (f *fixture) stage(doc string) { f.t.Helper(); f.Stage(doc) }

func (f *fixture) mustLogIn(v ptcsecret.Value, what string) { f.t.Helper(); f.MustLogIn(v, what) }

// assertNoLeak scans for every PAT and registry token the emulator knows and f.Planted.
func (f *fixture) assertNoLeak() { f.t.Helper(); f.ScanLeaks() }

// assertNothingRevoked: GHCR tokens belong to a person; the rotator must never revoke one.
func (f *fixture) assertNothingRevoked() {
	f.t.Helper()
	for _, t := range f.emu.Tokens() {
		if t.Revoked {
			f.t.Fatalf("a token of %s was revoked", t.User)
		}
	}
}

// logRecords returns the captured JSON log records whose msg is msg.
func (f *fixture) logRecords(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(f.Logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// daysToExpiry returns every TokenDaysToExpiry value the EMF records carry for this secret.
func (f *fixture) daysToExpiry() []float64 {
	var out []float64
	for _, line := range strings.Split(f.EMF.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if v, ok := rec["TokenDaysToExpiry"].(float64); ok && rec["Upstream"] == ptcsecret.UpstreamGHCR && rec["secret"] == f.Name {
			out = append(out, v)
		}
	}
	return out
}

// TestStagedPATExpiryIsReported: a person stages a PAT with more scopes than needed and 60
// days to live; the rotation (the suite covers its stages step by step) promotes it with three
// calls to GitHub, logs its expiry and emits TokenDaysToExpiry ≈ 60, says nothing was minted,
// and revokes nothing.
func TestStagedPATExpiryIsReported(t *testing.T) {
	f, first := newFixture(t)
	oldID, oldVal := f.Current()
	if oldVal.AccessToken != first.Value || oldVal.Username != owner {
		t.Fatal("the first version does not hold the source secret's token")
	}
	next := f.pat([]string{"read:packages", "repo"}, 60*24*time.Hour)
	f.stage(f.sourceJSON(next.Value))

	f.emu.ResetCalls()
	token := f.Rotate()
	calls := f.emu.Calls()
	t.Logf("upstream calls in one full rotation: %d", len(calls))
	for _, c := range calls {
		t.Logf("  %s %s auth=%s -> %d", c.Method, c.Path, c.Auth, c.Status)
	}
	if !slices.Equal(paths(calls), verifyCalls) {
		t.Errorf("want GET /user, GET /v2/, GET /token; got %+v", calls)
	}
	st := f.Stages()
	if !slices.Contains(st[token], "AWSCURRENT") || !slices.Contains(st[oldID], "AWSPREVIOUS") {
		t.Fatalf("after the rotation: stages %v", st)
	}
	curID, cur := f.Current()
	if curID != token || cur.AccessToken != next.Value || cur.Username != owner {
		t.Fatalf("AWSCURRENT is version %s, want %s holding the staged PAT", curID, token)
	}
	if prev := f.Value(oldID); prev.AccessToken != first.Value {
		t.Fatal("AWSPREVIOUS does not hold the old PAT")
	}
	f.mustLogIn(cur, "AWSCURRENT")
	f.mustLogIn(oldVal, "AWSPREVIOUS (GHCR revokes nothing, so the overlap is the person's to end)")
	f.assertNothingRevoked()

	// The expiry GitHub announced is in the logs and the EMF metric.
	var found bool
	for _, rec := range f.logRecords("pending token verified") {
		if rec["version_id"] == token && rec["expires_at"] == next.ExpiresAt.Format(time.RFC3339) {
			found = true
			if d, _ := rec["days_to_expiry"].(float64); d < 59 || d > 60 {
				t.Errorf("days_to_expiry %v, want 59 or 60", rec["days_to_expiry"])
			}
		}
	}
	if !found {
		t.Errorf("no log of the staged PAT's expiry %s in:\n%s", next.ExpiresAt.Format(time.RFC3339), f.Logs.String())
	}
	days := f.daysToExpiry()
	if len(days) == 0 || days[len(days)-1] < 59.9 || days[len(days)-1] > 60 {
		t.Errorf("TokenDaysToExpiry records %v, want the last ≈ 60", days)
	}
	if !strings.Contains(f.EMF.String(), `"RotationSucceeded":1`) {
		t.Error("no RotationSucceeded metric")
	}
	if len(f.logRecords("GHCR tokens cannot be minted; staging the token a person put in the source secret")) == 0 {
		t.Error("createSecret did not say that nothing was minted")
	}
	f.assertNoLeak()
}

func TestStagedTokenAlreadyCurrentIsReverified(t *testing.T) {
	// When the staged token is the one already current, the rotation re-verifies it and
	// reports its expiry instead of failing.
	f, first := newFixture(t)
	oldID, _ := f.Current()
	emfBefore := len(f.daysToExpiry())
	token := f.Rotate()

	st := f.Stages()
	if !slices.Contains(st[token], "AWSCURRENT") || !slices.Contains(st[oldID], "AWSPREVIOUS") {
		t.Fatalf("stages %v", st)
	}
	_, cur := f.Current()
	if cur.AccessToken != first.Value || f.Value(oldID).AccessToken != first.Value {
		t.Fatal("the same PAT is not in both AWSCURRENT and AWSPREVIOUS")
	}
	f.mustLogIn(cur, "AWSCURRENT")
	var reverified bool
	for _, rec := range f.logRecords("pending token verified") {
		if rec["version_id"] == token && rec["expires_at"] == first.ExpiresAt.Format(time.RFC3339) {
			reverified = true
		}
	}
	if !reverified {
		t.Errorf("testSecret of the rotation did not report the expiry %s:\n%s", first.ExpiresAt.Format(time.RFC3339), f.Logs.String())
	}
	if days := f.daysToExpiry(); len(days) != emfBefore+1 || days[len(days)-1] < 89 {
		t.Errorf("TokenDaysToExpiry records %v (had %d before), want one more ≈ 90", days, emfBefore)
	}
	if strings.Contains(f.Logs.String(), `"level":"ERROR"`) {
		t.Errorf("a step logged an error:\n%s", f.Logs.String())
	}
	f.assertNothingRevoked()
	f.assertNoLeak()
}

func TestPATExpiringSoonWarns(t *testing.T) {
	f, _ := newFixture(t)
	soon := f.pat([]string{"read:packages"}, 7*24*time.Hour)
	f.stage(f.sourceJSON(soon.Value))
	token := f.Rotate()
	var warned bool
	for _, rec := range f.logRecords("the verified token expires soon: stage its successor") {
		if rec["level"] == "WARN" && rec["version_id"] == token && rec["expires_at"] == soon.ExpiresAt.Format(time.RFC3339) {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("no WARN for a PAT expiring in 7 days:\n%s", f.Logs.String())
	}
	days := f.daysToExpiry()
	if len(days) == 0 || days[len(days)-1] >= rotation.ExpiryWarningDays || days[len(days)-1] < 6.9 {
		t.Fatalf("TokenDaysToExpiry records %v, want the last ≈ 7 (below the %d-day alarm)", days, rotation.ExpiryWarningDays)
	}
	f.assertNoLeak()
}

func TestNeverExpiringPATEmitsNoExpiry(t *testing.T) {
	f, _ := newFixture(t)
	forever := f.pat([]string{"read:packages"}, 0)
	f.stage(f.sourceJSON(forever.Value))
	before := len(f.daysToExpiry())
	f.Rotate()
	if after := len(f.daysToExpiry()); after != before {
		t.Fatalf("a never-expiring PAT emitted TokenDaysToExpiry (%d records, had %d)", after, before)
	}
	if !strings.Contains(f.Logs.String(), "GitHub announces no expiry for the token: it never expires") {
		t.Fatalf("no log that the token never expires:\n%s", f.Logs.String())
	}
	f.assertNoLeak()
}

func TestPATLackingReadPackagesFailsTestSecret(t *testing.T) {
	f, _ := newFixture(t)
	curID, cur := f.Current()
	bad := f.pat([]string{"repo"}, 30*24*time.Hour)
	f.stage(f.sourceJSON(bad.Value))
	token := f.Begin()
	for _, s := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret} {
		if err := f.Step(s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	err := f.Step(rotation.TestSecret, token)
	if err == nil || !strings.Contains(err.Error(), "lacks read:packages") || !strings.Contains(err.Error(), "create a classic PAT with read:packages") {
		t.Fatalf("testSecret error %v, want one saying the token lacks read:packages", err)
	}
	if id, _ := f.Current(); id != curID {
		t.Fatal("AWSCURRENT moved")
	}
	f.mustLogIn(cur, "AWSCURRENT after the failed test")
	if !strings.Contains(f.EMF.String(), `"VerificationFailed":1`) {
		t.Error("no VerificationFailed metric")
	}
	f.assertNothingRevoked()
	f.assertNoLeak()
}

func TestRevokedStagedPATFailsTestSecret(t *testing.T) {
	f, _ := newFixture(t)
	curID, cur := f.Current()
	next := f.pat([]string{"read:packages"}, 30*24*time.Hour)
	f.stage(f.sourceJSON(next.Value))
	f.emu.Revoke(next.Value) // the person revoked it again, or it expired
	token := f.Begin()
	if err := f.Step(rotation.CreateSecret, token); err != nil {
		t.Fatal(err)
	}
	err := f.Step(rotation.TestSecret, token)
	if err == nil || !strings.Contains(err.Error(), "GitHub refused the token") {
		t.Fatalf("testSecret error %v", err)
	}
	if id, _ := f.Current(); id != curID {
		t.Fatal("AWSCURRENT moved")
	}
	f.mustLogIn(cur, "AWSCURRENT")
	f.assertNoLeak()
}

func TestFineGrainedPATRefusedAtCreateSecret(t *testing.T) {
	f, _ := newFixture(t)
	curID, cur := f.Current()
	fine := "github_pat_PLANTED" + strings.ReplaceAll(rotationtest.NewID(), "-", "")
	f.Planted = append(f.Planted, fine)
	f.stage(f.sourceJSON(fine))
	f.emu.ResetCalls()
	token := f.Begin()
	err := f.Step(rotation.CreateSecret, token)
	if err == nil || !strings.Contains(err.Error(), "fine-grained personal access token") {
		t.Fatalf("createSecret error %v", err)
	}
	if n := len(f.emu.Calls()); n != 0 {
		t.Fatalf("%d upstream calls for a fine-grained PAT", n)
	}
	if id, _ := f.Current(); id != curID {
		t.Fatal("AWSCURRENT moved")
	}
	if _, err := testenv.ValueOf(f.Ctx, f.SM, f.ARN, token); err == nil {
		t.Fatal("the pending version got a value")
	}
	f.mustLogIn(cur, "AWSCURRENT")
	f.assertNoLeak()
}

func TestBadSourceSecretLeavesCurrentAlone(t *testing.T) {
	f, _ := newFixture(t)
	curID, cur := f.Current()
	junk := "ghp_PLANTEDjunk" + strings.ReplaceAll(rotationtest.NewID(), "-", "")[:25]
	f.Planted = append(f.Planted, junk)
	for _, c := range []struct{ doc, want string }{
		{`{"username":"` + owner + `","tokn":"` + junk + `"}`, `unknown field "tokn"`},
		{`{"username":"` + owner + `","token":"` + junk, `not valid JSON`},
		{`{"token":"` + junk + `"}`, `field "username" is required`},
	} {
		f.stage(c.doc)
		token := f.Begin()
		err := f.Step(rotation.CreateSecret, token)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "source secret") {
			t.Fatalf("createSecret error %v, want one containing %q", err, c.want)
		}
		if id, _ := f.Current(); id != curID {
			t.Fatal("AWSCURRENT moved")
		}
		// Clear the failed attempt, as an operator would after fixing the source secret.
		if _, err := f.SM.UpdateSecretVersionStage(f.Ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(f.ARN), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(token),
		}); err != nil {
			t.Fatal(err)
		}
	}
	f.mustLogIn(cur, "AWSCURRENT")
	f.assertNoLeak()
}

func TestUsernameMayChangeWhenTheOwnerLeaves(t *testing.T) {
	f, _ := newFixture(t)
	_, old := f.Current()
	successor := ghcremu.Token{Value: "ghp_PLANTEDsuccessor" + strings.ReplaceAll(rotationtest.NewID(), "-", "")[:20], User: "octo-bot", Scopes: []string{"read:packages"}, ExpiresAt: time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)}
	f.emu.AddToken(successor)
	b, _ := json.Marshal(map[string]string{"username": "octo-bot", "token": successor.Value, "apiUrl": f.url, "checkRepository": checkRepo})
	f.emu.AddPackage(ghcremu.Package{Name: checkRepo, Readers: []string{"octo-bot"}})
	f.stage(string(b))
	f.Rotate()
	_, cur := f.Current()
	if cur.Username != "octo-bot" || cur.AccessToken != successor.Value {
		t.Fatalf("AWSCURRENT is %v", cur)
	}
	f.mustLogIn(cur, "AWSCURRENT of the new owner")
	f.mustLogIn(old, "AWSPREVIOUS of the old owner")
	f.assertNoLeak()
}

func TestNoLeakAcrossManyOutcomes(t *testing.T) {
	f, _ := newFixture(t)
	next := f.pat([]string{"read:packages"}, 10*24*time.Hour)
	f.stage(f.sourceJSON(next.Value))
	f.Rotate()
	f.Rotate() // same token again
	bad := f.pat([]string{"gist"}, 10*24*time.Hour)
	f.stage(f.sourceJSON(bad.Value))
	token := f.Begin()
	_ = f.Step(rotation.CreateSecret, token)
	if err := f.Step(rotation.TestSecret, token); err == nil {
		t.Fatal("a PAT without read:packages passed testSecret")
	}
	if len(f.Errs) == 0 || !strings.Contains(f.Logs.String(), "rotation step failed") {
		t.Fatal("the failure was not captured")
	}
	f.assertNoLeak()
}

// TestWarmEnvironmentSeesANewlyStagedPAT: one warm Lambda environment (one Rotator) runs two
// rotations back to back with a PAT staged in between. The second must promote the new PAT, not
// the one the environment read for the first rotation (a source-secret cache that outlived its
// rotation once did exactly that).
func TestWarmEnvironmentSeesANewlyStagedPAT(t *testing.T) {
	f, _ := newFixture(t)
	r := f.Rotator()
	rotateWith := func() string {
		t.Helper()
		token := f.Begin()
		for _, s := range rotationtest.Steps {
			if err := f.StepWith(r, s, token); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		return token
	}
	second := f.pat([]string{"read:packages"}, 60*24*time.Hour)
	f.stage(f.sourceJSON(second.Value))
	rotateWith()
	third := f.pat([]string{"read:packages"}, 60*24*time.Hour)
	f.stage(f.sourceJSON(third.Value))
	v := rotateWith()
	if cur := f.Value(v); cur.AccessToken != third.Value {
		t.Fatal("the warm environment promoted the PAT it had read for the previous rotation")
	}
	_, cur := f.Current()
	f.mustLogIn(cur, "AWSCURRENT")
	f.assertNoLeak()
}
