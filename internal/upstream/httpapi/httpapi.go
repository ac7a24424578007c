// Package httpapi makes the JSON calls every registry token API needs: one place that honours
// 429 retry hints within the Lambda deadline, retries transient failures only where that is
// safe, and turns error answers into messages an operator can act on without ever quoting a
// credential.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
)

// Caller makes calls to one service's API.
type Caller struct {
	// Service names the API in messages, e.g. "Docker Hub".
	Service string
	// Client makes the calls; nil means http.DefaultClient (ctx still bounds every call).
	Client *http.Client
	// Now is the clock rate-limit hints are read against (an HTTP date or a Unix reset time);
	// nil means time.Now. Deadlines are always compared with the wall clock, as ctx keeps them.
	Now func() time.Time
	// Sleep waits; nil means a timer that stops when ctx ends. Tests make it instant.
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxAttempts bounds tries per call that end in a network error or 5xx; zero means 5.
	// A 429 was not processed, so it does not count: rate-limited calls are retried as long as
	// ctx's deadline allows (without a deadline, at most 4×MaxAttempts times).
	MaxAttempts int
	// Jitter returns the extra wait added to a 429's hint, so that clients told the same
	// "retry after 1 s" do not all come back in the same instant; nil means a random 0–1 s.
	Jitter func() time.Duration
	// Retries counts the retries this caller made, for logs and benchmarks.
	Retries int
}

// Request is one call.
type Request struct {
	Method string
	URL    string
	Header http.Header
	// JSON is marshalled as the body when non-nil.
	JSON any
	// Form is sent as application/x-www-form-urlencoded when non-nil.
	Form url.Values
	// Repeatable marks a POST that is safe to send again after a 5xx or a lost answer because
	// it only starts a session (a login, a token request) and changes nothing. Such calls are
	// retried like idempotent ones.
	Repeatable bool
}

// Response is what a successful call returned besides the decoded body.
type Response struct {
	StatusCode int
	Header     http.Header
}

// StatusError is an error answer from the API.
type StatusError struct {
	Service    string
	Op         string
	StatusCode int
	// Message is the API's own explanation (truncated), never a request value.
	Message string
	// body is kept for DecodeBody and never printed: an error answer can carry a secret
	// (Docker Hub's 2FA challenge token, for one).
	body []byte
}

// DecodeBody decodes the error answer's JSON body into v.
func (e *StatusError) DecodeBody(v any) error { return json.Unmarshal(e.body, v) }

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: %s: HTTP %d", e.Service, e.Op, e.StatusCode)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// IsStatus reports whether err is a StatusError with one of the codes.
func IsStatus(err error, codes ...int) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.StatusCode == c {
			return true
		}
	}
	return false
}

const maxBody = 1 << 20

