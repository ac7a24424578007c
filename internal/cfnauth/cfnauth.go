// Package cfnauth tells a real CloudFormation custom-resource request from a forged one before
// the provisioner acts on it.
//
// Anyone who may invoke the provisioner can send it any JSON: a forged Delete with another
// team's stack id, an Update whose OldResourceProperties lie, a ResponseURL on a host the
// forger reads. CloudFormation itself is the authority on what it asked for, so the checker
// asks it, with the provisioner's own credentials:
//
//   - StackId must be a CloudFormation stack of this function's own partition, Region and
//     account;
//   - ResponseURL must be CloudFormation's response bucket for that Region over https
//     (cloudformation-custom-resource-response-<region without dashes>, virtual-hosted or
//     path-style on S3's endpoints), so no answer — and no Reason — goes anywhere else;
//   - DescribeStackResource(StackId, LogicalResourceId) must show a resource of the expected
//     type in the in-progress state the request type implies (Create: CREATE_IN_PROGRESS;
//     Update: UPDATE_IN_PROGRESS or UPDATE_ROLLBACK_IN_PROGRESS; Delete: DELETE_IN_PROGRESS or
//     ROLLBACK_IN_PROGRESS), and for Update and Delete the same PhysicalResourceId;
//   - the one Delete whose physical id CloudFormation no longer shows — the old resource of a
//     replacement, deleted during cleanup — is accepted only while DescribeStacks shows the
//     stack in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS or UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS.
//     (The owner check in internal/provision still decides whether that old resource is this
//     stack's to delete.)
//
// A refusal is a *Refusal naming what did not match; it never quotes the ResponseURL, whose
// query string is a credential.
package cfnauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
)

// CloudFormation is the part of the CloudFormation API the checker calls.
type CloudFormation interface {
	DescribeStackResource(ctx context.Context, in *cloudformation.DescribeStackResourceInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackResourceOutput, error)
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// Request is what the checker needs of a custom-resource request.
type Request struct {
	// Type is Create, Update or Delete.
	Type                                        string
	StackID, LogicalID, PhysicalID, ResponseURL string
}

// Identity is where the checking function runs: its partition, Region and account.
type Identity struct{ Partition, Region, Account string }

// IdentityFromARN reads an Identity from the function's own ARN
// (arn:<partition>:lambda:<region>:<account>:function:<name>).
func IdentityFromARN(arn string) (Identity, error) {
	p := strings.SplitN(arn, ":", 7)
	if len(p) < 7 || p[0] != "arn" || p[2] != "lambda" || p[1] == "" || p[3] == "" || p[4] == "" {
		return Identity{}, fmt.Errorf("function ARN %q is not arn:<partition>:lambda:<region>:<account>:function:<name>", kit.Truncate(arn, 200))
	}
	return Identity{Partition: p[1], Region: p[3], Account: p[4]}, nil
}

// Checker checks requests against CloudFormation.
type Checker struct {
	// CFN is a CloudFormation client of this function's own Region.
	CFN CloudFormation
	// Self is where this function runs.
	Self Identity
	// ResourceType is the custom resource type requests must be for, e.g.
	// "Custom::PullThroughCache".
	ResourceType string
	// Standins are the loopback endpoints (host:port) whose ResponseURL (http or https) may
	// stand in for CloudFormation's bucket; any other loopback URL is refused. Only the local
	// cloud and the tests list any, through the one emulator switch the deployed template never
	// sets (awsenv.LoopbackStandinsVar).
	Standins pinned.Standins
	// Overlaps reports whether two physical ids name any resource in common. A cleanup Delete
	// is acted on only for an id that shares nothing with the one CloudFormation shows now:
	// ids that differ as strings may still name the live set (a forged
	// "ptc:other:<the live secret>"). nil compares the strings only.
	Overlaps func(a, b string) bool
}

// Refusal is why a request was not acted on.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return "request refused: " + r.Reason }

func refuse(format string, args ...any) error { return &Refusal{Reason: fmt.Sprintf(format, args...)} }

// IsRefusal reports whether err is a *Refusal.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// inProgress are the resource states each request type may arrive in.
var inProgress = map[string][]string{
	"Create": {"CREATE_IN_PROGRESS"},
	"Update": {"UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"},
	"Delete": {"DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"},
}

// cleanupStates are the stack states in which CloudFormation deletes the old resource of a
// replacement.
var cleanupStates = []string{"UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"}

// CheckResponseURL refuses a ResponseURL that is not CloudFormation's response bucket for the
// identity's Region (see the package comment).
func (c *Checker) CheckResponseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil {
		return refuse("ResponseURL is not an absolute URL without user info")
	}
	host := strings.ToLower(u.Hostname())
	if kit.IsLoopback(host) && (u.Scheme == "http" || u.Scheme == "https") && c.Standins.Allows(u.Host) {
		return nil
	}
	if u.Scheme != "https" || (u.Port() != "" && u.Port() != "443") {
		return refuse("ResponseURL must be https on the default port")
	}
	if !ResponseHost(host, u.EscapedPath(), c.Self.Partition, c.Self.Region) {
		return refuse("ResponseURL host %q is not CloudFormation's response bucket for %s", kit.Truncate(host, 120), c.Self.Region)
	}
	return nil
}

