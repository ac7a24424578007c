package acr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
)

// FuzzParseSource checks acr.ParseSource on arbitrary bytes: no panic, and no error ever quotes
// a string value of the input (a source secret is all credentials). The token id's parts may be
// named (an ARM id is not a secret), never a whole value.
func FuzzParseSource(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		parse := func(b []byte) error { _, err := acr.ParseSource(b); return err }
		err := parse(raw)
		if err == nil {
			return
		}
		if !strings.HasPrefix(err.Error(), "azure-container-registry source secret: ") {
			t.Fatalf("error does not name the source secret: %v", err)
		}
		if v := fuzzEchoedValue(raw, err, parse, nil); v != "" {
			t.Fatalf("error quotes the input's value %q: %v", v, err)
		}
	})
}

// Planted values and fixed parts of the fake Azure.
const (
	fuzzClientSecret = "PLANTED-acr-client-secret-4b9d"
	fuzzARMToken     = "PLANTED-arm-bearer-token-02fe"
	fuzzTenant       = "11111111-2222-3333-4444-555555555555"
	fuzzTokenID      = "/subscriptions/66666666-7777-8888-9999-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/ptcreg/tokens/ptc-token"
	fuzzGeneratePath = "/subscriptions/66666666-7777-8888-9999-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/ptcreg/generateCredentials"
)

// FuzzTokenAPI serves fuzzed answers (status, headers, body; a first answer and one that
// repeats) on ARM's generateCredentials path and on the long-running-operation paths its
// headers may name (/op, /result), optionally on Entra ID's token path too, and runs Mint with
// each shape of AWSCURRENT's staging labels. It asserts: no panic; an error says it is Azure's,
// is not malformed, and never contains the client secret or the ARM token; a Mint that succeeds
// returns a usable password and exactly one slot label; polling stays bounded; and the bearer
// token is never sent off the management host.
func FuzzTokenAPI(f *testing.F) {
	api := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, status1 uint16, header1 string, body1 []byte, status2 uint16, body2 []byte, flags uint8) {
		script := []fuzzAnswer{fuzzAnswerOf(status1, header1, body1), fuzzAnswerOf(status2, header1, body2)}
		routes := map[string][]fuzzAnswer{
			"/" + fuzzTenant + "/oauth2/v2.0/token": {{status: 200, body: []byte(`{"access_token":"` + fuzzARMToken + `","expires_in":3599}`)}},
			fuzzGeneratePath:                        script,
			"/op":                                   script[1:],
			"/result":                               script[1:],
		}
		if flags&1 != 0 {
			routes["/"+fuzzTenant+"/oauth2/v2.0/token"] = script
		}
		raw, _ := json.Marshal(map[string]any{
			"tenantId": fuzzTenant, "clientId": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "clientSecret": fuzzClientSecret,
			"tokenId": fuzzTokenID, "authorityUrl": api.srv.URL, "managementUrl": api.srv.URL,
		})
		client := api.reset(routes)
		up, err := acr.New(raw, upstream.Options{
			HTTPClient: client, RegistryURL: api.host(),
			Now:   func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
			Sleep: func(context.Context, time.Duration) error { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		stages := [][]string{nil, {"AWSCURRENT", acr.StagePassword1}, {"AWSCURRENT", acr.StagePassword2}, {"AWSCURRENT"}}[(flags>>1)&3]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m, err := up.Mint(ctx, upstream.MintRequest{SecretName: "ecr-pullthroughcache/acr", VersionID: "v", Label: "ptc-0123456789ab-v", CurrentStages: stages})
		if err != nil {
			fuzzCheckError(t, err, []string{"Azure Resource Manager", "Microsoft Entra ID", "azure-container-registry", "ACR"}, fuzzClientSecret, fuzzARMToken)
		} else {
			if strings.TrimSpace(m.Credential.AccessToken) == "" || m.Credential.Username == "" {
				t.Fatalf("Mint succeeded with an unusable credential (username %q)", m.Credential.Username)
			}
			if len(m.Stages) != 1 || (m.Stages[0] != acr.StagePassword1 && m.Stages[0] != acr.StagePassword2) || m.Stages[0] != acr.StageFor(m.Token.ID) {
				t.Fatalf("Mint succeeded with stages %v for slot %q", m.Stages, m.Token.ID)
			}
			if slices.Contains(stages, m.Stages[0]) {
				t.Fatalf("Mint regenerated %s, the slot AWSCURRENT uses", m.Token.ID)
			}
		}
		api.check(t, 2000)
	})
}

// --- shared by this package's fuzz targets; the same helpers live in each upstream package ---

// fuzzCheckError asserts an upstream error is clear: non-empty, well-formed, bounded, names
// its upstream (one of names), and contains none of the secrets.
func fuzzCheckError(t *testing.T, err error, names []string, secrets ...string) {
	t.Helper()
	msg := err.Error()
	switch {
	case strings.TrimSpace(msg) == "":
		t.Fatal("empty error")
	case strings.Contains(msg, "%!") || strings.Contains(msg, "<nil>"):
		t.Fatalf("malformed error: %s", msg)
	case len(msg) > 1200:
		t.Fatalf("error of %d bytes: %s", len(msg), msg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Fatalf("error contains a secret: %s", msg)
		}
	}
	for _, n := range names {
		if strings.Contains(msg, n) {
			return
		}
	}
	t.Fatalf("error does not say which upstream failed: %s", msg)
}

// fuzzAnswer is one canned HTTP answer.
type fuzzAnswer struct {
	status int
	header http.Header
	body   []byte
}

// fuzzFraming are headers that would make the server lie about the message framing (a
// Content-Length longer than the body only makes the client wait for the timeout).
var fuzzFraming = map[string]bool{"Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Trailer": true, "Upgrade": true, "Keep-Alive": true}

var fuzzStatuses = []int{200, 201, 202, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503}

// fuzzAnswerOf turns fuzzed parts into an answer: a status from 200 to 599 (other values pick a
// common one), "Name: value" header lines, and the body as is.
func fuzzAnswerOf(status uint16, header string, body []byte) fuzzAnswer {
	a := fuzzAnswer{status: int(status), header: http.Header{}, body: body}
	if a.status < 200 || a.status > 599 {
		a.status = fuzzStatuses[int(status)%len(fuzzStatuses)]
	}
	for _, line := range strings.Split(header, "\n") {
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if ok && name != "" && !strings.ContainsFunc(name+value, func(r rune) bool { return r < ' ' || r == 0x7f }) &&
			!strings.ContainsAny(name, " ()<>@,;\\\"/[]?={}") && !fuzzFraming[http.CanonicalHeaderKey(name)] {
			a.header.Add(name, value)
		}
	}
	return a
}

// fuzzAPI is one httptest server for a whole fuzz run; each input sets its routes (path -> the
// answers to give in order, the last repeating) and gets a client that can reach only it.
type fuzzAPI struct {
	srv *httptest.Server

	mu       sync.Mutex
	routes   map[string][]fuzzAnswer
	calls    map[string]int
	total    int
	offHost  []string // requests with a credential to any other host
	otherReq int
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	a := &fuzzAPI{}
	a.srv = httptest.NewServer(a)
	f.Cleanup(a.srv.Close)
	return a
}

func (a *fuzzAPI) host() string { return strings.TrimPrefix(a.srv.URL, "http://") }

func (a *fuzzAPI) reset(routes map[string][]fuzzAnswer) *http.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.routes, a.calls, a.total, a.offHost = routes, map[string]int{}, 0, nil
	return &http.Client{Transport: fuzzGuard{a}}
}

