package provision_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/ptc-credentials/ptc-credentials/internal/customresource"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// cfnServer plays the pre-signed S3 URL CloudFormation hands out, recording every PUT body.
type cfnServer struct {
	mu     sync.Mutex
	bodies []string
}

func (c *cfnServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.bodies = append(c.bodies, string(b))
	c.mu.Unlock()
}

func (c *cfnServer) answers() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, b := range c.bodies {
		var m map[string]any
		_ = json.Unmarshal([]byte(b), &m)
		out = append(out, m)
	}
	return out
}

// TestThroughTheResponseProtocol runs the provisioner the way functions/provisioner wires it:
// behind customresource.Wrap, answering a local ResponseURL.
func TestThroughTheResponseProtocol(t *testing.T) {
	e := newEnv(t)
	e.prov.OnSecret = customresource.AddSecrets
	cf := &cfnServer{}
	srv := httptest.NewServer(cf)
	t.Cleanup(srv.Close)
	wrapped := customresource.Wrap(func(ctx context.Context, req customresource.Request) (customresource.Result, error) {
		res, err := e.prov.Handle(ctx, provision.Request{
			Type: string(req.RequestType), StackID: req.StackID, LogicalID: req.LogicalResourceID,
			PhysicalID: req.PhysicalResourceID, Properties: req.ResourceProperties, OldProperties: req.OldResourceProperties,
		})
		return customresource.Result{PhysicalResourceID: res.PhysicalID, Data: res.Data}, err
	}, customresource.Options{Logger: slog.New(slog.NewJSONHandler(e.logs, nil))})

	send := func(typ cfn.RequestType, physID string, props map[string]any) map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		before := len(cf.answers())
		err := wrapped(ctx, customresource.Request{
			RequestType: typ, ResponseURL: srv.URL + "/cfn-response?X-Amz-Signature=PLANTED-presigned-sig", StackID: e.stackID,
			RequestID: "req-" + string(typ), ResourceType: "Custom::PullThroughCache", LogicalResourceID: "Cache",
			PhysicalResourceID: physID, ResourceProperties: props,
		})
		if err != nil {
			t.Fatalf("%s: no answer was delivered: %v", typ, err)
		}
		a := cf.answers()
		if len(a) != before+1 {
			t.Fatalf("%s: %d answers, want exactly one", typ, len(a)-before)
		}
		return a[len(a)-1]
	}

	prefix := newPrefix()
	created := send(cfn.RequestCreate, "", e.props(prefix))
	if created["Status"] != "SUCCESS" {
		t.Fatalf("Create answered %v", created)
	}
	data, _ := created["Data"].(map[string]any)
	if data["SecretName"] != ptcsecret.Prefix+prefix || !strings.HasSuffix(data["RepositoryUriPrefix"].(string), "/"+prefix) {
		t.Fatalf("Create data %v", data)
	}
	physID, _ := created["PhysicalResourceId"].(string)

	// A failed Create answers FAILED with a reason naming the property and an id owning nothing.
	bad := e.props(newPrefix())
	bad["RotationSchedule"] = "rate(1 hours)"
	failed := send(cfn.RequestCreate, "", bad)
	if failed["Status"] != "FAILED" || !strings.Contains(failed["Reason"].(string), "RotationSchedule") {
		t.Fatalf("bad Create answered %v", failed)
	}
	failedID := failed["PhysicalResourceId"].(string)
	if !customresource.IsFailedCreateID(failedID) {
		t.Fatalf("failed Create id %q owns something", failedID)
	}
	if del := send(cfn.RequestDelete, failedID, bad); del["Status"] != "SUCCESS" {
		t.Fatalf("Delete of a failed Create answered %v", del)
	}

	if del := send(cfn.RequestDelete, physID, e.props(prefix)); del["Status"] != "SUCCESS" || del["PhysicalResourceId"] != physID {
		t.Fatalf("Delete answered %v", del)
	}
	e.assertGone(prefix, ptcsecret.Prefix+prefix)

	// Nothing secret in any PUT body or log line.
	var all strings.Builder
	for _, b := range cf.bodies {
		all.WriteString(b)
	}
	all.WriteString(e.logs.String())
	planted := []string{hubPassword, "PLANTED-presigned-sig"}
	for _, tk := range e.hub.Tokens() {
		planted = append(planted, tk.Secret)
	}
	for _, p := range planted {
		if strings.Contains(all.String(), p) {
			t.Errorf("planted value (starts %q) found in a response body or log", p[:6])
		}
	}
}
