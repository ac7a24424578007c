package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// stack is what the stack id tells.
type stack struct{ partition, region, account string }

func parseStack(stackID string) (stack, error) {
	parts := strings.SplitN(stackID, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "cloudformation" || parts[3] == "" || len(parts[4]) != 12 {
		return stack{}, fmt.Errorf("StackId %q is not a CloudFormation stack ARN", kit.Truncate(stackID, 200))
	}
	return stack{partition: parts[1], region: parts[3], account: parts[4]}, nil
}

// PhysicalID names one set: "ptc:<EcrRepositoryPrefix>:<SecretName>". Neither part may contain
// a colon, so the id parses back without state.
func PhysicalID(prefix, secretName string) string { return "ptc:" + prefix + ":" + secretName }

// ParsePhysicalID reverses PhysicalID; ok is false for ids this package did not make (such as
// the id of a failed Create, which owns nothing).
func ParsePhysicalID(id string) (prefix, secretName string, ok bool) {
	rest, found := strings.CutPrefix(id, "ptc:")
	if !found {
		return "", "", false
	}
	prefix, secretName, found = strings.Cut(rest, ":")
	if !found || prefix == "" || !strings.HasPrefix(secretName, ptcsecret.Prefix) {
		return "", "", false
	}
	return prefix, secretName, true
}

// Overlaps reports whether physical ids a and b name a rule or a secret in common (the same ECR
// prefix or the same secret name). Ids this package did not make name nothing. cfnauth uses it
// so that a cleanup Delete cannot be aimed at the live set under a slightly different id.
func Overlaps(a, b string) bool {
	pa, sa, okA := ParsePhysicalID(a)
	pb, sb, okB := ParsePhysicalID(b)
	return okA && okB && (pa == pb || sa == sb)
}

// ManagedBy is the ptc:managed-by value for a resource: "<stack id>/<logical id>", hashed when
// it would not fit a tag value (256 characters).
func ManagedBy(stackID, logicalID string) string {
	v := stackID + "/" + logicalID
	if len(v) <= 256 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:])
}
