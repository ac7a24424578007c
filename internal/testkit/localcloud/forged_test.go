package localcloud

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestForgedRequestsChangeNothing plays someone who may invoke the provisioner but is not
// CloudFormation, against the real bootstrap: a Delete of another team's live resource, the
// same with the answer sent to the forger's host, and one claiming another account's stack.
// Each is refused, none reaches the forger, and the victim's secret and rule stay.
func TestForgedRequestsChangeNothing(t *testing.T) {
	c := startCloud(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, ok := c.Registry("docker-hub")
	if !ok {
		t.Fatal("no docker-hub registry in the local cloud")
	}
	src, err := c.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(SourcePrefix + "victim"), SecretString: aws.String(reg.Source)})
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]any{
		"EcrRepositoryPrefix": "victim", "UpstreamRegistry": reg.Name, "UpstreamRegistryUrl": reg.URL,
		"SourceSecretArn": aws.ToString(src.ARN), "RecoveryWindowInDays": "0",
	}
	created, err := c.CustomResourceFor(ctx, "Victim", "Create", "", props)
	if err != nil || created.Status != "SUCCESS" {
		t.Fatalf("the victim's Create: %v %s %s", err, created.Status, created.Reason)
	}
	secretName := created.Data["SecretName"]

	forge := func(mutate func(ev map[string]any)) (answers int, reason string, inv Invocation) {
		t.Helper()
		reqID := newUUID()
		ev := c.customResourceEvent("Victim", "Delete", created.PhysicalResourceID, reqID, props)
		mutate(ev)
		payload, _ := json.Marshal(ev)
		inv, err := c.Provisioner.Invoke(ctx, payload) // no beginRequest: CloudFormation sent nothing
		if err != nil {
			t.Fatal(err)
		}
		got := c.cfn.ForRequest(reqID)
		if len(got) == 1 {
			reason = got[0].Reason
			if got[0].Status != "FAILED" {
				t.Errorf("a forged request was answered %s", got[0].Status)
			}
		}
		return len(got), reason, inv
	}
	victimIntact := func(what string) {
		t.Helper()
		if _, err := c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretName)}); err != nil {
			t.Fatalf("after %s the victim's secret is gone: %v", what, err)
		}
		found := false
		for _, r := range c.ECRServer.Rules() {
			found = found || r.EcrRepositoryPrefix == "victim"
		}
		if !found {
			t.Fatalf("after %s the victim's rule is gone", what)
		}
	}

	n, reason, _ := forge(func(map[string]any) {})
	if n != 1 || !strings.Contains(reason, "not acted on") || !strings.Contains(reason, "CREATE_COMPLETE") {
		t.Errorf("forged Delete of a live resource: %d answers, reason %q", n, reason)
	}
	victimIntact("a forged Delete")

	n, _, inv := forge(func(ev map[string]any) {
		ev["ResponseURL"] = "https://attacker.example/collect?X-Amz-Signature=forger"
	})
	if n != 0 || !strings.Contains(string(inv.Body), "ResponseURL") {
		t.Errorf("forged Delete answered at the forger's host: %d answers at the real bucket, Invoke said %s", n, inv.Body)
	}
	victimIntact("a forged Delete with the forger's ResponseURL")

	n, reason, _ = forge(func(ev map[string]any) {
		ev["StackId"] = strings.Replace(c.StackID, c.AccountID, "210987654321", 1)
	})
	if n != 1 || !strings.Contains(reason, "210987654321") {
		t.Errorf("forged Delete for another account's stack: %d answers, reason %q", n, reason)
	}
	victimIntact("a forged Delete for another account")

	// Every stack update passes through a cleanup phase, when CloudFormation deletes replaced
	// resources under their old physical ids. A forged Delete then names an id that differs from
	// the live one as a string but names the live secret (or the live prefix): refused.
	c.CloudFormation.SetStackStatus(c.StackID, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
	for _, alias := range []string{"ptc:zzz:" + secretName, "ptc:victim:ecr-pullthroughcache/other"} {
		n, reason, _ = forge(func(ev map[string]any) {
			ev["PhysicalResourceId"] = alias
			ev["ResourceProperties"].(map[string]any)["RecoveryWindowInDays"] = "0"
		})
		if n != 1 || !strings.Contains(reason, "names part of the set CloudFormation shows as live") {
			t.Errorf("forged cleanup Delete of %s: %d answers, reason %q", alias, n, reason)
		}
		victimIntact("a forged cleanup Delete of " + alias)
	}
	c.CloudFormation.SetStackStatus(c.StackID, "UPDATE_COMPLETE")

	if len(c.CloudFormation.Calls()) == 0 {
		t.Error("the provisioner never asked CloudFormation about any request")
	}
	// The genuine Delete still works.
	deleted, err := c.CustomResourceFor(ctx, "Victim", "Delete", created.PhysicalResourceID, props)
	if err != nil || deleted.Status != "SUCCESS" {
		t.Fatalf("the genuine Delete: %v %s %s", err, deleted.Status, deleted.Reason)
	}
}
