package gitlab

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
)

// Whatever produced a URL — a pagination Link, a future code path that forgets nextPage's
// same-host check — the API client sends the PRIVATE-TOKEN to no host but gitlab.com (or a
// listed stand-in): the request is refused before it leaves.
func TestAPIClientRefusesAnotherHostAtTheTransport(t *testing.T) {
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer evil.Close()
	honest := httptest.NewServer(http.NotFoundHandler())
	defer honest.Close()
	g, err := New([]byte(`{"token":"PLANTED-owner-token","groupId":11,"apiUrl":"`+honest.URL+`"}`),
		upstream.Options{RegistryURL: honest.URL, Standins: pinned.NewStandins(honest.URL)})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{evil.URL + "/api/v4/groups/11/access_tokens?page=2", "https://registry.gitlab.com/api/v4/x", "https://gitlab.example.com/api/v4/x"} {
		_, err := g.call(context.Background(), "list access tokens", httpapi.Request{Method: http.MethodGet, URL: target}, nil)
		if !errors.Is(err, pinned.ErrNotPinned) {
			t.Errorf("GET %s: %v; want a pin refusal", target, err)
		}
		if err != nil && strings.Contains(err.Error(), "PLANTED") {
			t.Errorf("error %q quotes the token", err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the other host received %d requests", n)
	}
}

// ECR supports GitLab pull through cache for GitLab.com only: a self-managed GitLab is refused
// with that reason, whether it comes as the registry tag or the source's apiUrl.
func TestSelfManagedGitLabIsRefusedWithECRsReason(t *testing.T) {
	for name, tc := range map[string]struct {
		src  string
		opts upstream.Options
		want string
	}{
		"registry tag": {src: `{"token":"t","groupId":1}`, opts: upstream.Options{RegistryURL: "registry.gitlab.example.com"}, want: "tag ptc:registry-url"},
		"apiUrl":       {src: `{"token":"t","groupId":1,"apiUrl":"https://gitlab.example.com"}`, want: `field "apiUrl"`},
	} {
		_, err := New([]byte(tc.src), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), RegistryRule) {
			t.Errorf("%s: %v; want a refusal naming it with %q", name, err, RegistryRule)
		}
	}
	if _, err := New([]byte(`{"token":"t","groupId":1}`), upstream.Options{RegistryURL: "registry.gitlab.com"}); err != nil {
		t.Errorf("GitLab.com refused: %v", err)
	}
}
