package ptcsecret_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// FuzzParse checks Parse on arbitrary text: no panic; a success has both fields non-blank and
// survives Marshal and Parse again unchanged; an error names "username" or "accessToken" (or
// says the text is not a JSON object) and never contains a string value of the input 6 bytes
// or longer (the document holds a token). Parse's messages are fixed texts, so a value only
// counts when it is not one of their own words.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ptcsecret.Parse(s)
		if err == nil {
			if strings.TrimSpace(v.Username) == "" || strings.TrimSpace(v.AccessToken) == "" {
				t.Fatalf("accepted a blank field: %v", v)
			}
			doc, merr := v.Marshal()
			if merr != nil {
				t.Fatalf("Marshal of a parsed value: %v", merr)
			}
			if back, perr := ptcsecret.Parse(doc); perr != nil || back != v {
				t.Fatalf("round trip changed %v into %v (%v)", v, back, perr)
			}
			if strings.Contains(v.String(), v.AccessToken) && !strings.Contains(v.Username, v.AccessToken) && !strings.Contains("{username: accessToken:<redacted>}", v.AccessToken) {
				t.Fatalf("String() shows the token: %s", v.String())
			}
			return
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "secret value: ") || !(strings.Contains(msg, `"username"`) || strings.Contains(msg, `"accessToken"`)) {
			t.Fatalf("unclear error: %s", msg)
		}
		var raw map[string]any
		if json.Unmarshal([]byte(s), &raw) != nil {
			return
		}
		for _, val := range raw {
			str, ok := val.(string)
			if ok && len(str) >= 6 && strings.Contains(msg, str) && !strings.Contains(fuzzParseMessages, str) {
				t.Fatalf("error quotes the value %q: %s", str, msg)
			}
		}
	})
}

// fuzzParseMessages is every fixed text Parse's errors are made of.
const fuzzParseMessages = `secret value: not a JSON object with "username" and "accessToken" field is missing is not a string is empty`

var fuzzLabelPrefixRE = regexp.MustCompile(`^ptc-[0-9a-f]{12}-$`)

// FuzzLabel builds a Secrets Manager ARN from fuzzed parts and checks the naming helpers
// against each other: KeyFromARN(arn) is Key(region, account, name) and NameFromARN(arn) is the
// name; IsManagedName agrees with the prefix; VersionFromLabel(key, Label(key, v)) gives v back,
// and refuses a label of another key; labels fit Docker Hub's 100 characters for real version
// ids.
func FuzzLabel(f *testing.F) {
	f.Fuzz(func(t *testing.T, region, account, name, version, otherName string) {
		if region == "" || account == "" || strings.Contains(region+account, ":") {
			return // not an ARN Secrets Manager makes
		}
		arn := fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", region, account, name)
		key, err := ptcsecret.KeyFromARN(arn)
		if err != nil {
			t.Fatalf("KeyFromARN(%q): %v", arn, err)
		}
		if want := ptcsecret.Key(region, account, name); key != want {
			t.Fatalf("KeyFromARN(%q) = %q, want %q", arn, key, want)
		}
		if got := ptcsecret.NameFromARN(arn); got != name {
			t.Fatalf("NameFromARN(%q) = %q, want %q", arn, got, name)
		}
		if !strings.HasPrefix(name, "arn:") && ptcsecret.NameFromARN(name) != name {
			t.Fatalf("NameFromARN changed the plain name %q", name)
		}
		if ptcsecret.IsManagedName(arn) != strings.HasPrefix(name, ptcsecret.Prefix) {
			t.Fatalf("IsManagedName(%q) = %v", arn, ptcsecret.IsManagedName(arn))
		}
		prefix := ptcsecret.LabelPrefix(key)
		if !fuzzLabelPrefixRE.MatchString(prefix) {
			t.Fatalf("LabelPrefix = %q", prefix)
		}
		label := ptcsecret.Label(key, version)
		got, ok := ptcsecret.VersionFromLabel(key, label)
		if version != "" && (!ok || got != version) {
			t.Fatalf("VersionFromLabel(Label(%q)) = %q, %v", version, got, ok)
		}
		if version == "" && ok {
			t.Fatal("a label without a version belongs to the secret")
		}
		if len(version) <= ptcsecret.MaxVersionIDLen && len(label) > 100 {
			t.Fatalf("label of %d characters", len(label))
		}
		other := ptcsecret.Key(region, account, otherName)
		if other != key {
			if _, ok := ptcsecret.VersionFromLabel(other, label); ok {
				t.Fatalf("the label of %q belongs to %q too", key, other)
			}
		}
	})
}
