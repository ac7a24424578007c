package ptcsecret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

// plantedToken is a distinctive value every leak check scans for.
const plantedToken = "dckr_pat_PLANTED-7f3e9a1c-token"

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Value
		wantErr string // substring; empty means success
	}{
		{name: "ok", in: `{"username":"alice","accessToken":"` + plantedToken + `"}`, want: Value{Username: "alice", AccessToken: plantedToken}},
		{name: "extra key ignored", in: `{"username":"alice","accessToken":"` + plantedToken + `","x":1}`, want: Value{Username: "alice", AccessToken: plantedToken}},
		{name: "missing username", in: `{"accessToken":"` + plantedToken + `"}`, wantErr: `field "username" is missing`},
		{name: "missing accessToken", in: `{"username":"alice"}`, wantErr: `field "accessToken" is missing`},
		{name: "both missing names username", in: `{}`, wantErr: `field "username" is missing`},
		{name: "both wrong names username", in: `{"username":1,"accessToken":2}`, wantErr: `field "username" is not a string`},
		{name: "empty username", in: `{"username":"  ","accessToken":"` + plantedToken + `"}`, wantErr: `field "username" is empty`},
		{name: "empty accessToken", in: `{"username":"alice","accessToken":""}`, wantErr: `field "accessToken" is empty`},
		{name: "username not a string", in: `{"username":42,"accessToken":"` + plantedToken + `"}`, wantErr: `field "username" is not a string`},
		{name: "accessToken not a string", in: `{"username":"alice","accessToken":["` + plantedToken + `"]}`, wantErr: `field "accessToken" is not a string`},
		{name: "accessToken null", in: `{"username":"alice","accessToken":null}`, wantErr: `field "accessToken" is empty`},
		{name: "not JSON", in: `username=alice accessToken=` + plantedToken, wantErr: "not a JSON object"},
		{name: "JSON array", in: `["alice","` + plantedToken + `"]`, wantErr: "not a JSON object"},
		{name: "truncated JSON", in: `{"username":"alice","accessToken":"` + plantedToken, wantErr: "not a JSON object"},
		{name: "empty", in: ``, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got != tt.want {
					t.Fatalf("Parse = %v, want %v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded with %v, want error containing %q", got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), plantedToken) || strings.Contains(err.Error(), "PLANTED") {
				t.Errorf("error quotes the input: %q", err)
			}
		})
	}
}

func TestParseErrorIsDeterministic(t *testing.T) {
	// Map iteration order is random; the first missing field must not be.
	for range 50 {
		if _, err := Parse(`{"other":1}`); err == nil || !strings.Contains(err.Error(), `"username"`) {
			t.Fatalf("Parse({}) = %v, want the username named first", err)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	v := Value{Username: "alice", AccessToken: plantedToken}
	s, err := v.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	// Exactly the two keys ECR reads, with ECR's spelling.
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("Marshal output is not JSON: %v", err)
	}
	if len(m) != 2 || m["username"] != "alice" || m["accessToken"] != plantedToken {
		t.Fatalf("Marshal = %s, want exactly username and accessToken", s)
	}
	back, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(Marshal()): %v", err)
	}
	if back != v {
		t.Fatalf("round trip = %v, want %v", back, v)
	}
}

func TestMarshalRefusesEmptyFields(t *testing.T) {
	for _, v := range []Value{{AccessToken: plantedToken}, {Username: "alice"}, {}} {
		if s, err := v.Marshal(); err == nil {
			t.Errorf("Marshal(%v) = %q, want an error", v, s)
		} else if strings.Contains(err.Error(), plantedToken) {
			t.Errorf("error leaks the token: %q", err)
		}
	}
}