// Do performs req, decoding a 2xx JSON body into out (when out is non-nil). op says what was
// being done ("create access token") and starts every error message.
func (c *Caller) Do(ctx context.Context, op string, req Request, out any) (Response, error) {
	var body []byte
	var contentType string
	switch {
	case req.JSON != nil:
		b, err := json.Marshal(req.JSON)
		if err != nil {
			return Response{}, fmt.Errorf("%s: %s: encoding request: %w", c.Service, op, err)
		}
		body, contentType = b, "application/json"
	case req.Form != nil:
		body, contentType = []byte(req.Form.Encode()), "application/x-www-form-urlencoded"
	}
	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	backoff := 250 * time.Millisecond
	var lastErr error
	throttled := 0 // attempts answered 429
	for attempt := 1; ; attempt++ {
		hr, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(body))
		if err != nil {
			return Response{}, fmt.Errorf("%s: %s: building request: %w", c.Service, op, redactURLError(err))
		}
		for k, vs := range req.Header {
			hr.Header[k] = vs
		}
		if contentType != "" {
			hr.Header.Set("Content-Type", contentType)
		}
		hr.Header.Set("Accept", "application/json")
		client := c.Client
		if client == nil {
			client = http.DefaultClient
		}
		resp, err := client.Do(hr)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return Response{}, fmt.Errorf("%s: %s: %w", c.Service, op, ctx.Err())
			}
			if errors.Is(err, pinned.ErrNotPinned) || errors.Is(err, kit.ErrRedirect) {
				// A host this upstream may not reach, or a redirect: refused before anything
				// was sent there, and no retry changes that.
				return Response{}, fmt.Errorf("%s: %s: %w", c.Service, op, redactURLError(err))
			}
			lastErr = fmt.Errorf("%s: %s: %s unreachable: %w", c.Service, op, c.Service, redactURLError(err))
			if !idempotent(req.Method) && !req.Repeatable || errors.Is(err, kit.ErrRedirect) {
				// A refused redirect is the answer, not a passing failure.
				return Response{}, lastErr
			}
			wait = backoff
		default:
			data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				if rerr != nil {
					return Response{}, fmt.Errorf("%s: %s: reading response: %w", c.Service, op, rerr)
				}
				if out != nil && len(bytes.TrimSpace(data)) > 0 {
					if err := json.Unmarshal(data, out); err != nil {
						return Response{}, fmt.Errorf("%s: %s: response is not the expected JSON: %s", c.Service, op, jsonProblem(err))
					}
				}
				return Response{StatusCode: resp.StatusCode, Header: resp.Header}, nil
			}
			lastErr = &StatusError{Service: c.Service, Op: op, StatusCode: resp.StatusCode, Message: errorMessage(data), body: data}
			switch {
			case resp.StatusCode == http.StatusTooManyRequests:
				// A 429 was not processed, so any method may be sent again.
				wait = RetryAfter(resp.Header, c.now())
				if wait <= 0 {
					wait = backoff
				}
			case resp.StatusCode >= 500 && (idempotent(req.Method) || req.Repeatable):
				wait = backoff
			default:
				return Response{}, lastErr
			}
		}
		if IsStatus(lastErr, http.StatusTooManyRequests) {
			throttled++
			wait += c.jitter()
			if _, bounded := ctx.Deadline(); !bounded && throttled >= 4*attempts {
				return Response{}, fmt.Errorf("%w (still rate limited after %d attempts)", lastErr, attempt)
			}
		} else if attempt-throttled >= attempts {
			return Response{}, fmt.Errorf("%w (gave up after %d attempts)", lastErr, attempt)
		}
		// ctx keeps its deadline in wall-clock time, so compare with that and not with c.Now,
		// which tests (and the emulators they drive) may set to any instant.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return Response{}, fmt.Errorf("%w (the retry hint of %s does not fit in the time left)", lastErr, wait.Round(time.Millisecond))
		}
		c.Retries++
		if err := c.sleep(ctx, wait); err != nil {
			return Response{}, fmt.Errorf("%w (stopped waiting: %v)", lastErr, err)
		}
		backoff = min(backoff*2, 8*time.Second)
	}
}

// Session is a login a client keeps between calls: a bearer token that may expire or be revoked
// while a warm Lambda environment still holds it (a Docker Hub session, an Entra ID token).
type Session struct {
	// Token returns the cached token, or logs in for a new one when there is none.
	Token func(ctx context.Context) (string, error)
	// Drop forgets the cached token, so that the next Token call logs in again.
	Drop func()
	// Refreshing, when set, is called just before the one retry, to log why a login follows.
	Refreshing func()
}

// DoWithSession is Do with "Authorization: Bearer <token>" from s. A 401 answer means the
// cached token expired or was revoked: DoWithSession drops it, gets a new one and repeats the
// call once. That is safe for any method, since a 401 request was not processed. A second 401
// is returned (the token is dropped again, so the next call logs in afresh rather than reusing a
// refused token), and so is every other error and every failure to get a token, unchanged.
func (c *Caller) DoWithSession(ctx context.Context, s Session, op string, req Request, out any) (Response, error) {
	for attempt := 1; ; attempt++ {
		tok, err := s.Token(ctx)
		if err != nil {
			return Response{}, err
		}
		authed := req
		authed.Header = req.Header.Clone()
		if authed.Header == nil {
			authed.Header = http.Header{}
		}
		authed.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(ctx, op, authed, out)
		if !IsStatus(err, http.StatusUnauthorized) {
			return resp, err
		}
		s.Drop()
		if attempt > 1 {
			return resp, err
		}
		if s.Refreshing != nil {
			s.Refreshing()
		}
	}
}

