// Package totp computes RFC 6238 time-based one-time passwords, the codes an authenticator app
// shows, so the rotator can log in to an account that has two-factor authentication.
// It is small enough that a dependency would add more than it saves.
package totp

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Code returns the 6-digit SHA-1 code with a 30-second step for secret (base32, as authenticator
// apps show it; spaces, dashes and missing padding are accepted) at time t.
func Code(secret string, t time.Time) (string, error) {
	key, err := DecodeSecret(secret)
	if err != nil {
		return "", err
	}
	return codeAt(key, uint64(t.Unix()/30), 6), nil
}

// DecodeSecret decodes a base32 TOTP secret. The error never quotes the secret.
func DecodeSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(secret)))
	s = strings.TrimRight(s, "=")
	if s == "" {
		return nil, errors.New("totpSecret is empty")
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		return nil, errors.New("totpSecret is not base32 (the letters A-Z and digits 2-7 an authenticator app shows)")
	}
	return key, nil
}

// codeAt is RFC 4226 HOTP with dynamic truncation.
func codeAt(key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}
