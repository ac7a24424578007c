package faults

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// provRegions are the Regions of every provisioning run: the home Region (the stack's, where
// the primary secret lives and where every single-Region scenario stays) first, then the two a
// multi-Region scenario replicates to. Every provisioning run has all three, so the
// single-Region scenarios also prove that nothing reaches the other two.
var provRegions = []string{testenv.Region, "eu-west-1", "ap-southeast-2"}

// homeRegion is the stack's Region.
var homeRegion = provRegions[0]

// cleanSMIn is a fault-free client to sm in one Region, for setup and checks. One endpoint
// serves every Region; the client's Region (its SigV4 scope) picks the one it talks to.
func cleanSMIn(sm smServer, region string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(testenv.AWSConfig(), func(o *secretsmanager.Options) {
		o.Region = region
		o.BaseEndpoint = aws.String(sm.URL())
		o.HTTPClient = &http.Client{Transport: sharedTransport}
	})
}

// faultySMIn is faultySM in one Region.
func faultySMIn(inj *Injector, endpoint, region string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(testenv.AWSConfig(), func(o *secretsmanager.Options) {
		o.Region = region
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = inj.Client()
		o.RetryMaxAttempts = 1
	})
}

// faultyECRIn is faultyECR in one Region.
func faultyECRIn(inj *Injector, endpoint, region string) *ecr.Client {
	return ecr.NewFromConfig(testenv.AWSConfig(), func(o *ecr.Options) {
		o.Region = region
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = inj.Client()
		o.RetryMaxAttempts = 1
	})
}

// setSpec is what one set should be once every retry is done: its prefix (the secret is
// ptcsecret.Prefix+prefix in every Region), the Regions it replicates to (besides the home
// one) and the secret's Description ("" checks none).
type setSpec struct {
	prefix      string
	replicas    []string
	description string
}

// regionState is what one Region holds of a prefix's set.
type regionState struct {
	region string
	secret *secretsmanager.DescribeSecretOutput // nil when none (or scheduled for deletion)
	rule   *ecremu.Rule
}

func (s regionState) String() string {
	var parts []string
	if s.secret != nil {
		parts = append(parts, "secret "+aws.ToString(s.secret.ARN))
	}
	if s.rule != nil {
		parts = append(parts, "rule "+s.rule.EcrRepositoryPrefix+" → "+s.rule.CredentialARN)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " and ")
}

// stateIn is what region holds of prefix's set: the secret of that name there (a replica, or a
// stray standalone secret) and the rule of that prefix in that Region's ECR.
func (e *provEnv) stateIn(region, prefix string) regionState {
	e.t.Helper()
	st := regionState{region: region}
	out, err := e.smIn[region].DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(ptcsecret.Prefix + prefix)})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
	case err != nil:
		e.t.Fatalf("DescribeSecret in %s: %v", region, err)
	case out.DeletedDate == nil:
		st.secret = out
	}
	for _, r := range e.ecrs[region].Rules() {
		if r.EcrRepositoryPrefix == prefix {
			st.rule = &r
		}
	}
	return st
}

// arnRegion is the Region field of an ARN ("" if it is none).
func arnRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[3]
}

// inRegion is arn with its Region field replaced: a replica's ARN is its primary's with the
// replica's Region (same name, same random suffix).
func inRegion(arn, region string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return arn
	}
	parts[3] = region
	return strings.Join(parts, ":")
}

