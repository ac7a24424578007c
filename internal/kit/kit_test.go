package kit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTruncateNeverSplitsACharacter(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 5, "abcde…"},
		// "é" is two bytes: a cut at byte 2 falls inside the second one and moves back.
		{"éé", 3, "é…"},
		{"日本語", 4, "日…"}, // three bytes per character
		{"日本語", 2, "…"},
		{"🙂🙂", 5, "🙂…"}, // four bytes
	}
	for _, c := range cases {
		got := Truncate(c.in, c.n)
		if got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q is not valid UTF-8", c.in, c.n, got)
		}
		if body := strings.TrimSuffix(got, Ellipsis); len(body) > c.n {
			t.Errorf("Truncate(%q, %d) kept %d bytes", c.in, c.n, len(body))
		}
	}
}

func TestCut(t *testing.T) {
	if got := Cut("日本語", 7); got != "日本" {
		t.Errorf("Cut = %q", got)
	}
	if got := Cut("abc", 0); got != "" {
		t.Errorf("Cut(…, 0) = %q", got)
	}
	if got := Cut("abc", 9); got != "abc" {
		t.Errorf("Cut(short) = %q", got)
	}
}

// FuzzTruncate: whatever the input, the result is valid UTF-8 when the input is, and no longer
// than n bytes plus the ellipsis.
func FuzzTruncate(f *testing.F) {
	f.Add("日本語テキスト", 5)
	f.Add("abc", 1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		got := Truncate(s, n)
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Truncate(%q, %d) = %q: invalid UTF-8", s, n, got)
		}
		if len(strings.TrimSuffix(got, Ellipsis)) > n && len(s) > n {
			t.Fatalf("Truncate(%q, %d) = %q: too long", s, n, got)
		}
	})
}

func TestOneLine(t *testing.T) {
	if got := OneLine(" a\n\tb  c "); got != "a b c" {
		t.Errorf("OneLine = %q", got)
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatalf("Sleep(0) = %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.9.9.9": true, "::1": true,
		"10.0.0.1": false, "example.com": false, "": false, "localhost.example.com": false, "0.0.0.0": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// A server that redirects to another host (and from https to http) must not receive the
// credential a second time, and the error names both hosts and no path or query.
func TestNoRedirectsKeepsTheCredentialHome(t *testing.T) {
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
	}))
	defer other.Close()
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal?token=planted-query", http.StatusFound)
	}))
	defer first.Close()
	c := Client(nil, 5*time.Second)
	req, _ := http.NewRequest(http.MethodGet, first.URL+"/api?page=1", nil)
	req.Header.Set("Authorization", "Bearer planted-credential")
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a redirect was followed")
	}
	if !errors.Is(err, ErrRedirect) {
		t.Fatalf("error %v is not ErrRedirect", err)
	}
	if len(seen) != 0 {
		t.Fatalf("the redirect target received %d requests", len(seen))
	}
	// http.Client wraps the refusal in a *url.Error that quotes the target URL (callers report
	// the refusal itself, or the URL through their redaction); the refusal names no query.
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("error %T is not a *url.Error", err)
	}
	msg := ue.Err.Error()
	for _, host := range []string{strings.TrimPrefix(first.URL, "http://"), strings.TrimPrefix(other.URL, "http://")} {
		if !strings.Contains(msg, host) {
			t.Errorf("error %q does not name %s", msg, host)
		}
	}
	if strings.Contains(msg, "planted-query") || strings.Contains(msg, "planted-credential") {
		t.Errorf("error %q quotes the redirect's query or the credential", msg)
	}
	// Client copies: the caller's client keeps its own policy.
	mine := &http.Client{Timeout: time.Second}
	if got := Client(mine, 0); got == mine || mine.CheckRedirect != nil || got.CheckRedirect == nil || got.Timeout != time.Second {
		t.Error("Client must return a copy with NoRedirects and the caller's settings")
	}
}

// A library that builds its own http.Client around a transport (and so follows redirects) is
// stopped at the transport: the redirect target gets nothing.
func TestRefuseRedirectsAtTheTransport(t *testing.T) {
	var hits int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer other.Close()
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/token?secret=planted", http.StatusTemporaryRedirect)
	}))
	defer first.Close()
	lib := &http.Client{Transport: RefuseRedirects(nil)} // follows redirects: CheckRedirect unset
	req, _ := http.NewRequest(http.MethodGet, first.URL+"/v2/", nil)
	req.SetBasicAuth("user", "planted-password")
	resp, err := lib.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a redirect got through the transport")
	}
	if !errors.Is(err, ErrRedirect) || hits != 0 {
		t.Fatalf("err %v, %d requests at the redirect target", err, hits)
	}
	var ue *url.Error
	if errors.As(err, &ue) && (strings.Contains(ue.Err.Error(), "planted") || !strings.Contains(ue.Err.Error(), strings.TrimPrefix(other.URL, "http://"))) {
		t.Fatalf("refusal %q: want the target host and no query", ue.Err)
	}
	if RefuseRedirects(RefuseRedirects(nil)) != RefuseRedirects(nil) {
		t.Error("wrapping twice must not stack")
	}
	// 304 Not Modified is not a redirect.
	nm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) }))
	defer nm.Close()
	if resp, err := lib.Get(nm.URL); err != nil {
		t.Fatalf("304: %v", err)
	} else {
		resp.Body.Close()
	}
}
