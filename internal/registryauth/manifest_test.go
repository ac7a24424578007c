package registryauth

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestCheckAndProbeIsOneHandshake: the login check and the manifest HEAD share one handshake —
// GET /v2/, one /token request carrying both pull scopes (repeated "scope" parameters), then the
// HEAD with that bearer token: three requests. A HEAD the registry refuses is the probe's error,
// never the check's; a refused credential is ErrBadCredentials and sends no HEAD.
func TestCheckAndProbeIsOneHandshake(t *testing.T) {
	probe := Probe{Repository: "ratelimitpreview/test", Reference: "latest", Timeout: 5 * time.Second}
	scopes := []string{"repository:" + repo + ":pull", "repository:ratelimitpreview/test:pull"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	reg := newRegistry(t, func(f *fakeRegistry) { f.scopes = scopes })
	res, err := CheckAndProbe(ctx, nil, Target{Registry: reg.host(), Repository: repo}, Credential{Username: user, Password: password}, probe)
	if err != nil || res.Err != nil || res.Header.Get("Ratelimit-Remaining") != "7;w=60" {
		t.Fatalf("CheckAndProbe = %+v, %v", res, err)
	}
	got := reg.requests()
	want := []string{"GET /v2/", "GET /token", "HEAD /v2/ratelimitpreview/test/manifests/latest"}
	if len(got) != len(want) {
		t.Fatalf("requests %+v, want %v", got, want)
	}
	for i, r := range got {
		if r.Method+" "+r.Path != want[i] {
			t.Errorf("request %d = %s %s, want %s", i, r.Method, r.Path, want[i])
		}
	}
	if got[2].Auth != "Bearer pull-token" {
		t.Errorf("the HEAD carried %q, want the token of the one exchange", got[2].Auth)
	}

	t.Run("same repository asks once", func(t *testing.T) {
		reg := newRegistry(t, nil)
		res, err := CheckAndProbe(ctx, nil, Target{Registry: reg.host(), Repository: repo}, Credential{Username: user, Password: password}, Probe{Repository: repo, Reference: "latest"})
		if err != nil || res.Err != nil {
			t.Fatalf("CheckAndProbe = %+v, %v", res, err)
		}
	})
	t.Run("HEAD refused", func(t *testing.T) {
		reg := newRegistry(t, func(f *fakeRegistry) { f.scopes, f.manifestStatus = scopes, http.StatusInternalServerError })
		res, err := CheckAndProbe(ctx, nil, Target{Registry: reg.host(), Repository: repo}, Credential{Username: user, Password: password}, probe)
		if err != nil || !errors.Is(res.Err, ErrUnreachable) {
			t.Fatalf("CheckAndProbe = %+v, %v; want the check passed and the probe unreachable", res, err)
		}
	})
	t.Run("refused credential", func(t *testing.T) {
		reg := newRegistry(t, func(f *fakeRegistry) { f.scopes = scopes })
		_, err := CheckAndProbe(ctx, nil, Target{Registry: reg.host(), Repository: repo}, Credential{Username: user, Password: "wrong-" + password}, probe)
		wantKind(t, err, ErrBadCredentials)
		noLeak(t, err)
		for _, r := range reg.requests() {
			if r.Method == http.MethodHead {
				t.Errorf("a refused credential still sent %s %s", r.Method, r.Path)
			}
		}
	})
}