// assertSet: the set works as spec says, in every Region. Home: as assertHome (one secret of
// ours, rotation on, AWSCURRENT logs in, one rule reading it, one labelled token), with
// spec's Description and replication to exactly spec's Regions, each in sync, with the
// default key (ECR refuses a replica under a customer key). Each replica Region: the
// replica (primary = home, the primary's ARN with its own Region, same Description and
// owner tag), whose AWSCURRENT is the primary's version and logs in, and a rule there reading
// that Region's replica ARN — never the primary's. Every other Region: nothing.
func (e *provEnv) assertSet(when string, spec setSpec) {
	e.t.Helper()
	primary := e.assertHome(when, spec.prefix)
	if spec.description != "" && aws.ToString(primary.Description) != spec.description {
		e.t.Errorf("%s: the secret's Description is %q, want %q", when, aws.ToString(primary.Description), spec.description)
	}
	current := testenv.VersionWith(primary.VersionIdsToStages, "AWSCURRENT")
	var replicated []string
	for _, rs := range primary.ReplicationStatus {
		r := aws.ToString(rs.Region)
		replicated = append(replicated, r)
		if rs.Status != smtypes.StatusTypeInSync {
			e.t.Errorf("%s: replication to %s is %s (%s), want InSync", when, r, rs.Status, aws.ToString(rs.StatusMessage))
		}
		if k := aws.ToString(rs.KmsKeyId); k != "" && k != "alias/aws/secretsmanager" {
			e.t.Errorf("%s: the replica in %s is encrypted with %q, want the default aws/secretsmanager key (ECR cannot read a customer key)", when, r, k)
		}
	}
	slices.Sort(replicated)
	want := slices.Sorted(slices.Values(spec.replicas))
	if !slices.Equal(replicated, want) {
		e.t.Errorf("%s: the secret replicates to %v, want %v", when, replicated, want)
	}
	owner := tagValue(primary.Tags, ptcsecret.TagManagedBy)
	for _, region := range e.regions[1:] {
		rs := e.stateIn(region, spec.prefix)
		if !slices.Contains(spec.replicas, region) {
			if rs.secret != nil || rs.rule != nil {
				e.t.Errorf("%s: %s is no Region of the set, yet it holds %s", when, region, rs)
			}
			continue
		}
		if rs.secret == nil {
			e.t.Errorf("%s: no replica in %s", when, region)
			continue
		}
		arn := aws.ToString(rs.secret.ARN)
		if wantARN := inRegion(aws.ToString(primary.ARN), region); arn != wantARN {
			e.t.Errorf("%s: the secret in %s is %s, want the replica %s", when, region, arn, wantARN)
		}
		if p := aws.ToString(rs.secret.PrimaryRegion); p != homeRegion {
			e.t.Errorf("%s: the secret in %s has primary Region %q, want %s (a standalone copy rotates never)", when, region, p, homeRegion)
		}
		if spec.description != "" && aws.ToString(rs.secret.Description) != spec.description {
			e.t.Errorf("%s: the replica in %s has Description %q, want %q", when, region, aws.ToString(rs.secret.Description), spec.description)
		}
		if got := tagValue(rs.secret.Tags, ptcsecret.TagManagedBy); got != owner {
			e.t.Errorf("%s: the replica in %s is managed by %q, the primary by %q", when, region, got, owner)
		}
		if rs.rule == nil || rs.rule.CredentialARN != arn {
			e.t.Errorf("%s: the rule of %s in %s is %+v, want one reading that Region's replica %s", when, spec.prefix, region, rs.rule, arn)
		}
		if cur := e.currentLogsIn(when+" in "+region, arn); cur != current {
			e.t.Errorf("%s: AWSCURRENT in %s is version %s, the primary's is %s", when, region, cur, current)
		}
	}
}

func tagValue(tags []smtypes.Tag, key string) string {
	for _, tg := range tags {
		if aws.ToString(tg.Key) == key {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

// worldText is what every Region's Secrets Manager says about the env's sets (DescribeSecret
// of each, primary and replicas: Description, tags, replication status messages), for the
// leak scan: no secret value may reach metadata any Region shows.
func (e *provEnv) worldText() string {
	e.t.Helper()
	var b strings.Builder
	for _, p := range e.prefixes {
		for _, r := range e.regions {
			if st := e.stateIn(r, p); st.secret != nil {
				j, _ := json.Marshal(st.secret)
				b.Write(j)
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// propsOf is the resource's properties for spec: props, plus ReplicaRegions (a list, as
// CloudFormation sends one) and Description when spec has them.
func (e *provEnv) propsOf(spec setSpec) map[string]any {
	p := e.props(spec.prefix)
	if len(spec.replicas) > 0 {
		l := make([]any, len(spec.replicas))
		for i, r := range spec.replicas {
			l[i] = r
		}
		p["ReplicaRegions"] = l
	}
	if spec.description != "" {
		p["Description"] = spec.description
	}
	return p
}

// wireRegions gives the provisioner of one invocation every Region's clients, each through
// the injector (so a call in a replica Region is counted and faulted like any other). Replica
// Regions' Secrets Manager calls go through the same front as the home Region's: it passes
// every call but the home Region's RotateSecret straight on.
func wireRegions(p *provision.Provisioner, e *provEnv) {
	p.Region = homeRegion
	p.AllowedReplicaRegions = e.regions[1:]
	p.SMFor = func(region string) provision.SecretsManager {
		if e.smIn[region] == nil {
			return nil
		}
		return faultySMIn(e.inj, e.front.srv.URL, region)
	}
	p.ECRFor = func(region string) provision.ECR {
		if e.ecrs[region] == nil {
			return nil
		}
		return faultyECRIn(e.inj, e.ecrURL, region)
	}
}
