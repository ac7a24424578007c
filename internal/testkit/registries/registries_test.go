package registries

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

const testSecret = "ecr-pullthroughcache/registries-test"

var testKey = ptcsecret.Key("us-east-1", "123456789012", testSecret)

// mint makes the credential of version id the way the rotator does: minted where the registry
// mints, staged by a person where it cannot.
func mint(t *testing.T, e *Emulator, id string, current []string) (Version, upstream.Minted) {
	t.Helper()
	src := e.Source(0)
	if id != "v0" {
		if c, doc, ok := e.StageNext(0); ok {
			src = doc
			if !c.Held || c.Name == "" {
				t.Fatalf("staged %s", c.Fingerprint())
			}
		}
	}
	up, err := e.Provider.New([]byte(src), upstream.Options{RegistryURL: e.URL, Standins: e.Standins()})
	if err != nil {
		t.Fatal(err)
	}
	m, err := up.Mint(context.Background(), upstream.MintRequest{SecretName: testSecret, VersionID: id, Label: ptcsecret.Label(testKey, id), CurrentStages: current})
	if err != nil {
		t.Fatalf("minting %s: %v", id, err)
	}
	return Version{ID: id, Stages: m.Stages, Value: m.Credential}, m
}

// TestEveryRegistry checks each descriptor against its own emulator and the product's upstream:
// the source secret mints (or a person's staged credential verifies), what is minted logs in and
// is on record under the name Describe gives it, a wrong source credential is refused, and
// CheckAtRest accepts two generations and finds a third.
func TestEveryRegistry(t *testing.T) {
	// ACRFederated is a mode of azure-container-registry, not a registry of its own: ByName
	// gives ACR for its name.
	// Likewise DockerHubOrg, a mode of docker-hub.
	for _, d := range append(append(All(), Federated()...), ACRFederated, DockerHubOrg) {
		t.Run(d.Title, func(t *testing.T) {
			if got, ok := ByName(d.Name); !ok || (got != d && d != ACRFederated && d != DockerHubOrg) {
				t.Fatal("ByName does not find it")
			}
			if d.Provider.Registry != d.Name || d.Title == "" || d.Short == "" || d.Prefix == "" || d.Emulates == "" || d.SourceWhat == "" {
				t.Fatalf("incomplete descriptor %+v", d)
			}
			switch {
			case d.Can.Revokes && d.RevokedHow == "":
				t.Error("revokes but does not say how")
			case !d.Can.Revokes && (d.NoRevocation == "" || d.DeleteNote == ""):
				t.Error("never revokes but does not say why")
			case !d.Can.Labels && d.Can.Revokes && d.DeleteNote == "":
				t.Error("revokes without labels but does not say what Delete does")
			case !d.Can.Mints && (d.Stage == nil || d.StagedHow == ""):
				t.Error("cannot mint but has no Stage")
			case d.Can.Replicates && !strings.Contains(d.ReplicationNote, "%s"):
				t.Error("replicates without a note")
			}
			e := d.MustStart(t, Options{})
			ctx := context.Background()
			if (e.SourceSecret == "") != d.Federated || e.CheckRepository == "" || e.Recorder == nil {
				t.Fatalf("emulator not set up: check repository %q", e.CheckRepository)
			}
			if first, again := e.Source(0), e.Source(0); !json.Valid([]byte(first)) || first != again {
				t.Fatal("Source is not stable JSON")
			}

			v0, _ := mint(t, e, "v0", nil)
			v1, _ := mint(t, e, "v1", v0.Stages)
			for _, v := range []Version{v0, v1} {
				if err := e.Login(ctx, v.Value); err != nil {
					t.Fatalf("%s does not log in: %v", v.ID, err)
				}
				if name := e.DescribeVersion(testKey, v); strings.HasPrefix(name, "(") {
					t.Errorf("%s is described as %s", v.ID, name)
				}
			}
			if p := e.CheckAtRest(testKey, v1, v0); len(p) != 0 {
				t.Errorf("two generations at rest: %v", p)
			}
			if d.Federated {
				// Nothing secret in the source, and the minted JWT only the secret knows: what the
				// emulators handed out (web identity and Chainguard tokens) is planted.
				if len(e.PlantedSecrets()) == 0 || slices.Contains(e.PlantedSecrets(), "") {
					t.Error("Planted is empty or holds an empty value")
				}
			} else if !slices.Contains(e.PlantedSecrets(), e.SourceSecret) || !slices.Contains(e.PlantedSecrets(), v1.Value.AccessToken) {
				t.Error("Planted misses the source credential or a minted one")
			}
			if d.Can.Labels {
				if l := e.Labelled(testKey); len(l) != 2 || l[v0.ID] == "" || l[v1.ID] == "" {
					t.Errorf("labelled %v", l)
				}
			}

			// A third credential while v0 and v1 are the ones in the secret: a registry that
			// revokes must not hold it (for ACR it replaced v0's slot, so v0 is gone instead).
			v2, _ := mint(t, e, "v2", v1.Stages)
			if d.Can.Revokes {
				if p := e.CheckAtRest(testKey, v1, v0); len(p) == 0 {
					t.Error("CheckAtRest accepts a third credential")
				}
			} else if p := e.CheckAtRest(testKey, v2, v1); len(p) != 0 {
				t.Errorf("a registry that never revokes holds every staged credential: %v", p)
			}
			if !d.Can.Mints && e.Staged() != 3 {
				t.Errorf("Staged %d, want 3", e.Staged())
			}

			// A wrong minting credential is refused, before or at the login check.
			up, err := e.Provider.New([]byte(e.WrongSourceJSON("PLANTED-wrong-0123456789abcdef")), upstream.Options{RegistryURL: e.URL, Standins: e.Standins()})
			if err != nil {
				t.Fatal(err)
			}
			if d.Can.Mints {
				if _, err := up.Mint(ctx, upstream.MintRequest{SecretName: testSecret, VersionID: "v9", Label: ptcsecret.Label(testKey, "v9")}); err == nil {
					t.Error("a wrong source credential minted")
				}
			} else {
				var src struct{ Username, Token string }
				_ = json.Unmarshal([]byte(e.WrongSourceJSON("PLANTED-wrong-0123456789abcdef")), &src)
				if _, err := up.Verify(ctx, ptcsecret.Value{Username: src.Username, AccessToken: src.Token}); err == nil {
					t.Error("a wrong staged credential verified")
				}
			}

			for _, p := range []string{"/v2/", "/token"} {
				if d.IsAPI(p) {
					t.Errorf("IsAPI(%q): the registry's login check is not its API", p)
				}
			}
		})
	}
}

