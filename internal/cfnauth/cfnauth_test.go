package cfnauth

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/cfnemu"
)

const (
	account  = "123456789012"
	stackID  = "arn:aws:cloudformation:us-east-1:" + account + ":stack/team-a/0a1b2c3d-0000-1111-2222-333344445555"
	victimID = "arn:aws:cloudformation:us-east-1:" + account + ":stack/team-b/0a1b2c3d-9999-1111-2222-333344445555"
	goodURL  = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3Aaws%3Acloudformation/abc?X-Amz-Signature=planted"
	physical = "ptc:hub:ecr-pullthroughcache/hub"
)

type world struct {
	cfn *cfnemu.Server
	c   *Checker
}

func newWorld(t *testing.T) *world {
	t.Helper()
	emu := cfnemu.New(cfnemu.Options{Region: "us-east-1", Credentials: map[string]string{"AKIDPROVISIONER": "provisioner-secret"}})
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	client := cloudformation.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDPROVISIONER", "provisioner-secret", "")},
		func(o *cloudformation.Options) { o.BaseEndpoint = aws.String(hs.URL); o.RetryMaxAttempts = 1 })
	return &world{cfn: emu, c: &Checker{CFN: client, Self: Identity{"aws", "us-east-1", account}, ResourceType: "Custom::PullThroughCache"}}
}

func (w *world) put(stack, logical, status, phys string) {
	w.cfn.PutResource(cfnemu.Resource{StackID: stack, LogicalID: logical, Type: "Custom::PullThroughCache", Status: status, PhysicalID: phys})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestGenuineRequestsPass(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct{ typ, status, phys string }{
		{"Create", "CREATE_IN_PROGRESS", ""},
		{"Update", "UPDATE_IN_PROGRESS", physical},
		{"Update", "UPDATE_ROLLBACK_IN_PROGRESS", physical},
		{"Delete", "DELETE_IN_PROGRESS", physical},
		{"Delete", "ROLLBACK_IN_PROGRESS", "failed-create-1234"},
	} {
		w.put(stackID, "Cache", tc.status, tc.phys)
		if err := w.c.Check(ctx(t), Request{Type: tc.typ, StackID: stackID, LogicalID: "Cache", PhysicalID: tc.phys, ResponseURL: goodURL}); err != nil {
			t.Errorf("%s in %s: %v", tc.typ, tc.status, err)
		}
	}
}

// Each forged request plays an attacker who may invoke the provisioner: the checker refuses it
// and says why, without quoting the ResponseURL.
func TestForgedRequestsAreRefused(t *testing.T) {
	w := newWorld(t)
	w.put(stackID, "Cache", "UPDATE_IN_PROGRESS", physical)
	w.put(victimID, "Cache", "CREATE_COMPLETE", "ptc:victim:ecr-pullthroughcache/victim")
	base := Request{Type: "Update", StackID: stackID, LogicalID: "Cache", PhysicalID: physical, ResponseURL: goodURL}
	for _, tc := range []struct {
		name   string
		mutate func(r *Request)
		want   string
	}{
		{"victim's resource, not in progress (forged Delete)", func(r *Request) {
			r.Type, r.StackID, r.PhysicalID = "Delete", victimID, "ptc:victim:ecr-pullthroughcache/victim"
		}, "CREATE_COMPLETE"},
		{"victim's resource, forged Update", func(r *Request) { r.StackID, r.PhysicalID = victimID, "ptc:victim:ecr-pullthroughcache/victim" }, "CREATE_COMPLETE"},
		{"another account's stack", func(r *Request) { r.StackID = strings.Replace(stackID, account, "210987654321", 1) }, "210987654321"},
		{"another Region's stack", func(r *Request) { r.StackID = strings.Replace(stackID, "us-east-1", "eu-west-1", 1) }, "eu-west-1"},
		{"not a stack ARN", func(r *Request) { r.StackID = "team-a" }, "not a CloudFormation stack ARN"},
		{"a logical id CloudFormation does not know", func(r *Request) { r.LogicalID = "Other" }, "knows no resource Other"},
		{"another physical id", func(r *Request) { r.PhysicalID = "ptc:victim:ecr-pullthroughcache/victim" }, "PhysicalResourceId is not the one"},
		{"Create while CloudFormation updates", func(r *Request) { r.Type = "Create" }, "UPDATE_IN_PROGRESS"},
		{"unknown request type", func(r *Request) { r.Type = "Destroy" }, "RequestType"},
		{"response to the attacker's host", func(r *Request) { r.ResponseURL = "https://attacker.example/collect?X-Amz-Signature=planted" }, "attacker.example"},
		{"lookalike host", func(r *Request) {
			r.ResponseURL = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com.attacker.example/x?X-Amz-Signature=planted"
		}, "not CloudFormation's response bucket"},
		{"another Region's bucket", func(r *Request) {
			r.ResponseURL = "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/x?X-Amz-Signature=planted"
		}, "not CloudFormation's response bucket"},
		{"plain http", func(r *Request) { r.ResponseURL = strings.Replace(goodURL, "https", "http", 1) }, "https"},
		{"user info", func(r *Request) {
			r.ResponseURL = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com@attacker.example/x?X-Amz-Signature=planted"
		}, "user info"},
		{"another port", func(r *Request) {
			r.ResponseURL = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com:8443/x?X-Amz-Signature=planted"
		}, "default port"},
		{"loopback without the switch", func(r *Request) { r.ResponseURL = "http://127.0.0.1:9/x?X-Amz-Signature=planted" }, "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.mutate(&r)
			err := w.c.Check(ctx(t), r)
			if err == nil {
				t.Fatal("accepted")
			}
			if !IsRefusal(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want a refusal containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "planted") {
				t.Fatalf("error %q quotes the ResponseURL's signature", err)
			}
		})
	}
}

