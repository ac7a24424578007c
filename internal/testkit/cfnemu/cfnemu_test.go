package cfnemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"
)

const (
	stackID = "arn:aws:cloudformation:us-east-1:123456789012:stack/ptc-test/0a1b2c3d-0000-1111-2222-333344445555"
	keyID   = "AKIDCFNEMUTEST"
	secret  = "cfnemu-test-secret-key"
)

func start(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	s := New(Options{Region: "us-east-1", Credentials: map[string]string{keyID: secret}})
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	s.PutResource(Resource{StackID: stackID, LogicalID: "Cache", Type: "Custom::PullThroughCache", Status: "CREATE_IN_PROGRESS"})
	return s, hs
}

func client(endpoint, id, key, region string) *cloudformation.Client {
	return cloudformation.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(id, key, ""),
	}, func(o *cloudformation.Options) { o.BaseEndpoint = aws.String(endpoint); o.RetryMaxAttempts = 1 })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestDescribeStackResourceWithTheSDK(t *testing.T) {
	s, hs := start(t)
	c := client(hs.URL, keyID, secret, "us-east-1")
	for _, name := range []string{stackID, "ptc-test"} { // by id and by name
		out, err := c.DescribeStackResource(ctx(t), &cloudformation.DescribeStackResourceInput{StackName: aws.String(name), LogicalResourceId: aws.String("Cache")})
		if err != nil {
			t.Fatalf("StackName %s: %v", name, err)
		}
		d := out.StackResourceDetail
		if aws.ToString(d.StackId) != stackID || aws.ToString(d.LogicalResourceId) != "Cache" || aws.ToString(d.ResourceType) != "Custom::PullThroughCache" ||
			d.ResourceStatus != cfntypes.ResourceStatusCreateInProgress || aws.ToString(d.StackName) != "ptc-test" || d.LastUpdatedTimestamp == nil {
			t.Fatalf("detail = %+v", d)
		}
	}
	s.SetStatus(stackID, "Cache", "CREATE_COMPLETE", "ptc:hub:ecr-pullthroughcache/hub")
	out, err := c.DescribeStackResource(ctx(t), &cloudformation.DescribeStackResourceInput{StackName: aws.String(stackID), LogicalResourceId: aws.String("Cache")})
	if err != nil {
		t.Fatal(err)
	}
	if out.StackResourceDetail.ResourceStatus != cfntypes.ResourceStatusCreateComplete || aws.ToString(out.StackResourceDetail.PhysicalResourceId) != "ptc:hub:ecr-pullthroughcache/hub" {
		t.Fatalf("after SetStatus: %+v", out.StackResourceDetail)
	}
}

