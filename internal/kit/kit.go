// Package kit holds the few small helpers every product package needs the same way: cutting a
// message to size without splitting a character, waiting that ends with its context, and
// telling a loopback host. It imports nothing of this project, so any package may use it.
package kit

import (
	"context"
	"net"
	"strings"
	"time"
	"unicode/utf8"
)

// Ellipsis marks where Truncate cut.
const Ellipsis = "…"

// Truncate returns s cut to at most n bytes followed by Ellipsis when it is longer, never
// splitting a UTF-8 character (the cut moves back to the start of the character it would
// split). Messages from upstreams end up in CloudFormation's Reason and in logs, where a half
// character turns into U+FFFD or breaks a JSON consumer.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Cut(s, n) + Ellipsis
}

// Cut returns the longest prefix of s that has at most n bytes and ends on a character
// boundary; s itself when it is short enough.
func Cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// OneLine folds every run of white space in s into one space, so that an upstream's multi-line
// error body reads as one log field.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Sleep waits d, or until ctx ends, whichever is first; it returns ctx.Err() in the latter case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// IsLoopback reports whether host (a name or an IP literal, without port or brackets) is the
// loopback interface: "localhost" or an address in 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