func TestValueNeverShowsToken(t *testing.T) {
	v := Value{Username: "alice", AccessToken: plantedToken}
	outputs := map[string]string{
		"%v":         fmt.Sprintf("%v", v),
		"%+v":        fmt.Sprintf("%+v", v),
		"%#v":        fmt.Sprintf("%#v", v),
		"%v pointer": fmt.Sprintf("%v", &v),
		"%v nested":  fmt.Sprintf("%+v", struct{ V Value }{v}),
		"String":     v.String(),
		"GoString":   v.GoString(),
		//lint:ignore S1025 the point is what fmt's %s verb prints, whichever way it reaches String
		"%s": fmt.Sprintf("%s", v),
	}
	for _, mk := range []struct {
		name string
		h    func(*bytes.Buffer) slog.Handler
	}{
		{"slog JSON", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		{"slog text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	} {
		var buf bytes.Buffer
		log := slog.New(mk.h(&buf))
		log.Info("value", "secret", v)
		log.Info("pointer", "secret", &v)
		log.Info("any", slog.Any("secret", v))
		outputs[mk.name] = buf.String()
	}
	for name, out := range outputs {
		if strings.Contains(out, plantedToken) {
			t.Errorf("%s shows the token: %s", name, out)
		}
		if !strings.Contains(out, "alice") {
			t.Errorf("%s hides the username too, which helps no one: %s", name, out)
		}
		if !strings.Contains(out, "redacted") {
			t.Errorf("%s does not say the token is redacted: %s", name, out)
		}
	}
}

func TestLogValueShape(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "cred", Value{Username: "alice", AccessToken: plantedToken})
	var rec struct {
		Cred map[string]string `json:"cred"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line is not JSON: %v", err)
	}
	if rec.Cred["username"] != "alice" || rec.Cred["accessToken"] != "<redacted>" {
		t.Fatalf("cred logged as %v, want username alice and a redacted token", rec.Cred)
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "simple", in: "ecr-pullthroughcache/docker-hub"},
		{name: "nested and every allowed symbol", in: "ecr-pullthroughcache/a/b_c+d=e.f@g-h"},
		{name: "longest allowed", in: Prefix + strings.Repeat("a", 512-len(Prefix))},
		{name: "no prefix", in: "docker-hub", wantErr: "must start with"},
		{name: "prefix in the middle", in: "x/ecr-pullthroughcache/a", wantErr: "must start with"},
		{name: "wrong case prefix", in: "ECR-pullthroughcache/a", wantErr: "must start with"},
		{name: "prefix without slash", in: "ecr-pullthroughcache", wantErr: "must start with"},
		{name: "only the prefix", in: Prefix, wantErr: "use only"},
		{name: "space", in: Prefix + "a b", wantErr: "use only"},
		{name: "colon", in: Prefix + "a:b", wantErr: "use only"},
		{name: "star", in: Prefix + "a*", wantErr: "use only"},
		{name: "non-ASCII", in: Prefix + "café", wantErr: "use only"},
		{name: "too long", in: Prefix + strings.Repeat("a", 513-len(Prefix)), wantErr: "at most 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ValidateName(%q): %v", tt.in, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("ValidateName(%q) = nil, want error containing %q", tt.in, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("ValidateName(%q) = %q, want it to contain %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestNameFromARN(t *testing.T) {
	const arnBase = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
	tests := []struct{ in, want string }{
		{arnBase + "ecr-pullthroughcache/docker-hub-AbCdEf", "ecr-pullthroughcache/docker-hub"},
		{arnBase + "ecr-pullthroughcache/a/b-c-XyZ123", "ecr-pullthroughcache/a/b-c"},
		// Without the suffix (a partial ARN) the name is kept whole.
		{arnBase + "ecr-pullthroughcache/docker-hub", "ecr-pullthroughcache/docker-hub"},
		{arnBase + "ecr-pullthroughcache/my-cache", "ecr-pullthroughcache/my-cache"}, // "-cache" is 5 characters
		{"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:plain-AbCdEf", "plain"},
		{"arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:src/dh-123456", "src/dh"},
		// Plain names are returned as they are, dash-six or not.
		{"ecr-pullthroughcache/docker-hub", "ecr-pullthroughcache/docker-hub"},
		{"ecr-pullthroughcache/docker-AbCdEf", "ecr-pullthroughcache/docker-AbCdEf"},
		{"", ""},
		// Not a Secrets Manager ARN: unchanged.
		{"arn:aws:s3:::bucket-AbCdEf", "arn:aws:s3:::bucket-AbCdEf"},
	}
	for _, tt := range tests {
		if got := NameFromARN(tt.in); got != tt.want {
			t.Errorf("NameFromARN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsManagedName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"ecr-pullthroughcache/docker-hub", true},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf", true},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:source/docker-hub-AbCdEf", false},
		{"source/ecr-pullthroughcache/x", false},
		{"ecr-pullthroughcache", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsManagedName(tt.in); got != tt.want {
			t.Errorf("IsManagedName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

var labelPrefixRE = regexp.MustCompile(`^ptc-[0-9a-f]{12}-$`)

const (
	testName = "ecr-pullthroughcache/docker-hub"
	testARN  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
)

var testKey = Key("us-east-1", "123456789012", testName)

func TestKey(t *testing.T) {
	if testKey != "us-east-1:123456789012:ecr-pullthroughcache/docker-hub" {
		t.Fatalf("Key = %q", testKey)
	}
	tests := []struct {
		arn, want, wantErr string
	}{
		{arn: testARN, want: testKey},
		{arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub", want: testKey}, // partial ARN
		{arn: "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:ecr-pullthroughcache/a/b-XyZ123", want: "cn-north-1:123456789012:ecr-pullthroughcache/a/b"},
		{arn: "arn:aws:secretsmanager:eu-west-1:210987654321:secret:ecr-pullthroughcache/docker-hub-AbCdEf", want: "eu-west-1:210987654321:" + testName},
		{arn: testName, wantErr: "not a Secrets Manager secret ARN"},
		{arn: "arn:aws:s3:::bucket", wantErr: "not a Secrets Manager secret ARN"},
		{arn: "arn:aws:secretsmanager:us-east-1:123456789012:rotation:x", wantErr: "not a Secrets Manager secret ARN"},
		{arn: "arn:aws:secretsmanager::123456789012:secret:x-AbCdEf", wantErr: "not a Secrets Manager secret ARN"},
		{arn: "arn:aws:secretsmanager:us-east-1::secret:x-AbCdEf", wantErr: "not a Secrets Manager secret ARN"},
		{arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:", wantErr: "not a Secrets Manager secret ARN"},
		{arn: "", wantErr: "not a Secrets Manager secret ARN"},
	}
	for _, tt := range tests {
		got, err := KeyFromARN(tt.arn)
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("KeyFromARN(%q) = %q, %v; want %q", tt.arn, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("KeyFromARN(%q) = %q, %v; want an error containing %q", tt.arn, got, err, tt.wantErr)
		}
	}
}

func TestLabelPrefix(t *testing.T) {
	a := LabelPrefix(testKey)
	if !labelPrefixRE.MatchString(a) {
		t.Fatalf("LabelPrefix = %q, want ptc-<12 hex>-", a)
	}
	if again := LabelPrefix(testKey); again != a {
		t.Fatalf("LabelPrefix is not deterministic: %q then %q", a, again)
	}
	// The first 12 hex digits of sha256, pinned so a change of scheme (which would orphan every
	// token already minted) cannot slip in unnoticed.
	if want := "ptc-" + "2c26b46b68ff" + "-"; LabelPrefix("foo") != want {
		t.Fatalf(`LabelPrefix("foo") = %q, want %q`, LabelPrefix("foo"), want)
	}
	// The provisioner (which builds the key before the secret exists) and the rotator (which
	// reads it from the ARN) must agree.
	fromARN, err := KeyFromARN(testARN)
	if err != nil || LabelPrefix(fromARN) != a {
		t.Fatalf("LabelPrefix(KeyFromARN(arn)) = %q, %v; want %q", LabelPrefix(fromARN), err, a)
	}
	// The same secret name in another Region, another account, or another name gets its own
	// prefix, so one deployment never revokes another's tokens.
	for _, other := range []string{
		Key("eu-west-1", "123456789012", testName),
		Key("us-east-1", "210987654321", testName),
		Key("us-east-1", "123456789012", testName+"2"),
		testName,
	} {
		if LabelPrefix(other) == a {
			t.Errorf("key %q shares the prefix of %q", other, testKey)
		}
	}
}

func TestLabel(t *testing.T) {
	key := testKey
	longID := strings.Repeat("v", MaxVersionIDLen)
	tests := []struct{ version string }{
		{"c6f2b0a4-6d2e-4a59-9d1a-0f3b2e1c9a77"},
		{longID},
		{"x"},
	}
	for _, tt := range tests {
		l := Label(key, tt.version)
		if !strings.HasPrefix(l, LabelPrefix(key)) || !strings.HasSuffix(l, tt.version) {
			t.Errorf("Label(%q) = %q, want prefix + version", tt.version, l)
		}
		if len(l) > 100 {
			t.Errorf("Label(%q) is %d characters, more than Docker Hub's 100", tt.version, len(l))
		}
		if Label(key, tt.version) != l {
			t.Errorf("Label is not deterministic")
		}
		got, ok := VersionFromLabel(key, l)
		if !ok || got != tt.version {
			t.Errorf("VersionFromLabel(Label(%q)) = %q, %v", tt.version, got, ok)
		}
	}
	if n := len(Label(key, longID)); n != 81 {
		t.Errorf("label for a %d-character version id is %d characters, want 81", MaxVersionIDLen, n)
	}
}

func TestVersionFromLabel(t *testing.T) {
	key := testKey
	other := Key("eu-west-1", "123456789012", testName) // same key, another Region
	tests := []struct {
		label       string
		wantVersion string
		wantOK      bool
	}{
		{Label(key, "v1"), "v1", true},
		{Label(key, "a-b-c"), "a-b-c", true},
		{Label(other, "v1"), "", false},
		{Label(testName, "v1"), "", false}, // a label of the bare key
		{LabelPrefix(key), "", false},      // no version after the prefix
		{"my laptop token", "", false},
		{"", "", false},
		{strings.ToUpper(Label(key, "v1")), "", false},
	}
	for _, tt := range tests {
		got, ok := VersionFromLabel(key, tt.label)
		if got != tt.wantVersion || ok != tt.wantOK {
			t.Errorf("VersionFromLabel(%q) = %q, %v; want %q, %v", tt.label, got, ok, tt.wantVersion, tt.wantOK)
		}
	}
}
