package registries

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
)

// TestDockerHubSSOStagesOrgTokens: the SSO organization's owner cannot log in with the
// password, yet each staged source holds a fresh organization access token that logs in with
// the organization as username, and is on record as one a person made.
func TestDockerHubSSOStagesOrgTokens(t *testing.T) {
	e := DockerHubSSO.MustStart(t, Options{})
	ctx := context.Background()
	if err := e.Login(ctx, ptcsecret.Value{Username: HubSSOOwner, AccessToken: e.SourceSecret}); !errors.Is(err, registryauth.ErrBadCredentials) {
		t.Errorf("the owner's password logged in at the registry: %v", err)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(e.Source(0)), &first); err != nil {
		t.Fatal(err)
	}
	if first["mode"] != "staged" || first["username"] != HubSSOOrg || first["expiresAt"] == nil {
		t.Errorf("staged source = mode %v username %v expiresAt %v", first["mode"], first["username"], first["expiresAt"])
	}
	next, _, ok := e.StageNext(0)
	if !ok || next.Username != HubSSOOrg || next.Secret == first["token"] {
		t.Fatalf("StageNext = %v ok %v, want a new organization token", next.Name, ok)
	}
	for _, tok := range []string{first["token"].(string), next.Secret} {
		if err := e.Login(ctx, ptcsecret.Value{Username: HubSSOOrg, AccessToken: tok}); err != nil {
			t.Errorf("an organization access token does not log in: %v", err)
		}
	}
	if held := e.Held(""); len(held) != 2 || e.Staged() != 2 {
		t.Errorf("held %d, staged %d; want 2 and 2", len(held), e.Staged())
	}
}
