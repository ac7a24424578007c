package customresource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ptc-credentials/ptc-credentials/internal/customresource"
)

// FuzzValidate decodes arbitrary JSON into a request and checks Validate against the rules
// restated here: it accepts exactly the requests that carry every field CloudFormation sends
// and an https (or loopback http) ResponseURL; each missing or bad field is named; every error
// wraps ErrInvalidRequest; and no error quotes the ResponseURL's query string, which is a
// credential.
func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var req customresource.Request
		if json.Unmarshal(data, &req) != nil {
			return
		}
		err := customresource.Validate(req)
		var want []string // fields that must be named
		blank := func(s string) bool { return strings.TrimSpace(s) == "" }
		if !fuzzGoodResponseURL(req.ResponseURL) {
			want = append(want, "ResponseURL")
		}
		for _, f := range []struct{ name, v string }{{"StackId", req.StackID}, {"RequestId", req.RequestID}, {"LogicalResourceId", req.LogicalResourceID}} {
			if blank(f.v) {
				want = append(want, f.name)
			}
		}
		switch req.RequestType {
		case customresource.RequestCreate:
		case customresource.RequestUpdate, customresource.RequestDelete:
			if blank(req.PhysicalResourceID) {
				want = append(want, "PhysicalResourceId")
			}
		default:
			want = append(want, "RequestType")
		}
		if len(want) == 0 {
			if err != nil {
				t.Fatalf("Validate refused a complete request: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("Validate accepted a request with bad fields %v", want)
		}
		if !errors.Is(err, customresource.ErrInvalidRequest) {
			t.Fatalf("error does not wrap ErrInvalidRequest: %v", err)
		}
		msg := err.Error()
		for _, field := range want {
			if !strings.Contains(msg, "field "+field) {
				t.Fatalf("error does not name field %s: %s", field, msg)
			}
		}
		if u, perr := url.Parse(req.ResponseURL); perr == nil && len(u.RawQuery) >= 6 &&
			!strings.Contains(string(req.RequestType), u.RawQuery) && strings.Contains(msg, u.RawQuery) {
			t.Fatalf("error quotes the ResponseURL's query string: %s", msg)
		}
	})
}

// fuzzGoodResponseURL restates the ResponseURL rule: absolute, with a host, https, or plain
// http to a loopback host.
func fuzzGoodResponseURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	// Host names are case-insensitive: LOCALHOST is loopback as much as localhost is.
	return u.Scheme == "http" && (strings.EqualFold(h, "localhost") || (ip != nil && ip.IsLoopback()))
}

// Planted secrets: one registered through Options.SecretValues, one through AddSecrets. The
// first has characters every escaping changes.
const (
	fuzzSecretOpt = `PLANTED-s3cr<e>t&"q\u 9f€`
	fuzzSecretCtx = "PLANTEDctxsecretvalue7c41"
	fuzzQuery     = "X-Amz-Signature=PLANTEDpresignedsig0a1b&X-Amz-Security-Token=PLANTEDsessiontok"
)

// fuzzForms are the shapes a secret takes when quoted into a message.
func fuzzForms(s string) []string {
	q := strconv.Quote(s)
	j, _ := json.Marshal(s)
	return []string{s, q[1 : len(q)-1], string(j[1 : len(j)-1]), url.QueryEscape(s), url.PathEscape(s)}
}

// fuzzS3 is the pre-signed URL's server: it records every PUT body.
type fuzzS3 struct {
	mu     sync.Mutex
	bodies [][]byte
	srv    *httptest.Server
}

func (s *fuzzS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, b)
	s.mu.Unlock()
}

func (s *fuzzS3) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bodies
	s.bodies = nil
	return b
}

