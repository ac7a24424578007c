// Package logging builds the JSON slog logger both functions use, with the level taken from the
// environment (LOG_LEVEL, or AWS_LAMBDA_LOG_LEVEL that Lambda's JSON log format sets).
package logging

import (
	"io"
	"log/slog"
	"os"
	"strings"
)

// New returns a JSON logger writing to w at the level the environment asks for (default INFO).
func New(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: LevelFromEnv()}))
}

// LevelFromEnv reads LOG_LEVEL, then AWS_LAMBDA_LOG_LEVEL; unknown values mean INFO.
func LevelFromEnv() slog.Level {
	v := os.Getenv("LOG_LEVEL")
	if v == "" {
		v = os.Getenv("AWS_LAMBDA_LOG_LEVEL")
	}
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "DEBUG", "TRACE":
		return slog.LevelDebug
	case "WARN", "WARNING":
		return slog.LevelWarn
	case "ERROR", "FATAL":
		return slog.LevelError
	}
	return slog.LevelInfo
}
