package pinned

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

var hub = Hosts{Upstream: "docker-hub", Exact: []string{"registry-1.docker.io", "auth.docker.io", "hub.docker.com"}}
var acr = Hosts{Upstream: "azure-container-registry", Suffixes: []string{".azurecr.io", ".azurecr.cn", ".azurecr.us"}}

func TestHostsAllows(t *testing.T) {
	for _, c := range []struct {
		h    Hosts
		name string
		want bool
	}{
		{hub, "registry-1.docker.io", true},
		{hub, "REGISTRY-1.docker.io", true},
		{hub, "registry-1.docker.io.", true},
		{hub, "registry-1.docker.io.evil.example", false},
		{hub, "evilregistry-1.docker.io", false},
		{hub, "docker.io", false},
		{acr, "myreg.azurecr.io", true},
		{acr, "myreg.azurecr.cn", true},
		{acr, "azurecr.io", false},
		{acr, ".azurecr.io", false},
		{acr, "myreg.azurecr.io.evil.example", false},
		{acr, "myregazurecr.io", false},
		{acr, "a..azurecr.io", false},
		{acr, "..azurecr.io", false},
	} {
		if got := c.h.Allows(c.name); got != c.want {
			t.Errorf("%s.Allows(%q) = %v, want %v", c.h.Upstream, c.name, got, c.want)
		}
	}
}

func TestCheckURLRefusesAnotherHostAndNamesTheAllowedOnes(t *testing.T) {
	for _, raw := range []string{
		"https://evil.example", "evil.example", "http://registry-1.docker.io", "https://registry-1.docker.io:8443",
		"https://user:pw@hub.docker.com", "https://hub.docker.com?x=1", "http://127.0.0.1:4001", "https://127.0.0.1",
	} {
		_, err := CheckURL(`field "apiUrl"`, raw, hub, Standins{})
		if err == nil {
			t.Errorf("CheckURL(%q) accepted", raw)
			continue
		}
		if !strings.Contains(err.Error(), `field "apiUrl"`) {
			t.Errorf("CheckURL(%q): error %q does not name the field", raw, err)
		}
		if strings.Contains(raw, "@") && strings.Contains(err.Error(), "pw") {
			t.Errorf("CheckURL(%q): error %q quotes the password", raw, err)
		}
	}
	_, err := CheckURL("tag ptc:registry-url", "https://evil.example", hub, Standins{})
	if !errors.Is(err, ErrNotPinned) || !strings.Contains(err.Error(), "auth.docker.io, hub.docker.com or registry-1.docker.io") {
		t.Errorf("error %v does not list the allowed hosts", err)
	}
}

func TestCheckURLAcceptsPinnedHostsAndListedStandinsOnly(t *testing.T) {
	for _, raw := range []string{"https://hub.docker.com", "hub.docker.com", "https://hub.docker.com/", "https://hub.docker.com:443"} {
		if _, err := CheckURL("f", raw, hub, Standins{}); err != nil {
			t.Errorf("CheckURL(%q): %v", raw, err)
		}
	}
	s := NewStandins("http://127.0.0.1:4001")
	if _, err := CheckURL("f", "http://127.0.0.1:4001", hub, s); err != nil {
		t.Errorf("listed stand-in refused: %v", err)
	}
	if _, err := CheckURL("f", "http://127.0.0.1:4002", hub, s); err == nil {
		t.Error("an unlisted loopback port was accepted")
	}
}

func TestParseStandinsRefusesAnythingButLoopback(t *testing.T) {
	for _, v := range []string{"1", "true", "10.0.0.1:80", "evil.example:443", "127.0.0.1", "http://127.0.0.1:80", "169.254.169.254:80"} {
		if _, err := ParseStandins(v); err == nil {
			t.Errorf("ParseStandins(%q) accepted", v)
		}
	}
	s, err := ParseStandins(" 127.0.0.1:4001, [::1]:4002 ,localhost:4003")
	if err != nil {
		t.Fatal(err)
	}
	for _, hp := range []string{"127.0.0.1:4001", "[::1]:4002", "LOCALHOST:4003"} {
		if !s.Allows(hp) {
			t.Errorf("%s not allowed", hp)
		}
	}
	if s.Allows("127.0.0.1:4002") || (Standins{}).Allows("127.0.0.1:4001") {
		t.Error("unlisted endpoint allowed")
	}
	if s.String() != "127.0.0.1:4001,[::1]:4002,localhost:4003" {
		t.Errorf("String() = %q", s.String())
	}
	if empty, _ := ParseStandins(""); !empty.Empty() {
		t.Error("empty string gave stand-ins")
	}
}

// The attacker's host is a loopback server the stand-ins do not list: it must receive nothing,
// not even the request line, while the listed stand-in serves normally.
func TestTransportSendsNothingToAnUnpinnedHost(t *testing.T) {
	var attackerHits atomic.Int32
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { attackerHits.Add(1) }))
	defer attacker.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer good.Close()

	c := Client(nil, hub, NewStandins(good.URL))
	resp, err := c.Get(good.URL + "/v2/")
	if err != nil {
		t.Fatalf("stand-in: %v", err)
	}
	resp.Body.Close()

	req, _ := http.NewRequest(http.MethodPost, attacker.URL+"/v2/users/login", strings.NewReader(`{"password":"planted-password"}`))
	req.SetBasicAuth("user", "planted-token")
	_, err = c.Do(req)
	if !errors.Is(err, ErrNotPinned) {
		t.Fatalf("request to the attacker's host: err = %v, want ErrNotPinned", err)
	}
	if strings.Contains(err.Error(), "planted") {
		t.Errorf("error %q quotes a credential", err)
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the attacker's host received %d requests", n)
	}
	u, _ := url.Parse("https://hub.docker.com/v2/")
	if err := Allowed(u, hub, Standins{}); err != nil {
		t.Errorf("pinned host refused: %v", err)
	}
}

// The environment's form: a list of loopback endpoints, anything else an error naming the
// variable (the functions exit at cold start on it), never "on".
func TestParseStandinsVarNamesTheVariable(t *testing.T) {
	s, err := ParseStandinsVar("PTC_LOOPBACK_STANDINS", "")
	if err != nil || !s.Empty() {
		t.Fatalf("unset: %v, %v; want no stand-ins", s, err)
	}
	s, err = ParseStandinsVar("PTC_LOOPBACK_STANDINS", "127.0.0.1:4001,[::1]:4002")
	if err != nil || !s.Allows("127.0.0.1:4001") || !s.Allows("[::1]:4002") || s.Allows("127.0.0.1:4003") {
		t.Fatalf("list: %v, %v", s, err)
	}
	for _, v := range []string{"1", "true", "10.0.0.5:443", "127.0.0.1:4001,registry.example:443", "169.254.169.254:80", "127.0.0.1"} {
		if _, err := ParseStandinsVar("PTC_LOOPBACK_STANDINS", v); err == nil || !strings.Contains(err.Error(), "PTC_LOOPBACK_STANDINS") {
			t.Errorf("%q: error %v, want a refusal naming the variable", v, err)
		}
	}
}
