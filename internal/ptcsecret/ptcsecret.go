// Package ptcsecret is the single source of truth for the managed secret: its name rules, the
// JSON document ECR reads, the tags that carry its configuration, and the labels that tie an
// upstream token to a secret version.
package ptcsecret

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// Prefix is the name prefix ECR requires: its service-linked role reads only
// secret:ecr-pullthroughcache/*.
const Prefix = "ecr-pullthroughcache/"

// Tag keys on a managed secret. The secret value must stay exactly username/accessToken, so all
// configuration lives in tags, which ECR never reads.
const (
	// TagUpstream holds one of ECR's UpstreamRegistry values (see the Upstream* constants).
	TagUpstream = "ptc:upstream"
	// TagSourceSecret holds the ARN of the source secret with the minting credential.
	TagSourceSecret = "ptc:source-secret"
	// TagManagedBy holds the owner (stack id + logical id); Delete never touches other owners.
	TagManagedBy = "ptc:managed-by"
	// TagRegistryURL holds the registry the rule pulls from; the login check goes there.
	TagRegistryURL = "ptc:registry-url"
	// TagOwnerMAC proves TagManagedBy: an HMAC of the owner and the secret's name under a key
	// only the provisioner can read (internal/provision, owner.go). A tag anyone may copy, but
	// not compute for another owner or another secret.
	TagOwnerMAC = "ptc:owner-mac"

	// RotatorTagPrefix starts the tags the rotator itself writes: facts about the versions it
	// tested, never configuration. The provisioner's Update leaves them alone, and the rotator's
	// role may write no other tag.
	RotatorTagPrefix = "ptc:rotator:"
	// TagTestedVersion holds the id of the last version whose login testSecret proved; only that
	// version may be promoted by finishSecret (a direct invoke cannot skip the test).
	TagTestedVersion = RotatorTagPrefix + "tested-version"
	// TagTestedUsername holds the username of that version, so the next setSecret can compare a
	// pending identity with the current one without reading the current value again.
	TagTestedUsername = RotatorTagPrefix + "tested-username"
	// TagTestedExpiry holds when that version's token expires (RFC 3339), when the upstream says.
	TagTestedExpiry = RotatorTagPrefix + "tested-expires-at"
	// TagTestedPulls holds the pull budget the registry reported for that version's credential
	// (Docker Hub's ratelimit-remaining) when it was tested; "unknown" when a later test could
	// not read one.
	TagTestedPulls = RotatorTagPrefix + "tested-pulls-remaining"
)

// TagValueOK reports whether v may be a Secrets Manager tag value: at most 256 characters of
// letters, digits, spaces and _ . : / = + - @ (the service refuses anything else).
func TagValueOK(v string) bool {
	if len(v) > 256 {
		return false
	}
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(" _.:/=+-@", r):
		default:
			return false
		}
	}
	return true
}

// ECR UpstreamRegistry values that need credentials and that this project manages.
const (
	UpstreamDockerHub = "docker-hub"
	UpstreamGHCR      = "github-container-registry"
	UpstreamACR       = "azure-container-registry"
	UpstreamGitLab    = "gitlab-container-registry"
	// UpstreamChainguard is minted with no stored secret (IAM outbound identity federation).
	UpstreamChainguard = "chainguard"
)

// Staging labels Secrets Manager itself manages.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// Value is the secret document ECR reads. Nothing else may be in it.
type Value struct {
	Username    string `json:"username"`
	AccessToken string `json:"accessToken"`
}

// String never shows the token, so a Value that reaches a log line or %v leaks nothing.
func (v Value) String() string {
	return fmt.Sprintf("{username:%q accessToken:<redacted>}", v.Username)
}

// GoString keeps %#v as safe as %v.
func (v Value) GoString() string { return v.String() }

// LogValue keeps slog as safe as %v: slog resolves a LogValuer before any handler sees the
// value, whereas its JSON handler would otherwise marshal the struct, token included.
func (v Value) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", v.Username), slog.String("accessToken", "<redacted>"))
}

