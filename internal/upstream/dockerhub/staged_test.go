package dockerhub_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamtest"
)

// TestConformanceStaged runs the shared rotation suite in staged mode: the source secret holds
// the next token a person made, and the rotator verifies, promotes and reports it.
func TestConformanceStaged(t *testing.T) {
	upstreamtest.RunStaged(t, moto, registries.DockerHub, upstreamtest.Options{})
}

// TestStagedPersonalAndOrganizationTokens: staged mode takes a Docker Hub personal access token
// or an organization access token a person made (an SSO-enforced organization's only way), logs
// in with it at the registry (an organization token's username is the organization) and
// reports the expiry the source states and the pull budget of the account (or organization) the
// token pulls as; a token under the wrong username is refused.
func TestStagedPersonalAndOrganizationTokens(t *testing.T) {
	const (
		user, password, org = "ptc-staged-user", "PLANTED-staged-hub-pw-5c1", "acme-sso"
	)
	// The person's account and the organization each have a pull limit, which Verify reports.
	limits := map[string]int{user: 100, org: 5000}
	emu := dockerhubemu.New(dockerhubemu.Options{PullLimits: limits}, dockerhubemu.Account{Username: user, Password: password, Orgs: []string{org}})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	ctx := context.Background()
	person := func(fields string) upstream.Credential {
		t.Helper()
		d, err := dockerhub.New([]byte(`{"username":"`+user+`","password":"`+password+`","apiUrl":"`+srv.URL+`"`+fields+`}`), upstream.Options{RegistryURL: srv.URL, Standins: pinned.NewStandins(srv.URL)})
		if err != nil {
			t.Fatal(err)
		}
		m, err := d.Mint(ctx, upstream.MintRequest{SecretName: "made by a person", VersionID: "1", Label: "made-by-a-person"})
		if err != nil {
			t.Fatal(err)
		}
		return m.Credential
	}
	pat, oat := person(""), person(`,"organization":"`+org+`"`)
	if !strings.HasPrefix(oat.AccessToken, "dckr_oat_") || oat.Username != org {
		t.Fatalf("the person's organization token: %q", oat.Username)
	}
	p := providers.All()[ptcsecret.UpstreamDockerHub]
	for _, tc := range []struct {
		name string
		cred upstream.Credential
	}{{"personal access token", pat}, {"organization access token", oat}} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"mode":"staged","username":"` + tc.cred.Username + `","token":"` + tc.cred.AccessToken + `","expiresAt":"2030-01-02"}`
			up, err := p.New([]byte(doc), upstream.Options{RegistryURL: srv.URL, Standins: pinned.NewStandins(srv.URL)})
			if err != nil {
				t.Fatal(err)
			}
			m, err := up.Mint(ctx, upstream.MintRequest{Label: "l"})
			if err != nil || m.Credential != tc.cred {
				t.Fatalf("staged credential: %v", err)
			}
			v, err := up.Verify(ctx, m.Credential)
			if err != nil || !v.ExpiresAt.Equal(time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("verify: %v, expiry %v", err, v.ExpiresAt)
			}
			if want := limits[tc.cred.Username]; v.PullsRemaining == nil || *v.PullsRemaining != want || v.PullLimit == nil || *v.PullLimit != want {
				t.Fatalf("staged %s: pull budget %+v, want %d of %d", tc.name, v, want, want)
			}
			wrong := upstream.Credential{Username: "someone-else", AccessToken: tc.cred.AccessToken}
			if _, err := up.Verify(ctx, wrong); !errors.Is(err, registryauth.ErrBadCredentials) || strings.Contains(err.Error(), tc.cred.AccessToken) {
				t.Fatalf("a token under another username: %v", err)
			}
		})
	}
	if n := len(emu.Tokens()); n != 2 {
		t.Fatalf("%d tokens on Docker Hub, want the person's 2 (staged mode mints nothing)", n)
	}
}

// TestStagedRotationReportsPullBudget: a rotation of a staged Docker Hub token against an
// account with a pull limit emits PullsRemaining for the secret and tags the tested budget
// (ptc:rotator:tested-pulls-remaining), as a minted token's rotation does, with the probe a HEAD
// in the login check's handshake.
func TestStagedRotationReportsPullBudget(t *testing.T) {
	f := upstreamtest.New(t, moto, registries.Staged(registries.DockerHub), upstreamtest.Options{})
	emf := len(f.EMF.String())
	f.E.ResetCalls()
	f.Rotate()
	found := false
	for _, line := range strings.Split(f.EMF.String()[emf:], "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec[metrics.PullsRemaining] == float64(registries.HubPullLimit) && rec[metrics.SecretDimension] == f.Name {
			found = true
		}
	}
	if !found {
		t.Errorf("no PullsRemaining=%d record for %s in %s", registries.HubPullLimit, f.Name, f.EMF.String()[emf:])
	}
	d, err := f.SM.DescribeSecret(f.Ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(f.ARN)})
	if err != nil {
		t.Fatal(err)
	}
	tagged := ""
	for _, tag := range d.Tags {
		if aws.ToString(tag.Key) == ptcsecret.TagTestedPulls {
			tagged = aws.ToString(tag.Value)
		}
	}
	if tagged != strconv.Itoa(registries.HubPullLimit) {
		t.Errorf("tag %s = %q, want %d", ptcsecret.TagTestedPulls, tagged, registries.HubPullLimit)
	}
	checkPullProbe(f, f.E.Calls())
	if n := len(f.E.Calls()); n != 3 {
		t.Errorf("a staged rotation made %d upstream calls %+v, want 3 (GET /v2/, one token request, the probe HEAD)", n, f.E.Calls())
	}
}
