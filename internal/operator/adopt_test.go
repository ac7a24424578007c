package operator_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/operator"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

func (w *world) tags(arn string) map[string]string {
	w.t.Helper()
	d, err := w.sm.DescribeSecret(w.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		w.t.Fatal(err)
	}
	m := map[string]string{}
	for _, t := range d.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// boundTo returns the emulator's source secret JSON with allowedSecrets set to names.
func (w *world) boundTo(names ...string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(w.hub.Source(0)), &m); err != nil {
		w.t.Fatal(err)
	}
	m[upstream.BindingField] = names
	b, _ := json.Marshal(m)
	return string(b)
}

func (w *world) adopt(o operator.AdoptOptions) (string, bool) {
	w.t.Helper()
	w.out.Reset()
	if o.Schedule == "" {
		o.Schedule = "rate(30 days)"
	}
	ok, err := operator.Adopt(w.ctx, w.env(), o)
	if err != nil {
		w.t.Fatalf("adopt: %v\n%s", err, w.out.String())
	}
	return w.out.String(), ok
}

// TestAdoptDryRunChangesNothing: without --apply adopt checks everything and says what it
// would do, and the secret keeps its tags and its rotation off.
func TestAdoptDryRunChangesNothing(t *testing.T) {
	w := newWorld(t, moto)
	prefix := unique(t, "dry")
	name := ptcsecret.Prefix + prefix
	arn := w.secret(name, w.hubValue(), map[string]string{"team": "platform"})
	w.rule(prefix, arn)
	src := w.secret("ptc-source/"+prefix, w.boundTo(name), nil)
	out, ok := w.adopt(operator.AdoptOptions{Prefix: prefix, SourceSecret: src, RotatorARN: rotatorARN})
	if !ok {
		t.Fatalf("dry run refused:\n%s", out)
	}
	wantLines(t, out, "source secret "+src+" allows "+name, "would tag it: ptc:upstream=docker-hub ptc:source-secret="+src, "dry run: nothing changed")
	if tags := w.tags(arn); len(tags) != 1 || tags["team"] != "platform" {
		t.Errorf("a dry run changed the tags: %v", tags)
	}
	w.assertNoLeak()
}

// TestAdoptRefusesWhatItWouldBreak: a customer managed key, another owner, a source that does
// not list the secret, a source under ecr-pullthroughcache/ — each refused with its fix, and
// nothing changed.
func TestAdoptRefusesWhatItWouldBreak(t *testing.T) {
	w := newWorld(t, moto)
	for _, tc := range []struct {
		name  string
		setup func(prefix, name string) (arn, source string)
		want  string
	}{
		{"customer key", func(prefix, name string) (string, string) {
			o, err := w.sm.CreateSecret(w.ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(w.hubValue()), KmsKeyId: aws.String("alias/team-key")})
			if err != nil {
				t.Fatal(err)
			}
			return aws.ToString(o.ARN), w.secret("ptc-source/"+prefix, w.boundTo(name), nil)
		}, "uses customer managed key alias/team-key"},
		{"other owner", func(prefix, name string) (string, string) {
			return w.secret(name, w.hubValue(), map[string]string{ptcsecret.TagManagedBy: "arn:aws:cloudformation:us-east-1:123456789012:stack/team-a/x/Cache"}),
				w.secret("ptc-source/"+prefix, w.boundTo(name), nil)
		}, "is managed by arn:aws:cloudformation:us-east-1:123456789012:stack/team-a/x/Cache"},
		{"source not bound", func(prefix, name string) (string, string) {
			return w.secret(name, w.hubValue(), nil), w.secret("ptc-source/"+prefix, w.boundTo(ptcsecret.Prefix+"someone-else"), nil)
		}, `does not allow managed secret ` + ptcsecret.Prefix},
		{"source inside the prefix", func(prefix, name string) (string, string) {
			return w.secret(name, w.hubValue(), nil), w.secret(name+"-source", w.boundTo(name), nil)
		}, "which ECR's service role can read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := unique(t, "r")
			name := ptcsecret.Prefix + prefix
			arn, src := tc.setup(prefix, name)
			w.rule(prefix, arn)
			before := w.tags(arn)
			out, ok := w.adopt(operator.AdoptOptions{Prefix: prefix, SourceSecret: src, RotatorARN: rotatorARN, Apply: true})
			if ok || !strings.Contains(out, "refused, nothing changed") || !strings.Contains(out, tc.want) {
				t.Errorf("want a refusal naming %q, got ok=%v:\n%s", tc.want, ok, out)
			}
			if after := w.tags(arn); len(after) != len(before) {
				t.Errorf("a refused adopt changed the tags: %v -> %v", before, after)
			}
		})
	}
	w.assertNoLeak()
}

// TestAdoptApplyRotatesAndValidates: --apply tags the hand-made secret, rotates it with the
// real rotator (a Docker Hub token is minted and becomes AWSCURRENT), ECR validates the rule,
// and ptc status shows it managed and healthy.
func TestAdoptApplyRotatesAndValidates(t *testing.T) {
	srv := startRotatingSM(t)
	w := newWorld(t, srv)
	w.now = time.Now()
	prefix := "adopt-apply"
	name := ptcsecret.Prefix + prefix
	arn := w.secret(name, w.hubValue(), nil)
	w.rule(prefix, arn)
	src := w.secret("ptc-source/"+prefix, w.boundTo(name), nil)
	out, ok := w.adopt(operator.AdoptOptions{Prefix: prefix, SourceSecret: src, RotatorARN: rotatorARN, Apply: true, Timeout: time.Minute})
	if !ok {
		t.Fatalf("adopt --apply failed:\n%s\nrotator log:\n%s", out, srv.logs.String())
	}
	wantLines(t, out, "tagged "+name, "finishSecret: AWSCURRENT moved to", "✔ ECR validated the rule")
	tags := w.tags(arn)
	if tags[ptcsecret.TagUpstream] != "docker-hub" || tags[ptcsecret.TagSourceSecret] != src || tags[ptcsecret.TagManagedBy] != operator.AdoptedBy {
		t.Errorf("tags after adopt: %v", tags)
	}
	rep, err := operator.Status(w.ctx, w.env())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rules) != 1 || !rep.Rules[0].Managed || !rep.Rules[0].Rotation || !rep.Rules[0].Healthy() {
		t.Errorf("status after adopt: %+v", rep.Rules)
	}
	w.assertNoLeak()
}
