package rotation_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

func TestMalformedEventsAreRefusedByName(t *testing.T) {
	r := &rotation.Rotator{SM: moto.SecretsManager()}
	good := rotationtest.NewID()
	for _, tc := range []struct {
		name string
		ev   rotation.Event
		want string
	}{
		{"no step", rotation.Event{SecretID: "x", ClientRequestToken: good}, `field "Step" is missing`},
		{"unknown step", rotation.Event{Step: "deleteSecret", SecretID: "x", ClientRequestToken: good}, `field "Step" is "deleteSecret"`},
		{"no secret id", rotation.Event{Step: rotation.CreateSecret, ClientRequestToken: good}, `field "SecretId" is missing`},
		{"short token", rotation.Event{Step: rotation.CreateSecret, SecretID: "x", ClientRequestToken: "abc"}, `field "ClientRequestToken" must be 32 to 64 characters`},
		{"long token", rotation.Event{Step: rotation.CreateSecret, SecretID: "x", ClientRequestToken: strings.Repeat("a", 65)}, `field "ClientRequestToken"`},
		{"unknown secret", rotation.Event{Step: rotation.CreateSecret, SecretID: "ecr-pullthroughcache/nope-" + good[:8], ClientRequestToken: good}, "describing secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Handle(testenv.Context(t), tc.ev)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestMisconfiguredSecretsAreRefused covers the guards that run before any step.
func TestMisconfiguredSecretsAreRefused(t *testing.T) {
	type setup func(f *fixture) (secretID, token string)
	withTags := func(name string, tags func(f *fixture) []smtypes.Tag, rotate bool) setup {
		return func(f *fixture) (string, string) {
			v0 := newID()
			out, err := f.sm.CreateSecret(f.ctx, &secretsmanager.CreateSecretInput{
				Name: aws.String(name + "-" + v0[:8]), ClientRequestToken: aws.String(v0),
				SecretString: aws.String(`{"username":"u","accessToken":"PLANTED-token-in-misconfigured"}`), Tags: tags(f),
			})
			if err != nil {
				f.t.Fatal(err)
			}
			token := newID()
			if rotate {
				if err := testenv.BeginRotation(f.ctx, f.sm, aws.ToString(out.ARN), token, true); err != nil {
					f.t.Fatal(err)
				}
			}
			return aws.ToString(out.ARN), token
		}
	}
	tag := func(k, v string) smtypes.Tag { return smtypes.Tag{Key: aws.String(k), Value: aws.String(v)} }
	for _, tc := range []struct {
		name  string
		setup setup
		want  string
	}{
		{"outside the prefix", withTags("plain/hub", func(f *fixture) []smtypes.Tag {
			return []smtypes.Tag{tag(ptcsecret.TagUpstream, "docker-hub"), tag(ptcsecret.TagSourceSecret, f.SourceARN)}
		}, true), `must start with "ecr-pullthroughcache/"`},
		{"no upstream tag", withTags("ecr-pullthroughcache/notag", func(f *fixture) []smtypes.Tag {
			return []smtypes.Tag{tag(ptcsecret.TagSourceSecret, f.SourceARN)}
		}, true), "has no tag ptc:upstream"},
		{"unknown upstream", withTags("ecr-pullthroughcache/quay", func(f *fixture) []smtypes.Tag {
			return []smtypes.Tag{tag(ptcsecret.TagUpstream, "quay"), tag(ptcsecret.TagSourceSecret, f.SourceARN)}
		}, true), `tag ptc:upstream is "quay"; supported: docker-hub`},
		{"no source tag", withTags("ecr-pullthroughcache/nosource", func(f *fixture) []smtypes.Tag {
			return []smtypes.Tag{tag(ptcsecret.TagUpstream, "docker-hub")}
		}, true), "has no tag ptc:source-secret"},
		{"source inside the prefix", withTags("ecr-pullthroughcache/badsource", func(f *fixture) []smtypes.Tag {
			return []smtypes.Tag{tag(ptcsecret.TagUpstream, "docker-hub"), tag(ptcsecret.TagSourceSecret, "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/src-AbCdEf")}
		}, true), "which ECR's service role can read"},
		{"rotation not enabled", withTags("ecr-pullthroughcache/norotation", func(f *fixture) []smtypes.Tag {
			return []smtypes.Tag{tag(ptcsecret.TagUpstream, "docker-hub"), tag(ptcsecret.TagSourceSecret, f.SourceARN)}
		}, false), "does not have rotation enabled"},
		{"token is not a version", func(f *fixture) (string, string) { return f.arn, newID() }, "has no version"},
		{"version is not pending", func(f *fixture) (string, string) {
			f.rotate()
			return f.arn, testenv.VersionWith(f.stages(), "AWSPREVIOUS")
		}, "is not AWSPENDING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			curID, cur := f.current()
			id, token := tc.setup(f)
			for _, s := range rotationtest.Steps {
				err := f.Rotator().Handle(f.ctx, rotation.Event{Step: s, SecretID: id, ClientRequestToken: token})
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%s: got %v, want an error containing %q", s, err, tc.want)
				}
				f.Errs = append(f.Errs, err)
			}
			if id == f.arn {
				if now, _ := f.current(); now != curID && tc.name != "version is not pending" {
					t.Fatal("AWSCURRENT moved")
				}
			}
			f.mustLogIn(cur, "AWSCURRENT")
			f.AssertNoLeak(hubPassword, "PLANTED-token-in-misconfigured", cur.AccessToken)
		})
	}
}

// TestFailuresLeaveCurrentWorking injects a failure into one step and checks the error names
// the problem, AWSCURRENT is untouched and still logs in, and nothing secret leaks.
func TestFailuresLeaveCurrentWorking(t *testing.T) {
	for _, tc := range []struct {
		name   string
		step   rotation.Step
		before func(f *fixture, token string)
		ctx    func(ctx context.Context) (context.Context, context.CancelFunc)
		// instantWaits makes the upstream's retry waits return at once: the step then decides
		// on its retries against the deadline as always, without spending the time.
		instantWaits bool
		want         []string
		is           error
	}{
		{name: "source secret is not JSON", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.putSource(`{"username": "ptc-hub-user", "password": PLANTED-broken`)
		}, want: []string{"docker-hub source secret: not valid JSON"}},
		{name: "source secret lacks password", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.putSource(`{"username": "ptc-hub-user", "apiUrl": "` + f.hubURL + `"}`)
		}, want: []string{`field "password" is required`}},
		{name: "upstream 401: password changed", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.hub.SetPassword(hubUser, "PLANTED-new-password-not-in-source")
		}, want: []string{`refused the source secret's username/password`, `"username" and "password"`}},
		{name: "upstream 403: a PAT as the source password", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			_, cur := f.current()
			f.putSource(`{"username": "ptc-hub-user", "password": "` + cur.AccessToken + `", "apiUrl": "` + f.hubURL + `"}`)
		}, want: []string{"personal access token", "store the account password"}},
		// The backoff doubles to 8 s, which cannot fit in a 5 s deadline: with instant waits the
		// step reaches that verdict in a few requests, so a busy machine cannot spend the
		// deadline first (it did with real waits and a 1.5 s deadline).
		{name: "upstream 429 beyond the deadline", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.hub.Inject("POST", "/v2/access-tokens", 429, 100)
		}, ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 5*time.Second)
		}, instantWaits: true, want: []string{"HTTP 429", "does not fit in the time left"}},
		{name: "upstream 500 on create", step: rotation.CreateSecret, before: func(f *fixture, _ string) {
			f.hub.Inject("POST", "/v2/access-tokens", 500, 1)
		}, want: []string{"create access token: HTTP 500"}},
		{name: "pending token revoked before testSecret", step: rotation.TestSecret, before: func(f *fixture, token string) {
			f.runSteps(token, rotation.CreateSecret, rotation.SetSecret)
			id := f.tokens()[token].ID
			if err := f.Upstream().Revoke(f.ctx, upstream.Token{ID: id}); err != nil {
				f.t.Fatal(err)
			}
		}, want: []string{"cannot log in to the docker-hub registry"}, is: registryauth.ErrBadCredentials},
		{name: "pending identity changed", step: rotation.SetSecret, before: func(f *fixture, token string) {
			f.putPending(token, `{"username":"someone-else","accessToken":"PLANTED-foreign-token"}`)
		}, want: []string{`logs in as "someone-else" but AWSCURRENT as "ptc-hub-user"`}},
		{name: "pending value is not the ECR document", step: rotation.TestSecret, before: func(f *fixture, token string) {
			f.putPending(token, `{"user":"x","token":"PLANTED-wrong-shape"}`)
		}, want: []string{`field "username" is missing`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			curID, cur := f.current()
			token := f.Begin()
			tc.before(f, token)
			ctx := f.ctx
			if tc.ctx != nil {
				var cancel context.CancelFunc
				ctx, cancel = tc.ctx(ctx)
				defer cancel()
			}
			r := f.Rotator()
			if tc.instantWaits {
				for name, p := range r.Providers {
					r.Providers[name] = instantWaits(p)
				}
			}
			err := r.Handle(ctx, rotation.Event{Step: tc.step, SecretID: f.arn, ClientRequestToken: token})
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
			if id, v := f.current(); id != curID || v.AccessToken != cur.AccessToken {
				t.Fatal("AWSCURRENT changed")
			}
			f.mustLogIn(cur, "AWSCURRENT")
			if !strings.Contains(f.logsText(), `"outcome":"error"`) || !strings.Contains(f.emfText(), "RotationStepFailed") {
				t.Error("the failure was not logged and counted")
			}
			planted := []string{hubPassword, "PLANTED-new-password-not-in-source", "PLANTED-broken", "PLANTED-foreign-token", "PLANTED-wrong-shape"}
			for _, tk := range f.hub.Tokens() {
				planted = append(planted, tk.Secret)
			}
			f.AssertNoLeak(planted...)
		})
	}
}