// Marshal renders the document exactly as ECR expects it.
func (v Value) Marshal() (string, error) {
	if err := v.Validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// Validate reports a missing field by name.
func (v Value) Validate() error {
	switch {
	case strings.TrimSpace(v.Username) == "":
		return errors.New(`secret value: field "username" is empty`)
	case strings.TrimSpace(v.AccessToken) == "":
		return errors.New(`secret value: field "accessToken" is empty`)
	}
	return nil
}

// Parse reads a secret document. Errors name the field and never quote the input, which holds a
// token.
func Parse(s string) (Value, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return Value{}, errors.New("secret value: not a JSON object with \"username\" and \"accessToken\"")
	}
	var v Value
	// A fixed order (not a map) so that a document missing both fields always names the same one.
	for _, f := range []struct {
		key string
		dst *string
	}{{"username", &v.Username}, {"accessToken", &v.AccessToken}} {
		key, dst := f.key, f.dst
		r, ok := raw[key]
		if !ok {
			return Value{}, fmt.Errorf("secret value: field %q is missing", key)
		}
		if err := json.Unmarshal(r, dst); err != nil {
			return Value{}, fmt.Errorf("secret value: field %q is not a string", key)
		}
	}
	return v, v.Validate()
}

// nameRE is the part of ECR's CredentialArn pattern after "secret:".
var nameRE = regexp.MustCompile(`^ecr-pullthroughcache/[a-zA-Z0-9/_+=.@-]+$`)

// ValidateName checks a managed secret name against ECR's CredentialArn rules.
func ValidateName(name string) error {
	if !strings.HasPrefix(name, Prefix) {
		return fmt.Errorf("secret name %q must start with %q (ECR reads only that prefix)", name, Prefix)
	}
	if !nameRE.MatchString(name) || len(name) > 512 {
		return fmt.Errorf("secret name %q: after %q use only letters, digits and /_+=.@- (at most 512 characters)", name, Prefix)
	}
	return nil
}

// NameFromARN returns the secret name of a Secrets Manager ARN, without the six-character
// suffix Secrets Manager appends ("-AbCdEf"). A plain name is returned unchanged.
func NameFromARN(arn string) string {
	i := strings.Index(arn, ":secret:")
	if !strings.HasPrefix(arn, "arn:") || i < 0 {
		return arn
	}
	name := arn[i+len(":secret:"):]
	if j := strings.LastIndexByte(name, '-'); j >= 0 && len(name)-j == 7 {
		name = name[:j]
	}
	return name
}

// IsManagedName reports whether a secret name or ARN is inside the prefix ECR reads.
func IsManagedName(nameOrARN string) bool {
	return strings.HasPrefix(NameFromARN(nameOrARN), Prefix)
}

// MaxVersionIDLen is the longest ClientRequestToken Secrets Manager accepts.
const MaxVersionIDLen = 64

// Key identifies a managed secret across accounts and Regions: "<region>:<account>:<name>".
// Token labels hash the key, not the bare name: StackSets roll the same template (and so the
// same secret name) out to many Regions and accounts, often against one upstream account, and
// a label derived from the name alone would let one Region's rotation revoke another's tokens.
// Every part is known before the secret exists (the provisioner reads Region and account from
// the stack id), and the rotator reads them from the secret's ARN.
func Key(region, account, name string) string { return region + ":" + account + ":" + name }

// KeyFromARN returns the Key of a Secrets Manager secret ARN
// (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 chars>).
func KeyFromARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || parts[2] != "secretsmanager" || parts[5] != "secret" || parts[3] == "" || parts[4] == "" || parts[6] == "" {
		return "", fmt.Errorf("%q is not a Secrets Manager secret ARN", arn)
	}
	return Key(parts[3], parts[4], NameFromARN(arn)), nil
}

// LabelPrefix is the part of a token label shared by every token of one secret:
// "ptc-" + the first 12 hex digits of sha256(key) + "-", where key is Key(region, account,
// name).
func LabelPrefix(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "ptc-" + hex.EncodeToString(sum[:])[:12] + "-"
}

// Label names the upstream token of one secret version. At most 4+12+1+64 = 81 characters, which
// fits Docker Hub's 100 and GitLab's 255.
func Label(key, versionID string) string { return LabelPrefix(key) + versionID }

// VersionFromLabel returns the version id a label was made for, and false when the label does
// not belong to the secret with this key.
func VersionFromLabel(key, label string) (string, bool) {
	p := LabelPrefix(key)
	if !strings.HasPrefix(label, p) || len(label) == len(p) {
		return "", false
	}
	return label[len(p):], true
}
