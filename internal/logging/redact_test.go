package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactingKeepsRegisteredSecretsOutOfEveryPart(t *testing.T) {
	var buf bytes.Buffer
	s := &Secrets{}
	log := slog.New(Redacting(slog.NewJSONHandler(&buf, nil), s))
	const planted = "PLANTED-secret-7f3a"
	s.Add(planted, "")
	log.With("bound", "x"+planted).Info("message "+planted,
		"plain", planted,
		"quoted", `"`+planted+`"`,
		"err", errors.New("upstream said: "+planted),
		slog.Group("g", "inner", planted),
		"n", 3)
	out := buf.String()
	if strings.Contains(out, planted) {
		t.Fatalf("a registered secret reached the log: %s", out)
	}
	if strings.Count(out, "[REDACTED]") < 6 || !strings.Contains(out, `"n":3`) {
		t.Fatalf("redaction lost the record's shape: %s", out)
	}
	s.Reset()
	buf.Reset()
	log.Info(planted)
	if !strings.Contains(buf.String(), planted) {
		t.Fatal("Reset must forget the values (a new invocation starts empty)")
	}
}
