package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// SecretReader is the one Secrets Manager call FromSource makes; both engines' clients have it.
type SecretReader interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SourceRequest says which upstream FromSource builds, and from which source secret.
type SourceRequest struct {
	// Name is how the caller's user knows the ARN, and starts every error: "SourceSecretArn"
	// for the provisioner (the property a template sets), "source secret" for the rotator (the
	// ptc:source-secret tag).
	Name string
	// Registry is the ECR UpstreamRegistry value (the ptc:upstream tag or UpstreamRegistry).
	Registry string
	// ARN is the source secret's ARN.
	ARN string
	// Providers are the registries the caller supports, keyed by Registry.
	Providers map[string]Provider
	// Options are handed to the provider's New.
	Options Options
	// ForSecret is the managed secret that will hold what the upstream mints or verifies: the
	// source secret's BindingField must allow it, or FromSource refuses (ErrUnusableSource). It
	// is required unless RevokeOnly is set.
	ForSecret string
	// RevokeOnly builds the upstream only to revoke tokens a managed secret already holds (the
	// provisioner's Delete): no binding check, so a source whose owner withdrew a secret's
	// permission can still take back what was minted under it.
	RevokeOnly bool
	// Seen, when not nil, is handed the source secret's JSON before anything parses it, so that a
	// caller can keep every value in it out of its answers (the provisioner's OnSecret). It must
	// not log or keep the text anywhere else.
	Seen func(doc string)
}

// ErrUnusableSource is matched (errors.Is) by every FromSource error about what the source
// secret holds or names — no string value, JSON the registry refuses, an unsupported registry —
// and by no failure to read it. A retry cannot fix the former until someone edits the source
// secret; the latter may be transient. Its text never appears in a message.
var ErrUnusableSource = errors.New("the source secret is unusable")

// unusable marks err as ErrUnusableSource without changing its message.
type unusable struct{ error }

// Is makes errors.Is(err, ErrUnusableSource) true.
func (u unusable) Is(target error) bool { return target == ErrUnusableSource }

// Unwrap keeps the cause reachable for errors.Is/As.
func (u unusable) Unwrap() error { return u.error }

// FromSource reads a source secret and builds req.Registry's upstream from it: the one way both
// engines (and the test harness) get an Upstream. Every error names req.Name and the ARN (a
// failed read starts with "reading"), says what is wrong (the failed read, the missing string
// value, the field the registry refused, or the unsupported registry together with the
// supported ones) and never quotes a value from the secret. A failure to read wraps Secrets Manager's error, so callers can tell "not found"
// with errors.As; everything else matches ErrUnusableSource.
func FromSource(ctx context.Context, sm SecretReader, req SourceRequest) (Upstream, error) {
	prov, ok := req.Providers[req.Registry]
	if !ok || prov.New == nil {
		// Checked before reading: no call is made for a registry nobody can build.
		return nil, unusable{fmt.Errorf("%s %s: upstream registry %q is not supported; use one of %s", req.Name, req.ARN, kit.Truncate(req.Registry, 60), registryList(req.Providers))}
	}
	if req.ARN == "" {
		// Not marked unusable: the ARN comes from the caller's own configuration, which the
		// caller validates (a missing tag, a missing property), not from the source secret.
		return nil, fmt.Errorf("%s: no ARN given, so the %s settings cannot be read", req.Name, req.Registry)
	}
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(req.ARN)})
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", req.Name, req.ARN, err)
	}
	if out.SecretString == nil {
		return nil, unusable{fmt.Errorf("%s %s has no string value; store the %s settings as JSON", req.Name, req.ARN, req.Registry)}
	}
	doc := aws.ToString(out.SecretString)
	if req.Seen != nil {
		req.Seen(doc)
	}
	// The provider parses first (no network call), so that a broken document is reported as
	// what it is before the binding is looked at.
	up, err := prov.New([]byte(doc), req.Options)
	if err != nil {
		return nil, unusable{fmt.Errorf("%s %s: %w", req.Name, req.ARN, err)}
	}
	switch {
	case req.RevokeOnly:
	case req.ForSecret == "":
		return nil, fmt.Errorf("%s %s: no managed secret named for the source binding check (a caller bug)", req.Name, req.ARN)
	default:
		if err := checkBinding([]byte(doc), req); err != nil {
			return nil, err
		}
		if err := checkFederated(up, req); err != nil {
			return nil, err
		}
	}
	return up, nil
}

func registryList(providers map[string]Provider) string {
	names := make([]string, 0, len(providers))
	for n := range providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// DecodeSource strictly decodes a source secret's JSON into dst: one JSON object, no unknown
// fields. registry (e.g. "docker-hub") starts every message, which names the field at fault
// and never quotes a value — a source secret is all credentials.
func DecodeSource(raw []byte, registry string, dst any) error {
	// The binding is every source secret's field, not the registry's: FromSource checks it.
	raw = withoutBinding(raw)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%s source secret: %s", registry, describeJSONError(err))
	}
	// More alone misses a stray "}" or "]" after the object; any token there is one too many.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s source secret: more than one JSON value (or text after the object); store exactly one object", registry)
	}
	return nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON (syntax error at byte %d)", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON (it ends early)"
	case errors.Is(err, io.EOF):
		return "empty; store a JSON object (see the README for this registry's fields)"
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json says `json: unknown field "x"`; keep its words once.
		return strings.TrimPrefix(err.Error(), "json: ") + " (check the spelling against the README)"
	}
	return "not a JSON object"
}
