package provision_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// TestCreateRefusesASourceThatDoesNotAllowTheSecret plays a team that names another team's
// source secret in SourceSecretArn: the provisioner must refuse before its first mint, name the
// field the source's owner would have to set, and leave nothing behind.
func TestCreateRefusesASourceThatDoesNotAllowTheSecret(t *testing.T) {
	e := newEnv(t)
	src, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("ptc-source/victim-" + rotationtest.NewID()[:8]),
		SecretString: aws.String(`{"username":"` + hubUser + `","password":"` + hubPassword + `","apiUrl":"` + e.hubURL +
			`","allowedSecrets":["ecr-pullthroughcache/victim/"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	before := len(e.hub.Tokens())
	prefix := newPrefix()
	props := e.props(prefix)
	props["SourceSecretArn"] = aws.ToString(src.ARN)
	_, err = e.do("Create", "", props, nil)
	if err == nil {
		t.Fatal("Create minted with a source secret that does not allow the managed secret")
	}
	if !strings.Contains(err.Error(), upstream.BindingField) || !strings.Contains(err.Error(), ptcsecret.Prefix+prefix) {
		t.Errorf("refusal %q: want the field %q and the managed secret named", err, upstream.BindingField)
	}
	if after := len(e.hub.Tokens()); after != before {
		t.Errorf("%d tokens in the victim's account, %d before", after, before)
	}
	e.assertGone(prefix, ptcsecret.Prefix+prefix)

	// A prefix entry allows the secrets under it, and only those.
	props["SecretName"] = "ecr-pullthroughcache/victim/" + prefix
	res := e.mustDo("Create", "", props, nil)
	e.mustDo("Delete", res.PhysicalID, props, nil)
	e.assertNoLeak()
}
