package localcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// ResourceType is the custom resource type the template declares.
const ResourceType = "Custom::PullThroughCache"

// DefaultLogicalID is the LogicalResourceId CustomResource sends.
const DefaultLogicalID = "Cache"

// Answer is one response CloudFormation received at the pre-signed ResponseURL, with its JSON
// body parsed. Data may hold secret ARNs and names, never a secret value (the provisioner's rule,
// which the tests check).
type Answer struct {
	Method string
	// Path is the escaped object key part of the URL (it ends in the RequestId).
	Path string
	// Query is the pre-signed query string (its X-Amz-Signature is a credential: never print it).
	Query  url.Values
	Header http.Header
	// Body is the raw PUT body.
	Body string
	At   time.Time

	Status             string            `json:"Status"`
	Reason             string            `json:"Reason"`
	PhysicalResourceID string            `json:"PhysicalResourceId"`
	StackID            string            `json:"StackId"`
	RequestID          string            `json:"RequestId"`
	LogicalResourceID  string            `json:"LogicalResourceId"`
	NoEcho             bool              `json:"NoEcho"`
	Data               map[string]string `json:"Data"`

	// Invocation is what the Lambda Invoke API answered to the event.
	Invocation Invocation `json:"-"`
}

// ResponseBucket plays the S3 bucket behind CloudFormation's pre-signed response URLs and
// records every request (the local cloud's, and tests/e2e's).
type ResponseBucket struct {
	mu      sync.Mutex
	answers []Answer
}

// ServeHTTP records one request.
func (c *ResponseBucket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	a := Answer{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone(), Body: string(b), At: time.Now()}
	_ = json.Unmarshal(b, &a)
	c.mu.Lock()
	c.answers = append(c.answers, a)
	c.mu.Unlock()
}

// All returns every request received, oldest first.
func (c *ResponseBucket) All() []Answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.answers)
}

// ForRequest returns the requests whose object key ends in requestID, as CloudFormation's
// response keys do ("<stack id>|<logical id>|<request id>", escaped).
func (c *ResponseBucket) ForRequest(requestID string) []Answer {
	var out []Answer
	for _, a := range c.All() {
		if strings.HasSuffix(a.Path, "%7C"+requestID) {
			out = append(out, a)
		}
	}
	return out
}

// Answers returns every request the response bucket received, oldest first.
func (c *Cloud) Answers() []Answer { return c.cfn.All() }

// CustomResource sends one Custom::PullThroughCache request (logical id DefaultLogicalID) to
// the provisioner; see CustomResourceFor.
func (c *Cloud) CustomResource(ctx context.Context, requestType, physicalID string, props map[string]any) (Answer, error) {
	return c.CustomResourceFor(ctx, DefaultLogicalID, requestType, physicalID, props)
}

// CustomResourceFor sends the event CloudFormation sends for one request of a
// Custom::PullThroughCache with this logical id, through the provisioner's Lambda Invoke API,
// and returns the one answer CloudFormation received for it. An answer that is not exactly one
// PUT is an error. props are the ResourceProperties (every scalar a string, as CloudFormation
// sends them); ServiceToken is added when missing.
func (c *Cloud) CustomResourceFor(ctx context.Context, logicalID, requestType, physicalID string, props map[string]any) (Answer, error) {
	return c.send(ctx, logicalID, requestType, physicalID, props, nil)
}

// UpdateFor sends the Update CloudFormation sends when a stack changes the properties of the
// Custom::PullThroughCache with this logical id from old to props (OldResourceProperties), and
// returns the one answer, as CustomResourceFor does.
func (c *Cloud) UpdateFor(ctx context.Context, logicalID, physicalID string, props, old map[string]any) (Answer, error) {
	return c.send(ctx, logicalID, "Update", physicalID, props, old)
}

// send is one request, with OldResourceProperties when old is set.
func (c *Cloud) send(ctx context.Context, logicalID, requestType, physicalID string, props, old map[string]any) (Answer, error) {
	reqID := newUUID()
	ev := c.customResourceEvent(logicalID, requestType, physicalID, reqID, props)
	if old != nil {
		old = maps(old)
		if _, ok := old["ServiceToken"]; !ok {
			old["ServiceToken"] = c.Provisioner.ARN
		}
		ev["OldResourceProperties"] = old
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return Answer{}, fmt.Errorf("encoding the %s event: %w", requestType, err)
	}
	c.beginRequest(logicalID, requestType, physicalID)
	inv, err := c.Provisioner.Invoke(ctx, payload)
	c.noteInvocation(inv)
	if err != nil {
		return Answer{}, err
	}
	got := c.cfn.ForRequest(reqID)
	if len(got) != 1 {
		return Answer{Invocation: inv}, fmt.Errorf("%s: CloudFormation received %d answers, want exactly one (the Invoke answered HTTP %d)", requestType, len(got), inv.Status)
	}
	a := got[0]
	a.Invocation = inv
	c.endRequest(logicalID, requestType, physicalID, a)
	return a, nil
}

// customResourceEvent is the event CloudFormation sends for one request.
func (c *Cloud) customResourceEvent(logicalID, requestType, physicalID, reqID string, props map[string]any) map[string]any {
	props = maps(props)
	if _, ok := props["ServiceToken"]; !ok {
		props["ServiceToken"] = c.Provisioner.ARN
	}
	ev := map[string]any{
		"RequestType":  requestType,
		"ServiceToken": props["ServiceToken"],
		// Shaped like the pre-signed S3 URL CloudFormation hands out; the signature is a
		// credential and is planted so leak scans can look for it.
		"ResponseURL": c.cfnURL + "/" + url.PathEscape(c.StackID+"|"+logicalID+"|"+reqID) +
			"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Expires=7200" +
			"&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2F" + c.Region + "%2Fs3%2Faws4_request&X-Amz-Signature=" + c.presignedSig,
		"StackId":            c.StackID,
		"RequestId":          reqID,
		"ResourceType":       ResourceType,
		"LogicalResourceId":  logicalID,
		"ResourceProperties": props,
	}
	if physicalID != "" {
		ev["PhysicalResourceId"] = physicalID
	}
	return ev
}

// beginRequest and endRequest move the resource through the states CloudFormation shows while
// a request is out (cfnemu.Begin / End), which the provisioner checks before it acts.
func (c *Cloud) beginRequest(logicalID, requestType, physicalID string) {
	c.CloudFormation.Begin(c.StackID, logicalID, ResourceType, requestType, physicalID)
}

func (c *Cloud) endRequest(logicalID, requestType, physicalID string, a Answer) {
	c.CloudFormation.End(c.StackID, logicalID, requestType, physicalID, a.Status == "SUCCESS", a.PhysicalResourceID)
}

// maps returns a shallow copy of m (never nil).
func maps(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
