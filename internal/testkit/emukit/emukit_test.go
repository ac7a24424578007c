package emukit

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRecorderLogsCallsAndInjectsFaults(t *testing.T) {
	var rec Recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.Record(w, r, AuthScheme(r), func(w http.ResponseWriter, r *http.Request) {
			if st := rec.TakeFault(r); st != 0 {
				WriteJSON(w, st, map[string]string{"detail": "injected"})
				return
			}
			WriteJSON(w, http.StatusOK, map[string]string{"id": RandHex(4)})
		})
	}))
	defer srv.Close()
	get := func(method, path string) int {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer PLANTED-credential")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	rec.Inject("POST", "/v2/tokens", 503, 2)
	rec.Inject("", "/other", 429, 1)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v2/tokens", 200},    // method does not match
		{"POST", "/v2/tokens/x", 503}, // prefix matches
		{"POST", "/v2/tokens", 503},
		{"POST", "/v2/tokens", 200}, // used up
		{"DELETE", "/other?q=1", 429},
		{"DELETE", "/other", 200},
	} {
		if got := get(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	calls := rec.Calls()
	if len(calls) != 6 || calls[1] != (Call{Method: "POST", Path: "/v2/tokens/x", Auth: "Bearer", Status: 503}) || calls[4].Query != "q=1" {
		t.Fatalf("calls %+v", calls)
	}
	for _, c := range calls {
		if c.Auth != "Bearer" {
			t.Errorf("auth scheme %q: the log must hold the scheme only", c.Auth)
		}
	}
	rec.Inject("", "/", 500, 5)
	rec.ClearFaults()
	rec.ResetCalls()
	if get("GET", "/x") != 200 || len(rec.Calls()) != 1 {
		t.Fatal("ClearFaults/ResetCalls did not reset")
	}
}

func TestSigV4Region(t *testing.T) {
	for auth, want := range map[string]string{
		"AWS4-HMAC-SHA256 Credential=AKID/20261204/eu-west-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=ab": "eu-west-1",
		"AWS4-HMAC-SHA256 Credential=AKID/20261204/us-east-1/ecr/aws4_request,SignedHeaders=host,Signature=ab":              "us-east-1",
		"AWS4-HMAC-SHA256 Credential=AKID/20261204/eu-west-1/aws4_request, SignedHeaders=host":                              "",
		"Bearer token": "",
		"":             "",
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if got := SigV4Region(r); got != want {
			t.Errorf("SigV4Region(%q) = %q, want %q", auth, got, want)
		}
	}
}