func TestWrongResourceTypeIsRefused(t *testing.T) {
	w := newWorld(t)
	w.cfn.PutResource(cfnemu.Resource{StackID: stackID, LogicalID: "Bucket", Type: "AWS::S3::Bucket", Status: "CREATE_IN_PROGRESS"})
	err := w.c.Check(ctx(t), Request{Type: "Create", StackID: stackID, LogicalID: "Bucket", ResponseURL: goodURL})
	if !IsRefusal(err) || !strings.Contains(err.Error(), "AWS::S3::Bucket") {
		t.Fatalf("error %v", err)
	}
}

// A replacement's old resource is deleted while CloudFormation shows the new one: that Delete
// passes only in the stack's cleanup phase, and never for the physical id that is live now.
func TestReplacementCleanupDelete(t *testing.T) {
	w := newWorld(t)
	w.put(stackID, "Cache", "UPDATE_COMPLETE", "ptc:hub2:ecr-pullthroughcache/hub2")
	old := Request{Type: "Delete", StackID: stackID, LogicalID: "Cache", PhysicalID: physical, ResponseURL: goodURL}
	w.cfn.SetStackStatus(stackID, "UPDATE_IN_PROGRESS")
	if err := w.c.Check(ctx(t), old); !IsRefusal(err) {
		t.Fatalf("old-resource Delete outside cleanup: %v, want a refusal", err)
	}
	for _, st := range []string{"UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"} {
		w.cfn.SetStackStatus(stackID, st)
		if err := w.c.Check(ctx(t), old); err != nil {
			t.Fatalf("old-resource Delete in %s: %v", st, err)
		}
		live := old
		live.PhysicalID = "ptc:hub2:ecr-pullthroughcache/hub2"
		if err := w.c.Check(ctx(t), live); !IsRefusal(err) {
			t.Fatalf("Delete of the live resource in %s: %v, want a refusal", st, err)
		}
	}
	// An id that differs as a string but names the live set: refused once the checker knows how
	// ids overlap (the provisioner passes provision.Overlaps), while the real old id still passes.
	w.c.Overlaps = func(a, b string) bool {
		pa, sa, _ := strings.Cut(strings.TrimPrefix(a, "ptc:"), ":")
		pb, sb, _ := strings.Cut(strings.TrimPrefix(b, "ptc:"), ":")
		return pa == pb || sa == sb
	}
	alias := old
	alias.PhysicalID = "ptc:zzz:ecr-pullthroughcache/hub2"
	if err := w.c.Check(ctx(t), alias); !IsRefusal(err) || !strings.Contains(err.Error(), "names part of the set") {
		t.Fatalf("cleanup Delete of an alias of the live set: %v, want a refusal", err)
	}
	if err := w.c.Check(ctx(t), old); err != nil {
		t.Fatalf("the real old resource's cleanup Delete: %v", err)
	}
}

