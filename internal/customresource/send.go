package customresource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// minSendWindow is how long the answer may still be tried when the invocation's own deadline is
// closer than that (or gone): an answer a little late is better than none, and past the real
// deadline Lambda freezes the process anyway.
const minSendWindow = 2 * time.Second

// put sends body to the pre-signed URL, retrying network errors and 5xx with exponential backoff
// within MaxAttempts and the deadline. It returns the number of attempts made. Its errors name
// the URL by host and path only: the query string is a credential.
//
// Headers mimic aws-lambda-go's cfn sender: no Content-Type at all (the URL is signed for an
// empty content type, which is what S3 sees when the header is absent) and an explicit
// Content-Length.
func (w *wrapper) put(ctx context.Context, rawURL string, body []byte) (int, error) {
	safe := safeURL(rawURL)
	// The answer must go out even if the invocation's context is already cancelled (the guard
	// answers exactly then), so detach from cancellation but keep a deadline.
	deadline := time.Now().Add(minSendWindow)
	if d, ok := ctx.Deadline(); ok && d.After(deadline) {
		deadline = d
	}
	sendCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()

	var lastErr error
	for attempt := 1; ; attempt++ {
		retry, err := w.putOnce(sendCtx, rawURL, safe, body)
		if err == nil {
			return attempt, nil
		}
		lastErr = err
		if !retry {
			return attempt, lastErr
		}
		if attempt >= w.o.MaxAttempts {
			return attempt, fmt.Errorf("giving up after %d attempts: %w", attempt, lastErr)
		}
		wait := w.backoff(attempt)
		if deadline.Sub(w.o.Now()) <= wait {
			return attempt, fmt.Errorf("giving up after %d attempts, the deadline is near: %w", attempt, lastErr)
		}
		if err := w.o.Sleep(sendCtx, wait); err != nil {
			return attempt, fmt.Errorf("giving up after %d attempts: %w", attempt, lastErr)
		}
	}
}

// putOnce makes one attempt and says whether a failure is worth retrying.
func (w *wrapper) putOnce(ctx context.Context, rawURL, safe string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.o.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, rawURL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("building the PUT to %s: %s", safe, scrubURL(err.Error(), rawURL))
	}
	req.ContentLength = int64(len(body))
	req.Header.Del("Content-Type")
	resp, err := w.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the whole URL
		}
		return true, fmt.Errorf("PUT %s: %s", safe, scrubURL(err.Error(), rawURL))
	}
	defer resp.Body.Close()
	code := s3ErrorCode(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	msg := fmt.Sprintf("PUT %s: HTTP %d", safe, resp.StatusCode)
	if code != "" {
		msg += " " + code
	}
	return resp.StatusCode >= 500, errors.New(msg)
}

// backoff is the wait after failed attempt n (1-based): BaseBackoff doubling, capped.
func (w *wrapper) backoff(n int) time.Duration {
	d := w.o.BaseBackoff
	for i := 1; i < n && d < w.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, w.o.MaxBackoff)
}

// s3ErrorCode drains the body and returns S3's <Code> element, if any. Nothing else from the
// body is kept: S3's SignatureDoesNotMatch answer quotes the canonical request, query string
// (security token) included.
func s3ErrorCode(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 8<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10)) // let the connection be reused
	s := string(b)
	i := strings.Index(s, "<Code>")
	if i < 0 {
		return ""
	}
	s = s[i+len("<Code>"):]
	j := strings.Index(s, "</Code>")
	if j < 0 || j > 64 {
		return ""
	}
	for _, c := range s[:j] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.') {
			return ""
		}
	}
	return s[:j]
}

// safeURL is the ResponseURL as it may appear in logs and errors: scheme, host and path only.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable ResponseURL)"
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// scrubURL removes the ResponseURL's query string (and the whole URL) from a message, in case a
// lower layer quoted it.
func scrubURL(msg, raw string) string {
	if raw == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, raw, safeURL(raw))
	if u, err := url.Parse(raw); err == nil && u.RawQuery != "" {
		msg = strings.ReplaceAll(msg, u.RawQuery, "[query redacted]")
	}
	return msg
}
