package totp

import (
	"encoding/base32"
	"testing"
	"time"
)

// RFC 6238 appendix B, SHA-1, key "12345678901234567890", truncated to 6 digits (the 8-digit
// values in the RFC end in these digits).
func TestCodeMatchesRFC6238Vectors(t *testing.T) {
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	} {
		got, err := Code(secret, time.Unix(tc.unix, 0))
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Code at %d = %s, want %s", tc.unix, got, tc.want)
		}
	}
}

func TestDecodeSecretAcceptsAppFormattingAndRejectsGarbage(t *testing.T) {
	for _, s := range []string{"GEZD GNBV GY3T QOJQ", "gezdgnbvgy3tqojq", "GEZDGNBVGY3TQOJQ===="} {
		if _, err := DecodeSecret(s); err != nil {
			t.Errorf("DecodeSecret(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "not base32 !!", "18"} {
		_, err := DecodeSecret(s)
		if err == nil {
			t.Errorf("DecodeSecret(%q) accepted garbage", s)
			continue
		}
		if s != "" && contains(err.Error(), s) {
			t.Errorf("error quotes the secret: %v", err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
