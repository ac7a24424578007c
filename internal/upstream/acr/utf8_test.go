package acr_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
)

// multiByte is "a" followed by two-byte characters, so that every even byte offset falls inside
// a character: a cut at such a limit (40, 60, 300) that ignores character boundaries splits one.
var multiByte = "a" + strings.Repeat("é", 200)

// TestFailedOperationMessageStaysValidUTF8: Azure's explanation of a failed long-running
// operation is cut to size, and the cut must not split a character. The message ends up in the
// rotation's error, which Secrets Manager, CloudWatch Logs and CloudFormation carry as JSON; a
// half character there turns into U+FFFD or breaks a strict consumer.
func TestFailedOperationMessageStaysValidUTF8(t *testing.T) {
	const tenant = "11111111-2222-3333-4444-555555555555"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/"+tenant+"/oauth2/v2.0/token":
			_, _ = w.Write([]byte(`{"access_token":"arm-token","expires_in":3599}`))
		case strings.HasSuffix(r.URL.Path, "/generateCredentials"):
			w.Header().Set("Azure-AsyncOperation", "/op")
			w.WriteHeader(http.StatusAccepted)
		case r.URL.Path == "/op":
			b, _ := json.Marshal(map[string]any{"status": "Failed", "error": map[string]string{"code": "InternalServerError", "message": multiByte}})
			_, _ = w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	raw, _ := json.Marshal(map[string]any{
		"tenantId": tenant, "clientId": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "clientSecret": "client-secret",
		"tokenId":      "/subscriptions/66666666-7777-8888-9999-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/ptcreg/tokens/ptc-token",
		"authorityUrl": srv.URL, "managementUrl": srv.URL,
	})
	up, err := acr.New(raw, upstream.Options{
		HTTPClient: srv.Client(), RegistryURL: strings.TrimPrefix(srv.URL, "http://"), Standins: pinned.NewStandins(srv.URL),
		Sleep: func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = up.Mint(context.Background(), upstream.MintRequest{SecretName: "ecr-pullthroughcache/acr", VersionID: "v", Label: "ptc-0123456789ab-v", CurrentStages: []string{"AWSCURRENT", acr.StagePassword1}})
	if err == nil || !strings.Contains(err.Error(), "the long-running operation ended Failed") {
		t.Fatalf("Mint = %v, want the failed operation reported", err)
	}
	if !utf8.ValidString(err.Error()) {
		t.Fatalf("the error is not valid UTF-8: %q", err.Error())
	}
	if !strings.Contains(err.Error(), "aéé") || !strings.HasSuffix(err.Error(), "é…") {
		t.Fatalf("the error does not end with Azure's message cut after a whole character: %q", err.Error())
	}
}

// TestTokenIDErrorQuotesWholeCharacters: ParseTokenID quotes the part at fault, cut to size;
// the quoted text must be whole characters (Go's %q would otherwise show the half character as a
// \x escape, which is not what the user typed).
func TestTokenIDErrorQuotesWholeCharacters(t *testing.T) {
	const tail = "/providers/Microsoft.ContainerRegistry/registries/ptcreg/tokens/ptc-token"
	for name, id := range map[string]string{
		"keyword":        "/" + multiByte + "/66666666-7777-8888-9999-000000000000/resourceGroups/rg" + tail,
		"subscription":   "/subscriptions/" + multiByte + "/resourceGroups/rg" + tail,
		"registry":       "/subscriptions/66666666-7777-8888-9999-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/" + multiByte + "/tokens/ptc-token",
		"token name":     "/subscriptions/66666666-7777-8888-9999-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/ptcreg/tokens/" + multiByte,
		"resource group": "/subscriptions/66666666-7777-8888-9999-000000000000/resourceGroups/" + multiByte + "." + tail,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := acr.ParseTokenID(id)
			if err == nil {
				t.Fatal("ParseTokenID accepted a bad id")
			}
			quoted := regexp.MustCompile(`"(?:[^"\\]|\\.)*"`).FindString(err.Error())
			got, uerr := strconv.Unquote(quoted)
			if uerr != nil {
				t.Fatalf("no quoted part in %q", err.Error())
			}
			if !utf8.ValidString(got) || !strings.HasPrefix(multiByte, strings.TrimSuffix(got, "…")) {
				t.Fatalf("quoted %q: not whole characters of the input", got)
			}
		})
	}
}