// jsonProblem says why a 2xx body did not decode, without quoting it: the body may hold a
// token. (errors.Unwrap of a *json.SyntaxError is nil, which printed as "<nil>".)
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("field %q is not a %s", te.Field, te.Type)
	case errors.As(err, &te):
		return fmt.Sprintf("the body is not a %s", te.Type)
	}
	return "not valid JSON"
}

func (c *Caller) jitter() time.Duration {
	if c.Jitter != nil {
		return c.Jitter()
	}
	return rand.N(time.Second)
}

func (c *Caller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Caller) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	return kit.Sleep(ctx, d)
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodPut, http.MethodPatch:
		return true
	}
	return false
}

// RetryAfter reads a rate-limit hint: Retry-After in seconds or as an HTTP date, else
// X-Retry-After as a Unix time (Docker Hub's API reference documents it so on 429), else
// X-RateLimit-Reset / X-Ratelimit-Reset as a Unix time. Zero when there is none.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0)
		}
	}
	if v := strings.TrimSpace(h.Get("X-Retry-After")); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
			return max(time.Unix(s, 0).Sub(now), 0)
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil {
			return max(time.Unix(s, 0).Sub(now), 0)
		}
	}
	return 0
}

// errorMessage pulls a human explanation out of an error body. Registries put it in different
// fields; none of them echo credentials, and the text is truncated all the same.
func errorMessage(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	if msg := valueError(m); msg != "" {
		return kit.Truncate(kit.OneLine(msg), maxMessage)
	}
	for _, k := range []string{"message", "detail", "error_description", "error", "errinfo"} {
		switch v := m[k].(type) {
		case string:
			return kit.Truncate(kit.OneLine(v), maxMessage)
		case map[string]any: // Azure: {"error":{"code","message"}}
			if s, ok := v["message"].(string); ok {
				return kit.Truncate(kit.OneLine(s), maxMessage)
			}
		}
	}
	return ""
}

// valueError renders Docker Hub's documented 400 body, ValueError {"fields": {name: [problems]},
// "text": "..."}: the text, then each field's problems in name order. Empty when m has neither.
func valueError(m map[string]any) string {
	text, _ := m["text"].(string)
	fields, _ := m["fields"].(map[string]any)
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		var problems []string
		switch v := fields[name].(type) {
		case string:
			problems = append(problems, v)
		case []any:
			for _, p := range v {
				if s, ok := p.(string); ok {
					problems = append(problems, s)
				}
			}
		}
		if len(problems) > 0 {
			parts = append(parts, name+": "+strings.Join(problems, ", "))
		}
	}
	switch {
	case len(parts) == 0:
		return strings.TrimSpace(text)
	case strings.TrimSpace(text) == "":
		return strings.Join(parts, "; ")
	}
	return strings.TrimSpace(text) + " (" + strings.Join(parts, "; ") + ")"
}

// maxMessage bounds the API's own explanation in a StatusError (in bytes, after folding it to
// one line): enough to act on, short enough for a CloudFormation Reason.
const maxMessage = 300

// redactURLError drops the query string and any userinfo from a *url.Error: some token
// endpoints carry parameters there.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
	}
	return err
}

// RedactURL returns raw without its query string, fragment and userinfo, even when raw does not
// parse (a *url.Error from url.Parse carries the whole unparsable text).
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment, u.User = "", false, "", "", nil
		return u.String()
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		authority, path, _ := strings.Cut(rest, "/")
		if at := strings.LastIndexByte(authority, '@'); at >= 0 {
			authority = authority[at+1:]
		}
		raw = scheme + "://" + authority
		if path != "" || strings.Contains(rest, "/") {
			raw += "/" + path
		}
	}
	return raw
}

// BaseURL parses an API base URL from configuration: https anywhere, plain http only for a
// loopback host (tests and the demo). field names the setting in errors, which never quote the
// value: a mistyped URL may still hold a credential (https//user:secret@host).
func BaseURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(raw), "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s: not an absolute URL; use https://host[:port]", field)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !kit.IsLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%s: plain http is accepted only for loopback hosts; use https://%s", field, u.Host)
		}
	default:
		return nil, fmt.Errorf("%s: scheme %q is not allowed; use https", field, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s: credentials in the URL are not allowed", field)
	}
	return u, nil
}
