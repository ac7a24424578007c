package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
)

// fakeSession hands out numbered tokens ("tok-1", "tok-2", ...) and counts what DoWithSession
// asked of it.
type fakeSession struct {
	logins, drops, refreshing int
	cached                    string
	loginErr                  error
}

func (f *fakeSession) session() Session {
	return Session{
		Token: func(context.Context) (string, error) {
			if f.cached != "" {
				return f.cached, nil
			}
			if f.loginErr != nil {
				return "", f.loginErr
			}
			f.logins++
			f.cached = "tok-" + strconv.Itoa(f.logins)
			return f.cached, nil
		},
		Drop:       func() { f.drops++; f.cached = "" },
		Refreshing: func() { f.refreshing++ },
	}
}

func authorizations(reqs []recorded) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Header.Get("Authorization"))
	}
	return out
}

func TestDoWithSessionRefreshesOnceOn401(t *testing.T) {
	rec := newRecorder(t, answer{status: 401, body: `{"detail":"Token has expired"}`}, answer{status: 200, body: `{"id":"t1"}`})
	fs := &fakeSession{cached: "stale"}
	var out struct{ ID string }
	req := Request{Method: http.MethodPost, URL: rec.srv.URL + "/v2/access-tokens", Header: http.Header{"X-Custom": {"a"}}, JSON: map[string]string{"k": "v"}}
	resp, err := newCaller(&sleeper{}).DoWithSession(context.Background(), fs.session(), "create token", req, &out)
	if err != nil || resp.StatusCode != 200 || out.ID != "t1" {
		t.Fatalf("DoWithSession = %d, %+v, %v; want the retried call's 200", resp.StatusCode, out, err)
	}
	reqs := rec.requests()
	if got := authorizations(reqs); len(got) != 2 || got[0] != "Bearer stale" || got[1] != "Bearer tok-1" {
		t.Fatalf("Authorization per request = %q, want the stale token, then a fresh one", got)
	}
	if reqs[1].Method != http.MethodPost || reqs[1].Body != `{"k":"v"}` || reqs[1].Header.Get("X-Custom") != "a" {
		t.Errorf("the retry is not the same request: %s %q X-Custom=%q", reqs[1].Method, reqs[1].Body, reqs[1].Header.Get("X-Custom"))
	}
	if fs.drops != 1 || fs.logins != 1 || fs.refreshing != 1 {
		t.Errorf("drops=%d logins=%d refreshing=%d, want 1 each", fs.drops, fs.logins, fs.refreshing)
	}
	if len(req.Header) != 1 || req.Header.Get("Authorization") != "" {
		t.Errorf("the caller's request headers were changed: %v", req.Header)
	}
}

func TestDoWithSessionDoesNotLoopOn401(t *testing.T) {
	rec := newRecorder(t, answer{status: 401, body: `{"detail":"Incorrect authentication credentials"}`})
	fs := &fakeSession{}
	_, err := newCaller(&sleeper{}).DoWithSession(context.Background(), fs.session(), "list tokens", Request{Method: http.MethodGet, URL: rec.srv.URL + "/v2/access-tokens"}, nil)
	if !IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("DoWithSession = %v, want the second 401", err)
	}
	if n := len(rec.requests()); n != 2 {
		t.Fatalf("%d requests, want 2: one retry, never more", n)
	}
	// The refused token is dropped both times, so the next call logs in afresh.
	if fs.drops != 2 || fs.logins != 2 || fs.refreshing != 1 || fs.cached != "" {
		t.Errorf("drops=%d logins=%d refreshing=%d cached=%q, want 2, 2, 1 and nothing cached", fs.drops, fs.logins, fs.refreshing, fs.cached)
	}
}

func TestDoWithSessionPassesOtherErrorsThrough(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusNotFound, http.StatusBadRequest} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			rec := newRecorder(t, answer{status: status, body: `{"message":"no"}`})
			fs := &fakeSession{cached: "good"}
			_, err := newCaller(&sleeper{}).DoWithSession(context.Background(), fs.session(), "revoke token", Request{Method: http.MethodDelete, URL: rec.srv.URL + "/v2/access-tokens/1"}, nil)
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != status || se.Message != "no" {
				t.Fatalf("DoWithSession = %v, want the %d StatusError as it was", err, status)
			}
			if n := len(rec.requests()); n != 1 || fs.drops != 0 || fs.refreshing != 0 || fs.cached != "good" {
				t.Errorf("requests=%d drops=%d refreshing=%d cached=%q: only a 401 may drop the session or retry", n, fs.drops, fs.refreshing, fs.cached)
			}
		})
	}
	t.Run("login fails", func(t *testing.T) {
		rec := newRecorder(t, answer{status: 200})
		loginErr := errors.New("the source secret's password was refused")
		fs := &fakeSession{loginErr: loginErr}
		_, err := newCaller(&sleeper{}).DoWithSession(context.Background(), fs.session(), "list tokens", Request{Method: http.MethodGet, URL: rec.srv.URL + "/v2/access-tokens"}, nil)
		if !errors.Is(err, loginErr) || err.Error() != loginErr.Error() {
			t.Fatalf("DoWithSession = %v, want the login error unchanged", err)
		}
		if n := len(rec.requests()); n != 0 {
			t.Errorf("%d requests without a token", n)
		}
	})
}
