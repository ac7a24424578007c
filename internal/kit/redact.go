package kit

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Redacted replaces every secret value the Redactor finds.
const Redacted = "[REDACTED]"

// Redactor replaces known secret values in text. Besides each value as given it also matches the
// forms the value takes when quoted into an error message: Go-quoted (%q), JSON-escaped and
// URL-query-escaped, so fmt.Errorf("bad token %q", tok) is caught too.
type Redactor struct {
	forms []string
}

// NewRedactor returns a Redactor for values; empty values are ignored.
func NewRedactor(values ...string) *Redactor {
	seen := map[string]bool{}
	var forms []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			forms = append(forms, s)
		}
	}
	for _, v := range values {
		if v == "" {
			continue
		}
		add(v)
		q := strconv.Quote(v)
		add(q[1 : len(q)-1])
		if j, err := json.Marshal(v); err == nil {
			add(string(j[1 : len(j)-1]))
		}
		add(url.QueryEscape(v))
		add(url.PathEscape(v))
	}
	// Longest first, so a secret that contains another is replaced whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return &Redactor{forms: forms}
}

// Redact returns s with every known secret form replaced by Redacted.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	for _, f := range r.forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, Redacted)
		}
	}
	return s
}
