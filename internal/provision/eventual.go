package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// A secret Secrets Manager has just created is not at once visible to ECR's control plane:
// CreatePullThroughCacheRule right after CreateSecret fails now and then with
// SecretNotFoundException ("The ARN of the secret specified in the pull through cache rule was
// not found"; entigolabs/entigo-infralib#1645 works around it with a fixed 10 s sleep), and
// ValidatePullThroughCacheRule may answer isValid=false for the same reason. Both are retried
// with backoff, bounded by SecretWaitBudget and by the request's deadline.
const (
	// SecretWaitBudget is the most time spent waiting for ECR to see a new secret, per call.
	SecretWaitBudget = 60 * time.Second
	// SecretWaitFirst is the first wait; each next one doubles, up to SecretWaitMax.
	SecretWaitFirst = time.Second
	// SecretWaitMax caps one wait.
	SecretWaitMax = 10 * time.Second
	// SecretWaitMargin is left before the request's deadline for the steps after the wait
	// (validation, rotation, the response); a wait that would eat into it is not started.
	SecretWaitMargin = 15 * time.Second
)

// secretWait paces the retries of one call.
type secretWait struct {
	p       *Provisioner
	next    time.Duration
	waited  time.Duration
	attempt int
}

// again waits before the next attempt and reports whether there is one: false when the budget
// or the deadline does not allow another wait, or ctx ended.
func (w *secretWait) again(ctx context.Context) bool {
	w.attempt++
	if w.next == 0 {
		w.next = SecretWaitFirst
	}
	d := w.next
	if w.waited+d > SecretWaitBudget || ctx.Err() != nil {
		return false
	}
	// Deadlines are on the real clock (a context timer cannot use an injected one).
	if dl, ok := ctx.Deadline(); ok && time.Until(dl)-SecretWaitMargin < d {
		return false
	}
	sleep := kit.Sleep
	if w.p.Sleep != nil {
		sleep = w.p.Sleep
	}
	if sleep(ctx, d) != nil {
		return false
	}
	w.waited += d
	w.next = min(2*d, SecretWaitMax)
	return true
}

// createRule calls CreatePullThroughCacheRule, retrying while ECR does not see the new secret.
func (p *Provisioner) createRule(ctx context.Context, e ECR, in *ecr.CreatePullThroughCacheRuleInput) error {
	w := &secretWait{p: p}
	for {
		_, err := e.CreatePullThroughCacheRule(ctx, in)
		var nf *ecrtypes.SecretNotFoundException
		if err == nil || !errors.As(err, &nf) {
			return err
		}
		p.log().Info("ECR does not see the new secret yet; waiting before creating the rule again", "attempt", w.attempt+1, "wait", w.next.String())
		if !w.again(ctx) {
			return fmt.Errorf("ECR still did not see secret %s after %d attempts over %s (Secrets Manager is eventually consistent; retry the stack operation): %w",
				aws.ToString(in.CredentialArn), w.attempt, w.waited, err)
		}
	}
}

// secretNotVisible reports whether a validation failure says ECR could not find or read the
// secret, which a new secret's propagation explains, as opposed to a refused upstream login.
func secretNotVisible(failure string) bool {
	f := strings.ToLower(failure)
	for _, s := range []string{"secretnotfound", "unabletoaccesssecret", "secret not found", "unable to access the secret", "unable to access secret"} {
		if strings.Contains(f, s) {
			return true
		}
	}
	return false
}

// validateRule calls ValidatePullThroughCacheRule, retrying while its failure says ECR cannot
// find or read the secret yet. A refused upstream login is not retried. region is "" for the
// home Region, else the replica Region the error must name.
func (p *Provisioner) validateRule(ctx context.Context, e ECR, region, prefix string) error {
	w := &secretWait{p: p}
	for {
		v, err := e.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(prefix)})
		if err != nil {
			return fmt.Errorf("validating the pull-through cache rule for %q%s: %w", prefix, inRegion(region), err)
		}
		if v.IsValid {
			return nil
		}
		failure := kit.Truncate(aws.ToString(v.Failure), 500)
		if !secretNotVisible(failure) {
			return fmt.Errorf("ECR could not use the new credential%s: %s", inRegion(region), failure)
		}
		p.log().Info("ECR cannot read the new secret yet; waiting before validating again", "attempt", w.attempt+1, "wait", w.next.String())
		if !w.again(ctx) {
			return fmt.Errorf("ECR could not use the new credential%s: it still could not read the secret after %d attempts over %s (retry the stack operation; if it persists, check the secret uses the aws/secretsmanager key and has no resource policy denying ECR): %s",
				inRegion(region), w.attempt, w.waited, failure)
		}
	}
}

// inRegion is " in <region>" for a replica Region's message, "" for the home Region's.
func inRegion(region string) string {
	if region == "" {
		return ""
	}
	return " in " + region
}
