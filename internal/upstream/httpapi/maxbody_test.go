package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hugeBody is how much a flooding server offers: far beyond maxBody and beyond what loopback
// socket buffers can hold, so a server that manages to write all of it proves the client read
// all of it. It is finite so that a client without the cap ends (with the whole body read)
// instead of hanging the test.
const hugeBody = 32 << 20

// flooder is a server that answers one JSON document of hugeBody bytes: {"token":"aaaa…"}.
// It counts what it wrote and notes whether the client hung up before the end, and closes done
// when its handler returns, so a test can wait for that without a clock.
type flooder struct {
	status  int
	written atomic.Int64
	hungUp  atomic.Bool
	done    chan struct{}
}

func (f *flooder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer close(f.done)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	chunk := []byte(strings.Repeat("a", 64<<10))
	write := func(b []byte) bool {
		n, err := w.Write(b)
		f.written.Add(int64(n))
		if err != nil || r.Context().Err() != nil {
			f.hungUp.Store(true)
			return false
		}
		return true
	}
	if !write([]byte(`{"token":"`)) {
		return
	}
	for f.written.Load() < hugeBody {
		if !write(chunk) {
			return
		}
	}
	write([]byte(`"}`))
}

// Guard: the 1 MiB cap on response bodies. A server that floods a 2xx or an error answer gets
// at most maxBody bytes read: the 2xx is then truncated JSON, reported as such (without quoting
// it), an error answer keeps at most maxBody bytes, and the client hangs up rather than reading
// on (the server cannot finish writing).
func TestDoReadsAtMostMaxBody(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		check  func(t *testing.T, err error)
	}{
		{"2xx is cut and fails to decode", http.StatusOK, func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "not the expected JSON") {
				t.Fatalf("err = %v, want the truncated body refused as JSON", err)
			}
		}},
		{"error answer keeps at most maxBody", http.StatusBadRequest, func(t *testing.T, err error) {
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
				t.Fatalf("err = %v, want the 400", err)
			}
			if len(se.body) > maxBody {
				t.Fatalf("kept %d bytes of the error body, want at most %d", len(se.body), maxBody)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flooder{status: tc.status, done: make(chan struct{})}
			srv := httptest.NewServer(f)
			t.Cleanup(srv.Close)
			// No client timeout: the bound under test is the cap, not a clock.
			c := &Caller{Service: "Test API", Client: &http.Client{}, Sleep: (&sleeper{}).sleep, Jitter: func() time.Duration { return 0 }}
			var out struct{ Token string }
			_, err := c.Do(context.Background(), "flood", Request{Method: http.MethodGet, URL: srv.URL}, &out)
			tc.check(t, err)
			if len(out.Token) != 0 {
				t.Fatalf("decoded a %d-byte token from an oversized body", len(out.Token))
			}
			if err != nil && strings.Contains(err.Error(), "aaaaaaaa") {
				t.Fatal("the error quotes the body")
			}
			<-f.done
			if !f.hungUp.Load() {
				t.Fatalf("the server wrote all %d bytes: the client read past the cap", f.written.Load())
			}
		})
	}
}
