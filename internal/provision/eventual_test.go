package provision_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// sleeps records the provisioner's waits instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) Sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

// withLaggingECR points the env's provisioner at an ECR emulator that sees a new secret only
// after lag reads of it (ecremu.Options.SecretLagReads; it checks the secret, not the upstream
// login, which the default env covers), and injects a recording sleep.
func withLaggingECR(t *testing.T, e *env, lag int, skipWriteCheck bool) *sleeps {
	t.Helper()
	e.ecrSrv = ecremu.New(ecremu.Options{SecretsManager: e.sm, SecretLagReads: lag, SkipSecretCheckOnWrite: skipWriteCheck})
	hs := httptest.NewServer(e.ecrSrv)
	t.Cleanup(hs.Close)
	e.ecr = ecr.NewFromConfig(testenv.AWSConfig(), func(o *ecr.Options) {
		o.BaseEndpoint = aws.String(hs.URL)
		o.RetryMaxAttempts = 1
	})
	e.prov.ECR = e.ecr
	s := &sleeps{}
	e.prov.Sleep = s.Sleep
	return s
}

func count(calls []string, op string) int {
	n := 0
	for _, c := range calls {
		if c == op {
			n++
		}
	}
	return n
}

// TestCreateWaitsForECRToSeeTheNewSecret: CreatePullThroughCacheRule right after CreateSecret
// answers SecretNotFoundException while the secret propagates; Create retries it with growing
// waits (injected, none real) and succeeds with everything in place.
func TestCreateWaitsForECRToSeeTheNewSecret(t *testing.T) {
	e := newEnv(t)
	s := withLaggingECR(t, e, 3, false)
	prefix := newPrefix()
	name := ptcsecret.Prefix + prefix
	res := e.mustDo("Create", "", e.props(prefix), nil)
	if res.PhysicalID != provision.PhysicalID(prefix, name) {
		t.Fatalf("physical id %q", res.PhysicalID)
	}
	if e.rule(prefix) == nil || e.secret(name) == nil {
		t.Fatal("rule or secret missing after Create")
	}
	if n := count(e.ecrSrv.Calls(), ecremu.OpCreate); n != 4 {
		t.Errorf("CreatePullThroughCacheRule called %d times, want 4 (3 refused while the secret propagated)", n)
	}
	if got, want := s.all(), []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	if !strings.Contains(e.logs.String(), "ECR does not see the new secret yet") {
		t.Error("the wait is not logged")
	}
	e.mustLogIn(e.current(name))
	e.mustDo("Delete", res.PhysicalID, e.props(prefix), nil)
	e.assertGone(prefix, name)
	e.assertNoLeak()
}

// TestValidateWaitsForECRToReadTheNewSecret: a rule ECR accepted (no read on write here) whose
// validation first says the secret is not found is validated again, not failed.
func TestValidateWaitsForECRToReadTheNewSecret(t *testing.T) {
	e := newEnv(t)
	s := withLaggingECR(t, e, 2, true)
	prefix := newPrefix()
	res := e.mustDo("Create", "", e.props(prefix), nil)
	if n := count(e.ecrSrv.Calls(), ecremu.OpValidate); n != 3 {
		t.Errorf("ValidatePullThroughCacheRule called %d times, want 3", n)
	}
	if got := s.all(); len(got) != 2 {
		t.Errorf("waits %v, want 2", got)
	}
	e.mustDo("Delete", res.PhysicalID, e.props(prefix), nil)
	e.assertNoLeak()
}

// TestCreateFailsClearlyWhenECRNeverSeesTheSecret: when the secret never becomes visible, the
// waits stop at the budget and Create fails with a reason that says what happened and what to
// do, and everything it made is removed.
func TestCreateFailsClearlyWhenECRNeverSeesTheSecret(t *testing.T) {
	e := newEnv(t)
	s := withLaggingECR(t, e, -1, false)
	prefix := newPrefix()
	_, err := e.do("Create", "", e.props(prefix), nil)
	if err == nil {
		t.Fatal("Create succeeded although ECR never saw the secret")
	}
	for _, w := range []string{"ECR still did not see secret", "SecretNotFoundException", "retry the stack operation", "everything this request created was removed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	var total time.Duration
	for _, d := range s.all() {
		total += d
		if d > provision.SecretWaitMax {
			t.Errorf("wait %s over the cap %s", d, provision.SecretWaitMax)
		}
	}
	if total > provision.SecretWaitBudget || len(s.all()) < 3 {
		t.Errorf("waited %s in %d waits; want several, at most %s", total, len(s.all()), provision.SecretWaitBudget)
	}
	e.assertGone(prefix, ptcsecret.Prefix+prefix)
	e.mustDo("Delete", "failed-create-"+rotationtest.NewID(), e.props(prefix), nil)
	e.assertNoLeak()
}

// TestValidateFailsClearlyWhenECRNeverReadsTheSecret: the same for validation; an upstream
// login refusal, by contrast, is not retried (TestCreateFailureAtEachStepLeavesNothing).
func TestValidateFailsClearlyWhenECRNeverReadsTheSecret(t *testing.T) {
	e := newEnv(t)
	withLaggingECR(t, e, -1, true)
	prefix := newPrefix()
	_, err := e.do("Create", "", e.props(prefix), nil)
	if err == nil {
		t.Fatal("Create succeeded although ECR never read the secret")
	}
	for _, w := range []string{"ECR could not use the new credential", "still could not read the secret", "SecretNotFoundException", "everything this request created was removed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	e.assertGone(prefix, ptcsecret.Prefix+prefix)
	e.assertNoLeak()
}

// TestRefusedLoginIsNotWaitedFor: a validation failure that is not about the secret fails at
// once, with no wait.
func TestRefusedLoginIsNotWaitedFor(t *testing.T) {
	e := newEnv(t)
	s := &sleeps{}
	e.prov.Sleep = s.Sleep
	e.verifyErr = errLogin("upstream login refused")
	_, err := e.do("Create", "", e.props(newPrefix()), nil)
	if err == nil || !strings.Contains(err.Error(), "upstream login refused") {
		t.Fatalf("Create: %v", err)
	}
	if n := count(e.ecrSrv.Calls(), ecremu.OpValidate); n != 1 || len(s.all()) != 0 {
		t.Errorf("validated %d times with waits %v; a refused login must not be retried", n, s.all())
	}
}

type errLogin string

func (e errLogin) Error() string { return string(e) }