func TestOptions(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	wrapped := 0
	e := GitLab.MustStart(t, Options{
		Now:    func() time.Time { return now },
		Faults: []Fault{{Method: "GET", Prefix: "/v2/", Status: http.StatusServiceUnavailable, Times: 1}},
		Wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { wrapped++; h.ServeHTTP(w, r) })
		},
		Source: map[string]any{"groupId": nil, "projectId": GitLabProject},
	})
	var src map[string]any
	if err := json.Unmarshal([]byte(e.Source(0)), &src); err != nil {
		t.Fatal(err)
	}
	if _, ok := src["groupId"]; ok || src["projectId"] != GitLabProject {
		t.Errorf("Options.Source not applied: %v", src)
	}
	err := e.Login(context.Background(), ptcsecret.Value{Username: "x", AccessToken: "y"})
	if err == nil || errors.Is(err, registryauth.ErrBadCredentials) {
		t.Errorf("the injected 503 did not answer the first /v2/: %v", err)
	}
	if calls := e.Calls(); wrapped == 0 || len(calls) == 0 || calls[0].Status != http.StatusServiceUnavailable {
		t.Errorf("wrapped %d, calls %+v", wrapped, calls)
	}
	if got := e.GitLab.Now(); !got.Equal(now) {
		t.Errorf("the emulator's clock is %v, want %v", got, now)
	}

	served := ""
	e2, err := DockerHub.Start(Options{Serve: func(h http.Handler) (string, error) { served = "http://127.0.0.1:1"; return served, nil }})
	if err != nil || e2.URL != served {
		t.Fatalf("Serve not used: %v %q", err, e2.URL)
	}
	e2.Close() // nothing to stop: the caller serves it
}

// TestDockerHubOrgMintsOrganizationTokens: the organization row mints organization access
// tokens that log in as the organization, and OrgTokens/PeakOrgTokens count them.
func TestDockerHubOrgMintsOrganizationTokens(t *testing.T) {
	e := DockerHubOrg.MustStart(t, Options{})
	if e.OrgTokens() != 0 || e.PeakOrgTokens() != 0 {
		t.Fatalf("fresh org: %d tokens, peak %d", e.OrgTokens(), e.PeakOrgTokens())
	}
	v1, _ := mint(t, e, "v1", nil)
	mint(t, e, "v2", []string{"v1"})
	if v1.Value.Username != HubOrg {
		t.Errorf("an organization token logs in as %q, want the organization %q", v1.Value.Username, HubOrg)
	}
	if err := e.Login(context.Background(), v1.Value); err != nil {
		t.Errorf("the organization token does not log in: %v", err)
	}
	if e.OrgTokens() != 2 || e.PeakOrgTokens() != 2 {
		t.Errorf("after two mints: %d tokens, peak %d; want 2 and 2", e.OrgTokens(), e.PeakOrgTokens())
	}
	for _, tok := range e.Hub.Tokens() {
		if !tok.Org {
			t.Errorf("a personal token %s was minted for the organization row", tok.Label)
		}
	}
	if DockerHub.Org != "" || (&Emulator{Descriptor: DockerHub}).OrgTokens() != -1 {
		t.Error("the personal Docker Hub row claims an organization")
	}
}