// ResponseHost reports whether host (and, for path-style URLs, the path) address CloudFormation's
// custom-resource response bucket of region: bucket cloudformation-custom-resource-response-
// <region without dashes> on S3's global endpoint s3.amazonaws.com (which reaches a bucket of
// any Region; bucket names are global, so the name is what is pinned), s3.<region>.amazonaws.com
// or s3-<region>.amazonaws.com; amazonaws.com.cn, with no global endpoint, in aws-cn.
func ResponseHost(host, path, partition, region string) bool {
	bucket := "cloudformation-custom-resource-response-" + strings.ReplaceAll(region, "-", "")
	suffix := "amazonaws.com"
	if partition == "aws-cn" {
		suffix = "amazonaws.com.cn"
	}
	endpoints := []string{"s3." + region + "." + suffix, "s3-" + region + "." + suffix}
	if partition == "aws" {
		endpoints = append(endpoints, "s3."+suffix)
	}
	for _, ep := range endpoints {
		if host == bucket+"."+ep {
			return true
		}
		if host == ep && strings.HasPrefix(path, "/"+bucket+"/") {
			return true
		}
	}
	return false
}

// parseStack splits arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>.
func parseStack(stackID string) (Identity, bool) {
	p := strings.SplitN(stackID, ":", 6)
	if len(p) != 6 || p[0] != "arn" || p[2] != "cloudformation" || !strings.HasPrefix(p[5], "stack/") || strings.Count(p[5], "/") != 2 {
		return Identity{}, false
	}
	return Identity{Partition: p[1], Region: p[3], Account: p[4]}, true
}

// Check refuses a request CloudFormation did not send (see the package comment). Errors that
// are not refusals (CloudFormation unreachable) are returned as they are: the caller must not
// act on the request then either.
func (c *Checker) Check(ctx context.Context, req Request) error {
	states, ok := inProgress[req.Type]
	if !ok {
		return refuse("RequestType %q is not Create, Update or Delete", kit.Truncate(req.Type, 40))
	}
	st, ok := parseStack(req.StackID)
	if !ok {
		return refuse("StackId is not a CloudFormation stack ARN")
	}
	if st != c.Self {
		return refuse("StackId is a stack of %s/%s/%s; this function serves only %s/%s/%s",
			st.Partition, st.Region, st.Account, c.Self.Partition, c.Self.Region, c.Self.Account)
	}
	if err := c.CheckResponseURL(req.ResponseURL); err != nil {
		return err
	}
	if req.LogicalID == "" {
		return refuse("LogicalResourceId is empty")
	}
	out, err := c.CFN.DescribeStackResource(ctx, &cloudformation.DescribeStackResourceInput{
		StackName: aws.String(req.StackID), LogicalResourceId: aws.String(req.LogicalID),
	})
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return refuse("CloudFormation knows no resource %s in stack %s", kit.Truncate(req.LogicalID, 100), req.StackID)
		}
		return fmt.Errorf("asking CloudFormation about %s in %s: %w", kit.Truncate(req.LogicalID, 100), req.StackID, err)
	}
	d := out.StackResourceDetail
	if d == nil {
		return fmt.Errorf("asking CloudFormation about %s in %s: the answer has no StackResourceDetail", kit.Truncate(req.LogicalID, 100), req.StackID)
	}
	if got := aws.ToString(d.ResourceType); got != c.ResourceType {
		return refuse("resource %s in stack %s is a %s, not a %s", req.LogicalID, req.StackID, kit.Truncate(got, 100), c.ResourceType)
	}
	status, current := string(d.ResourceStatus), aws.ToString(d.PhysicalResourceId)
	statusOK := slices.Contains(states, status)
	if statusOK && (req.Type == "Create" || current == req.PhysicalID) {
		return nil
	}
	// The old resource of a replacement (or the new one of a rolled-back update) is deleted
	// while CloudFormation shows the other one, in a finished state; the stack's own status
	// tells that cleanup phase apart. Never the physical id CloudFormation shows now: that one
	// is live.
	if req.Type == "Delete" && current != req.PhysicalID && c.replacementCleanup(ctx, req.StackID) {
		if c.Overlaps != nil && c.Overlaps(req.PhysicalID, current) {
			return refuse("the Delete's PhysicalResourceId names part of the set CloudFormation shows as live for %s", req.LogicalID)
		}
		return nil
	}
	if !statusOK {
		return refuse("CloudFormation shows resource %s in %s, not in a state a %s arrives in (%s)", req.LogicalID, status, req.Type, strings.Join(states, ", "))
	}
	return refuse("the request's PhysicalResourceId is not the one CloudFormation shows for %s", req.LogicalID)
}

// replacementCleanup reports whether the stack is in the cleanup phase that deletes replaced
// resources.
func (c *Checker) replacementCleanup(ctx context.Context, stackID string) bool {
	out, err := c.CFN.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stackID)})
	if err != nil || len(out.Stacks) != 1 {
		return false
	}
	return slices.Contains(cleanupStates, string(out.Stacks[0].StackStatus))
}