func TestLoopbackResponseOnlyForAListedStandin(t *testing.T) {
	w := newWorld(t)
	w.put(stackID, "Cache", "CREATE_IN_PROGRESS", "")
	req := Request{Type: "Create", StackID: stackID, LogicalID: "Cache", ResponseURL: "http://127.0.0.1:9/x"}
	if err := w.c.Check(ctx(t), req); !IsRefusal(err) {
		t.Fatalf("loopback ResponseURL without the switch: %v", err)
	}
	w.c.Standins = pinned.NewStandins("127.0.0.1:9")
	if err := w.c.Check(ctx(t), req); err != nil {
		t.Fatalf("loopback ResponseURL of a listed stand-in: %v", err)
	}
	req.ResponseURL = "http://127.0.0.1:10/x" // another loopback server, not listed
	if err := w.c.Check(ctx(t), req); !IsRefusal(err) {
		t.Fatalf("unlisted loopback ResponseURL with the switch: %v", err)
	}
	req.ResponseURL = "http://10.0.0.1/x" // a private address is not loopback
	if err := w.c.Check(ctx(t), req); !IsRefusal(err) {
		t.Fatalf("private-address ResponseURL with the switch: %v", err)
	}
}

// CloudFormation unreachable is an error, not a pass: the provisioner must not act then.
func TestUnreachableCloudFormationIsNotAPass(t *testing.T) {
	w := newWorld(t)
	hs := httptest.NewServer(nil)
	hs.Close()
	w.c.CFN = cloudformation.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDPROVISIONER", "provisioner-secret", "")},
		func(o *cloudformation.Options) { o.BaseEndpoint = aws.String(hs.URL); o.RetryMaxAttempts = 1 })
	err := w.c.Check(ctx(t), Request{Type: "Create", StackID: stackID, LogicalID: "Cache", ResponseURL: goodURL})
	if err == nil || IsRefusal(err) {
		t.Fatalf("error %v: want a non-refusal error", err)
	}
}

func TestResponseHostForms(t *testing.T) {
	for _, tc := range []struct {
		host, path, partition, region string
		ok                            bool
	}{
		{"cloudformation-custom-resource-response-useast1.s3.amazonaws.com", "/k", "aws", "us-east-1", true},
		{"cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com", "/k", "aws", "eu-west-1", true},
		{"cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com", "/k", "aws", "eu-west-1", true},
		{"s3.eu-west-1.amazonaws.com", "/cloudformation-custom-resource-response-euwest1/k", "aws", "eu-west-1", true},
		{"s3.eu-west-1.amazonaws.com", "/some-other-bucket/k", "aws", "eu-west-1", false},
		{"cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn", "/k", "aws-cn", "cn-north-1", true},
		{"cloudformation-custom-resource-response-cnnorth1.s3.amazonaws.com", "/k", "aws-cn", "cn-north-1", false},
		// S3's global endpoint reaches a bucket of any Region; the bucket name is what is pinned.
		{"cloudformation-custom-resource-response-euwest1.s3.amazonaws.com", "/k", "aws", "eu-west-1", true},
		{"cloudformation-custom-resource-response-useast1.s3.amazonaws.com", "/k", "aws", "eu-west-1", false},
	} {
		if got := ResponseHost(tc.host, tc.path, tc.partition, tc.region); got != tc.ok {
			t.Errorf("ResponseHost(%s, %s, %s, %s) = %v, want %v", tc.host, tc.path, tc.partition, tc.region, got, tc.ok)
		}
	}
}

func TestIdentityFromARN(t *testing.T) {
	id, err := IdentityFromARN("arn:aws:lambda:us-east-1:123456789012:function:ptc-provisioner")
	if err != nil || id != (Identity{"aws", "us-east-1", "123456789012"}) {
		t.Fatalf("IdentityFromARN = %+v, %v", id, err)
	}
	if _, err := IdentityFromARN("arn:aws:s3:::bucket"); err == nil {
		t.Fatal("an S3 ARN was taken for a function ARN")
	}
}