func TestRevocationFailureIsCountedNotFatal(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	v0, _ := f.current()
	f.rotate()
	token := f.Begin()
	f.runSteps(token, rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret)
	f.hub.Inject("DELETE", "/v2/access-tokens/", 500, 100)
	if err := f.Step(rotation.FinishSecret, token); err != nil {
		t.Fatalf("a failed revocation failed the step: %v", err)
	}
	if id, _ := f.current(); id != token {
		t.Fatal("the new version was not promoted")
	}
	if _, ok := f.tokens()[v0]; !ok {
		t.Fatal("the token was revoked despite the injected failure")
	}
	if !strings.Contains(f.emfText(), `"RevocationFailed":1`) || !strings.Contains(f.logsText(), "the next rotation will retry") {
		t.Fatal("the failed revocation was not counted and logged")
	}
	// The next rotation retries it.
	f.clearFaults()
	f.rotate()
	if _, ok := f.tokens()[v0]; ok {
		t.Fatal("the next rotation did not revoke the leftover token")
	}
	if n := len(f.tokens()); n != 2 {
		t.Fatalf("want 2 tokens, have %d", n)
	}
}

func (f *fixture) putSource(doc string) {
	f.t.Helper()
	doc = rotationtest.BindSource(doc, f.Name) // the owner keeps allowing this managed secret
	if _, err := f.sm.PutSecretValue(f.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(f.SourceARN), SecretString: aws.String(doc)}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) putPending(token, doc string) {
	f.t.Helper()
	if _, err := f.sm.PutSecretValue(f.ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(f.arn), ClientRequestToken: aws.String(token), SecretString: aws.String(doc), VersionStages: []string{"AWSPENDING"},
	}); err != nil {
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

func (f *fixture) clearFaults() { f.hub.ClearFaults() }

// instantWaits wraps a provider so its upstreams' retry waits return at once (unless ctx is
// done): the retry decisions stay the product's, only the waiting is skipped.
func instantWaits(p upstream.Provider) upstream.Provider {
	inner := p.New
	p.New = func(src []byte, o upstream.Options) (upstream.Upstream, error) {
		o.Sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
		return inner(src, o)
	}
	return p
}
