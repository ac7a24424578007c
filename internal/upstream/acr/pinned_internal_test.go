package acr

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

// Whatever produced a URL — a long-running operation's Location or Azure-AsyncOperation
// header, a future code path that forgets pollURL's same-host check — the Entra ID and ARM
// clients refuse a request to any host but their cloud's own (or a listed stand-in) before a
// byte leaves: the bearer token and the client secret never reach it.
func TestAzureClientsRefuseAnotherHostAtTheTransport(t *testing.T) {
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer evil.Close()
	honest := httptest.NewServer(http.NotFoundHandler())
	defer honest.Close()
	src := `{"tenantId":"0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5","clientId":"5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9","clientSecret":"PLANTED-client-secret",` +
		`"tokenId":"/subscriptions/9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/ptcreg/tokens/pull",` +
		`"authorityUrl":"` + honest.URL + `","managementUrl":"` + honest.URL + `"}`
	a, err := New([]byte(src), upstream.Options{RegistryURL: honest.URL, Standins: pinned.NewStandins(honest.URL)})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*httpapi.Caller{"Entra ID": a.entra, "ARM": a.mgmt} {
		for _, target := range []string{evil.URL + "/operationStatuses/1", "https://management.azure.com.evil.example/x", "https://login.microsoftonline.com/t/oauth2/v2.0/token"} {
			if name == "Entra ID" && strings.Contains(target, "login.microsoftonline.com/") {
				continue // Entra ID's own host: allowed (and not reachable here)
			}
			_, err := c.Do(context.Background(), "poll", httpapi.Request{Method: http.MethodGet, URL: target,
				Header: http.Header{"Authorization": {"Bearer PLANTED-arm-token"}}}, nil)
			if !errors.Is(err, pinned.ErrNotPinned) {
				t.Errorf("%s client, GET %s: %v; want a pin refusal", name, target, err)
			}
			if err != nil && strings.Contains(err.Error(), "PLANTED") {
				t.Errorf("error %q quotes a credential", err)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the other host received %d requests", n)
	}
}

// The source's fields and the login server's cloud: Entra ID and ARM must be that cloud's, the
// scope its ARM's, and the login server an ACR host of one of the three clouds.
func TestSourceHostsFollowTheLoginServersCloud(t *testing.T) {
	base := `"tenantId":"0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5","clientId":"5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9","clientSecret":"s",` +
		`"tokenId":"/subscriptions/9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/ptcreg/tokens/pull"`
	for _, tc := range []struct {
		name, fields, want string
		authority, mgmt    string
	}{
		{name: "public by default", authority: "https://login.microsoftonline.com", mgmt: "https://management.azure.com"},
		{name: "China by suffix", fields: `,"loginServer":"ptcreg.azurecr.cn"`, authority: "https://login.chinacloudapi.cn", mgmt: "https://management.chinacloudapi.cn"},
		{name: "China's newer Entra host", fields: `,"loginServer":"ptcreg.azurecr.cn","authorityUrl":"https://login.partner.microsoftonline.cn"`, authority: "https://login.partner.microsoftonline.cn", mgmt: "https://management.chinacloudapi.cn"},
		{name: "US Government by suffix", fields: `,"loginServer":"ptcreg.azurecr.us"`, authority: "https://login.microsoftonline.us", mgmt: "https://management.usgovcloudapi.net"},
		{name: "login server of no ACR cloud", fields: `,"loginServer":"registry.example.com"`, want: `field "loginServer"`},
		{name: "lookalike login server", fields: `,"loginServer":"ptcreg.azurecr.io.evil.example"`, want: `field "loginServer"`},
		{name: "another cloud's ARM", fields: `,"managementUrl":"https://management.chinacloudapi.cn"`, want: `field "managementUrl"`},
		{name: "another cloud's Entra ID", fields: `,"loginServer":"ptcreg.azurecr.us","authorityUrl":"https://login.microsoftonline.com"`, want: `field "authorityUrl"`},
		{name: "foreign authority", fields: `,"authorityUrl":"https://login.evil.example"`, want: "login.microsoftonline.com"},
		{name: "scope of another cloud", fields: `,"managementScope":"https://management.usgovcloudapi.net/.default"`, want: `field "managementScope" must be https://management.azure.com/.default`},
		{name: "registry tag on another ACR registry", fields: `,"loginServer":"ptcreg.azurecr.io"`, want: "tag ptc:registry-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := upstream.Options{}
			if tc.name == "registry tag on another ACR registry" {
				opts.RegistryURL = "attacker.azurecr.io"
			}
			a, err := New([]byte("{"+base+tc.fields+"}"), opts)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("New = %v; want an error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.authority != tc.authority || a.management != tc.mgmt {
				t.Fatalf("authority %s, management %s; want %s, %s", a.authority, a.management, tc.authority, tc.mgmt)
			}
		})
	}
}
