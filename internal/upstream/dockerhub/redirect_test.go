package dockerhub

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// A Hub API that answers the password login (either session endpoint) with 307 (which Go's client follows with the same
// method and body) must not make the password travel to the redirect's host. Plays the
// attacker who controls that host.
func TestLoginRedirectCarriesNoPassword(t *testing.T) {
	e := newEnv(t, nil)
	var got atomic.Int32
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), password) || r.Header.Get("Authorization") != "" {
			got.Add(1)
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"token":"attacker"}`))
	}))
	defer attacker.Close()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/auth/token" || r.URL.Path == "/v2/users/login" {
			http.Redirect(w, r, attacker.URL+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		e.emu.ServeHTTP(w, r)
	}))
	defer front.Close()
	up, err := Provider.New(e.source(map[string]any{"apiUrl": front.URL}), upstream.Options{RegistryURL: e.srv.URL, Standins: pinned.NewStandins(e.srv.URL, front.URL)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = up.Mint(ctx(t), upstream.MintRequest{SecretName: secret, VersionID: "v1", Label: ptcsecret.Label(key, "v1")})
	e.note(err)
	if err == nil {
		t.Fatal("Mint succeeded through a redirected login")
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("the redirect target received the password %d times", n)
	}
	if !strings.Contains(err.Error(), "follows none") || !strings.Contains(err.Error(), strings.TrimPrefix(attacker.URL, "http://")) {
		t.Fatalf("error %q: want the redirect refusal naming the other host", err)
	}
}