func (a *fuzzAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	answers := a.routes[r.URL.Path]
	n := a.calls[r.URL.Path]
	a.calls[r.URL.Path]++
	a.total++
	a.mu.Unlock()
	if len(answers) == 0 {
		http.NotFound(w, r)
		return
	}
	ans := answers[min(n, len(answers)-1)]
	for k, vs := range ans.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(ans.status)
	_, _ = w.Write(ans.body)
}

// check asserts the calls stayed bounded and no credential left for another host.
func (a *fuzzAPI) check(t *testing.T, maxCalls int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total > maxCalls {
		t.Fatalf("%d calls to the API, more than %d", a.total, maxCalls)
	}
	if len(a.offHost) > 0 {
		t.Fatalf("a credential was sent to another host: %v", a.offHost)
	}
}

// fuzzGuard lets requests reach only the test server: anything else fails at once, and one
// that carries a credential is recorded.
type fuzzGuard struct{ a *fuzzAPI }

var errFuzzOffHost = errors.New("fuzz: only the test server is reachable")

func (g fuzzGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != g.a.host() {
		if r.Header.Get("Authorization") != "" || r.Header.Get("Private-Token") != "" {
			g.a.mu.Lock()
			g.a.offHost = append(g.a.offHost, r.URL.Redacted())
			g.a.mu.Unlock()
		}
		return nil, errFuzzOffHost
	}
	return g.a.srv.Client().Transport.RoundTrip(r)
}

// fuzzEchoedValue returns a string value of the JSON input (6 bytes or longer) that err quotes,
// or "". Every string value the error contains is confirmed with a canary: the input is parsed
// again with that one value replaced by a look-alike of the same length and character classes
// (letters and digits shifted by one), and the value counts as quoted only when the new error
// contains the look-alike too. That tells a quoted value from one that merely coincides with
// the message's own words ("secret", "password") or with a part of another value the parser may
// name (a URL's host). Values under the top-level keys in exempt are identifiers the parser
// quotes by design. Keys are never checked: "unknown field" names them on purpose.
func fuzzEchoedValue(raw []byte, err error, parse func([]byte) error, exempt []string) string {
	msg := err.Error()
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		obj, wantKey bool
		key          string
	}
	var stack []frame
	for {
		before := dec.InputOffset()
		tok, terr := dec.Token()
		if terr != nil {
			return ""
		}
		top := len(stack) - 1
		isKey := top >= 0 && stack[top].obj && stack[top].wantKey
		key := ""
		if len(stack) > 0 {
			key = stack[0].key
		}
		valueDone := false
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				stack = append(stack, frame{obj: v == '{', wantKey: v == '{'})
				continue
			}
			stack = stack[:top]
			valueDone = true
		case string:
			if isKey {
				stack[top].wantKey, stack[top].key = false, v
				continue
			}
			valueDone = true
			end := int(dec.InputOffset())
			start := int(before) + bytes.IndexByte(raw[before:end], '"')
			if len(v) >= 6 && strings.Contains(msg, v) && !slices.Contains(exempt, key) {
				canary := fuzzCanary(v)
				lit, _ := json.Marshal(canary)
				mutated := append(append(append([]byte{}, raw[:start]...), lit...), raw[end:]...)
				if canary != v && strings.Count(string(mutated), canary) == 1 {
					if err2 := parse(mutated); err2 != nil && strings.Contains(err2.Error(), canary) {
						return v
					}
				}
			}
		default:
			valueDone = true
		}
		if valueDone && len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// fuzzCanary shifts every ASCII letter and digit by one, keeping case and class.
func fuzzCanary(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == 'z':
			return 'a'
		case r == 'Z':
			return 'A'
		case r == '9':
			return '0'
		case r >= 'a' && r < 'z', r >= 'A' && r < 'Z', r >= '0' && r < '9':
			return r + 1
		}
		return r
	}, s)
}