// FuzzResponseBody runs Wrap with a handler whose Reason (any bytes, any length), Data map,
// physical id and outcome are fuzzed, and into which planted secrets are mixed in every form
// the Redactor knows. The PUT target is an httptest server. For every input that Validate
// accepts it asserts: exactly one PUT (or, only when the echoed ids alone cannot fit, an error
// saying so); the body is valid JSON of at most 4096 bytes; a failed handler answers FAILED with
// a Reason; the ids CloudFormation matches on are echoed exactly; and neither the body nor any
// log record contains a planted secret or the pre-signed query.
func FuzzResponseBody(f *testing.F) {
	s3 := &fuzzS3{}
	s3.srv = httptest.NewServer(s3)
	f.Cleanup(s3.srv.Close)
	responseURL := s3.srv.URL + "/bucket/answer?" + fuzzQuery

	f.Fuzz(func(t *testing.T, reason, stackID, requestID, logicalID, physicalID, k1, v1, k2, v2 string, filler uint16, flags uint8) {
		s3.take()
		req := customresource.Request{
			RequestType:       customresource.RequestCreate,
			RequestID:         fuzzOr(requestID, "req-1"),
			ResponseURL:       responseURL,
			ResourceType:      "Custom::PullThroughCache",
			LogicalResourceID: fuzzOr(logicalID, "PTC"),
			StackID:           fuzzOr(stackID, "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1"),
		}
		switch flags & 3 {
		case 1:
			req.RequestType = customresource.RequestUpdate
		case 2:
			req.RequestType = customresource.RequestDelete
		}
		if req.RequestType != customresource.RequestCreate {
			req.PhysicalResourceID = "ptc:prefix:ecr-pullthroughcache/prefix"
		}
		// Where the planted secrets go: 1 form of each, chosen by the flags.
		forms := fuzzForms(fuzzSecretOpt)
		form := forms[int(flags>>2)%len(forms)]
		ctxForms := fuzzForms(fuzzSecretCtx)
		ctxForm := ctxForms[int(flags>>5)%len(ctxForms)]
		data := map[string]string{}
		if k1 != "" {
			data[k1] = v1
		}
		if k2 != "" {
			data[k2] = v2 + ctxForm
		}
		for i := range int(filler % 64) {
			data[fmt.Sprintf("Attr%02d", i)] = strings.Repeat("v", int(filler>>6)%200)
		}
		mid := len(reason) / 2
		failed := flags&0x80 != 0
		handler := func(ctx context.Context, _ customresource.Request) (customresource.Result, error) {
			customresource.AddSecrets(ctx, fuzzSecretCtx)
			res := customresource.Result{PhysicalResourceID: physicalID, Data: data, NoEcho: flags&0x10 != 0}
			if failed {
				return res, errors.New(reason[:mid] + form + reason[mid:] + " " + ctxForm)
			}
			return res, nil
		}
		var logs bytes.Buffer
		opts := customresource.Options{
			Client:       s3.srv.Client(),
			Logger:       slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Sleep:        func(context.Context, time.Duration) error { return nil },
			SecretValues: func() []string { return []string{fuzzSecretOpt} },
			LogGroup:     "/aws/lambda/provisioner",
			LogStream:    "stream",
		}
		err := customresource.Wrap(handler, opts)(context.Background(), req)
		if customresource.Validate(req) != nil {
			return // covered by FuzzValidate; the answer is FAILED or not sent
		}
		bodies := s3.take()
		small := true
		for _, s := range []string{req.StackID, req.RequestID, req.LogicalResourceID, physicalID} {
			small = small && len(s) <= 128
		}
		if err != nil {
			if len(bodies) != 0 || !strings.Contains(err.Error(), "does not fit") || small {
				t.Fatalf("no answer (%d PUTs) for a request whose ids fit: %v", len(bodies), err)
			}
			fuzzNoLeak(t, "error", err.Error())
			return
		}
		if len(bodies) != 1 {
			t.Fatalf("want exactly one PUT, got %d", len(bodies))
		}
		body := bodies[0]
		if len(body) > customresource.MaxBodyBytes {
			t.Fatalf("body is %d bytes, limit %d", len(body), customresource.MaxBodyBytes)
		}
		var resp struct {
			Status, Reason, PhysicalResourceId, StackId, RequestId, LogicalResourceId string
			NoEcho                                                                    bool
			Data                                                                      map[string]string
		}
		if !json.Valid(body) || json.Unmarshal(body, &resp) != nil {
			t.Fatalf("body is not valid response JSON: %q", body)
		}
		switch {
		case resp.Status != customresource.StatusSuccess && resp.Status != customresource.StatusFailed:
			t.Fatalf("Status %q", resp.Status)
		case failed && resp.Status != customresource.StatusFailed:
			t.Fatalf("the handler failed but the answer is %s", resp.Status)
		case resp.Status == customresource.StatusFailed && strings.TrimSpace(resp.Reason) == "":
			t.Fatal("FAILED without a Reason")
		case resp.Status == customresource.StatusFailed && len(resp.Data) > 0:
			t.Fatal("FAILED with Data")
		case resp.PhysicalResourceId == "" || len(resp.PhysicalResourceId) > customresource.MaxPhysicalIDBytes:
			t.Fatalf("physical id of %d bytes", len(resp.PhysicalResourceId))
		}
		for _, id := range [][2]string{{resp.StackId, req.StackID}, {resp.RequestId, req.RequestID}, {resp.LogicalResourceId, req.LogicalResourceID}} {
			if utf8.ValidString(id[1]) && id[0] != id[1] {
				t.Fatalf("id echoed as %q, request had %q", id[0], id[1])
			}
		}
		for _, id := range []string{req.StackID, req.RequestID, req.LogicalResourceID} {
			if fuzzHasSecret(id) {
				return // CloudFormation's own ids are echoed by contract, whatever they hold
			}
		}
		fuzzNoLeak(t, "body", string(body))
		fuzzNoLeak(t, "decoded body", resp.Reason+resp.PhysicalResourceId)
		for k, v := range resp.Data {
			fuzzNoLeak(t, "Data", k+"\x00"+v)
		}
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil {
				t.Fatalf("log line is not JSON: %s", line)
			}
			for k, v := range rec {
				fuzzNoLeak(t, "log attribute "+k, fmt.Sprint(v))
			}
		}
		fuzzNoLeak(t, "logs", logs.String())
	})
}

func fuzzHasSecret(s string) bool {
	for _, secret := range []string{fuzzSecretOpt, fuzzSecretCtx} {
		for _, form := range fuzzForms(secret) {
			if strings.Contains(s, form) {
				return true
			}
		}
	}
	return false
}

func fuzzNoLeak(t *testing.T, where, s string) {
	t.Helper()
	if fuzzHasSecret(s) {
		t.Fatalf("%s contains a planted secret: %s", where, s)
	}
	for _, q := range []string{"PLANTEDpresignedsig0a1b", "PLANTEDsessiontok"} {
		if strings.Contains(s, q) {
			t.Fatalf("%s contains the pre-signed query: %s", where, s)
		}
	}
}

func fuzzOr(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