func TestDescribeStacks(t *testing.T) {
	s, hs := start(t)
	c := client(hs.URL, keyID, secret, "us-east-1")
	s.SetStackStatus(stackID, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
	out, err := c.DescribeStacks(ctx(t), &cloudformation.DescribeStacksInput{StackName: aws.String(stackID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Stacks) != 1 || out.Stacks[0].StackStatus != cfntypes.StackStatusUpdateCompleteCleanupInProgress || aws.ToString(out.Stacks[0].StackName) != "ptc-test" {
		t.Fatalf("stacks = %+v", out.Stacks)
	}
	_, err = c.DescribeStacks(ctx(t), &cloudformation.DescribeStacksInput{StackName: aws.String("nope")})
	if code, _ := apiCode(t, err); code != "ValidationError" {
		t.Fatalf("missing stack: %s", code)
	}
}

func apiCode(t *testing.T, err error) (string, string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

func TestNotFoundAnswersAreValidationErrors(t *testing.T) {
	_, hs := start(t)
	c := client(hs.URL, keyID, secret, "us-east-1")
	for _, tc := range []struct{ stack, logical, want string }{
		{"arn:aws:cloudformation:us-east-1:123456789012:stack/other/0a1b2c3d-9999-1111-2222-333344445555", "Cache", "Stack 'arn:aws:cloudformation:us-east-1:123456789012:stack/other/0a1b2c3d-9999-1111-2222-333344445555' does not exist"},
		{stackID, "Other", "Resource Other does not exist for stack ptc-test"},
	} {
		_, err := c.DescribeStackResource(ctx(t), &cloudformation.DescribeStackResourceInput{StackName: aws.String(tc.stack), LogicalResourceId: aws.String(tc.logical)})
		code, msg := apiCode(t, err)
		if code != "ValidationError" || msg != tc.want {
			t.Errorf("%s/%s: %s %q, want ValidationError %q", tc.stack, tc.logical, code, msg, tc.want)
		}
	}
}

// The emulator checks the signature as CloudFormation does: another key, a wrong secret, the
// wrong Region's scope, a body changed after signing, and no signature at all are refused.
func TestSignaturesAreChecked(t *testing.T) {
	s, hs := start(t)
	in := &cloudformation.DescribeStackResourceInput{StackName: aws.String(stackID), LogicalResourceId: aws.String("Cache")}
	for _, tc := range []struct {
		name string
		c    *cloudformation.Client
		want string
	}{
		{"unknown key", client(hs.URL, "AKIDUNKNOWN", secret, "us-east-1"), "InvalidClientTokenId"},
		{"wrong secret", client(hs.URL, keyID, "not-the-secret", "us-east-1"), "SignatureDoesNotMatch"},
		{"other Region's scope", client(hs.URL, keyID, secret, "eu-west-1"), "SignatureDoesNotMatch"},
	} {
		_, err := tc.c.DescribeStackResource(ctx(t), in)
		if code, _ := apiCode(t, err); code != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, code, tc.want)
		}
	}
	// A body changed after signing: sign a request for one stack, send another's.
	tampered := &tamperingTransport{from: "Cache", to: "Other"}
	c := cloudformation.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, "")},
		func(o *cloudformation.Options) {
			o.BaseEndpoint = aws.String(hs.URL)
			o.RetryMaxAttempts = 1
			o.HTTPClient = &http.Client{Transport: tampered}
		})
	if _, err := c.DescribeStackResource(ctx(t), in); err == nil {
		t.Error("a body changed after signing was accepted")
	} else if code, _ := apiCode(t, err); code != "SignatureDoesNotMatch" {
		t.Errorf("tampered body: %s, want SignatureDoesNotMatch", code)
	}
	resp, err := http.Post(hs.URL+"/", "application/x-www-form-urlencoded", strings.NewReader(url.Values{
		"Action": {"DescribeStackResource"}, "Version": {"2010-05-15"}, "StackName": {stackID}, "LogicalResourceId": {"Cache"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned request: status %d, want 403", resp.StatusCode)
	}
	for _, c := range s.Calls() {
		if c.Status == http.StatusOK {
			t.Errorf("a refused request was answered 200: %+v", c)
		}
	}
}

// tamperingTransport rewrites the signed body on its way, as a man in the middle would.
type tamperingTransport struct{ from, to string }

func (tt *tamperingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var b bytes.Buffer
	_, _ = b.ReadFrom(r.Body)
	body := strings.Replace(b.String(), "LogicalResourceId="+tt.from, "LogicalResourceId="+tt.to, 1)
	r2 := r.Clone(r.Context())
	r2.Body = readCloser{strings.NewReader(body)}
	r2.ContentLength = int64(len(body))
	return http.DefaultTransport.RoundTrip(r2)
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// The aws CLI (botocore: an independent signer and XML parser) reads the answer and the error.
func TestAWSCLI(t *testing.T) {
	bin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws CLI is not on PATH; it is the independent client check of the wire format")
	}
	_, hs := start(t)
	home := t.TempDir()
	run := func(args ...string) ([]byte, string, error) {
		cmd := exec.CommandContext(ctx(t), bin, append(args, "--endpoint-url", hs.URL, "--region", "us-east-1", "--output", "json")...)
		cmd.Env = []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + home,
			"AWS_ACCESS_KEY_ID=" + keyID, "AWS_SECRET_ACCESS_KEY=" + secret,
			"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
			"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
		}
		if v := os.Getenv("PYENV_ROOT"); v != "" {
			cmd.Env = append(cmd.Env, "PYENV_ROOT="+v)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.Bytes(), stderr.String(), err
	}
	out, stderr, err := run("cloudformation", "describe-stack-resource", "--stack-name", stackID, "--logical-resource-id", "Cache")
	if err != nil {
		t.Fatalf("aws cloudformation describe-stack-resource: %v\n%s", err, stderr)
	}
	var got struct {
		StackResourceDetail struct{ StackId, LogicalResourceId, ResourceType, ResourceStatus string }
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("CLI output %s: %v", out, err)
	}
	if d := got.StackResourceDetail; d.StackId != stackID || d.LogicalResourceId != "Cache" || d.ResourceType != "Custom::PullThroughCache" || d.ResourceStatus != "CREATE_IN_PROGRESS" {
		t.Fatalf("CLI read %+v", d)
	}
	_, stderr, err = run("cloudformation", "describe-stack-resource", "--stack-name", stackID, "--logical-resource-id", "Nope")
	if err == nil || !strings.Contains(stderr, "ValidationError") || !strings.Contains(stderr, "Resource Nope does not exist for stack ptc-test") {
		t.Fatalf("CLI on a missing resource: %v, %s", err, stderr)
	}
}
