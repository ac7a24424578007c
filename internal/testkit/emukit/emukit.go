// Package emukit is what every registry emulator shares: a log of the requests it answered
// (method, path, auth scheme, status — never a credential), fault injection by method and path
// prefix, and JSON answers. Each emulator embeds a Recorder, so tests drive all of them alike.
package emukit

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Call is one answered request.
type Call struct {
	Method string
	// Path is the escaped path, as sent.
	Path string
	// Query is the raw query string (emulated APIs carry no credential there).
	Query string
	// Auth is how the request authenticated ("Bearer", "Basic", "PRIVATE-TOKEN", … or "").
	Auth string
	// Status is what the emulator answered.
	Status int
}

type fault struct {
	method, prefix string
	status, times  int
}

// Recorder logs calls and holds injected faults. Its zero value is ready; embed it.
type Recorder struct {
	mu     sync.Mutex
	calls  []Call
	faults []*fault
}

// Inject makes the next `times` requests whose method matches (empty: any) and whose path starts
// with prefix answer status instead of being served.
func (r *Recorder) Inject(method, prefix string, status, times int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, &fault{method: method, prefix: prefix, status: status, times: times})
}

// ClearFaults drops every pending injected fault.
func (r *Recorder) ClearFaults() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = nil
}

// Calls returns the recorded requests, oldest first.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// ResetCalls forgets the recorded requests.
func (r *Recorder) ResetCalls() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

// TakeFault returns the status of the first injected fault matching req (consuming one of its
// times), or 0.
func (r *Recorder) TakeFault(req *http.Request) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, f := range r.faults {
		if (f.method == "" || f.method == req.Method) && strings.HasPrefix(req.URL.Path, f.prefix) {
			f.times--
			if f.times <= 0 {
				r.faults = slices.Delete(r.faults, i, i+1)
			}
			return f.status
		}
	}
	return 0
}

// Record serves req with serve and logs the call with the status it answered; auth is how the
// request authenticated (see AuthScheme).
func (r *Recorder) Record(w http.ResponseWriter, req *http.Request, auth string, serve func(http.ResponseWriter, *http.Request)) {
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	serve(rec, req)
	r.mu.Lock()
	r.calls = append(r.calls, Call{Method: req.Method, Path: req.URL.EscapedPath(), Query: req.URL.RawQuery, Auth: auth, Status: rec.status})
	r.mu.Unlock()
}

// AuthScheme is the scheme word of the Authorization header ("Bearer", "Basic", …) or "".
func AuthScheme(req *http.Request) string {
	scheme, _, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	return scheme
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// RandHex returns 2n random hex digits, for emulated tokens and ids.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
