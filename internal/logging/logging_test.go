package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestLevelFromEnv(t *testing.T) {
	for _, tc := range []struct {
		logLevel, lambdaLevel string
		want                  slog.Level
	}{
		{"", "", slog.LevelInfo},
		{"debug", "", slog.LevelDebug},
		{"WARN", "DEBUG", slog.LevelWarn},
		{"", "ERROR", slog.LevelError},
		{"nonsense", "", slog.LevelInfo},
	} {
		t.Setenv("LOG_LEVEL", tc.logLevel)
		t.Setenv("AWS_LAMBDA_LOG_LEVEL", tc.lambdaLevel)
		if got := LevelFromEnv(); got != tc.want {
			t.Errorf("LOG_LEVEL=%q AWS_LAMBDA_LOG_LEVEL=%q: %v, want %v", tc.logLevel, tc.lambdaLevel, got, tc.want)
		}
	}
}

func TestNewWritesJSONAtTheLevel(t *testing.T) {
	t.Setenv("LOG_LEVEL", "WARN")
	t.Setenv("AWS_LAMBDA_LOG_LEVEL", "")
	var buf bytes.Buffer
	log := New(&buf)
	log.Info("dropped")
	log.Warn("kept", "secret", "ecr-pullthroughcache/x")
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
		t.Fatalf("want exactly one JSON record, got %q", buf.String())
	}
	if rec["msg"] != "kept" || rec["level"] != "WARN" {
		t.Errorf("record %v", rec)
	}
}
