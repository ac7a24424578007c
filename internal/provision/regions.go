package provision

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// Many Regions. A resource with ReplicaRegions keeps one secret, the primary, in the home Region
// (the stack's, which is the function's own: cfnauth refuses stacks elsewhere) and lets Secrets
// Manager replicate it to each replica Region. Each Region gets its own pull-through cache rule,
// reading the copy of its own Region (ECR reads only secrets of its own Region). Rotation runs in
// the primary alone; Secrets Manager carries every new version, the tags and the resource policy
// to the replicas. What a replica is must be proved, never assumed from a name: a secret of the
// same name in a replica Region is ours only if it names our primary's Region as its
// PrimaryRegion and has our primary's ARN with its own Region (replicaARN), and a rule there is
// ours only if it reads exactly that ARN.

// AllowedReplicaRegionsVar is the environment variable holding the deployer's allow-list of
// replica Regions (the template's AllowedReplicaRegions parameter), comma-separated. Empty: no
// request may replicate.
const AllowedReplicaRegionsVar = "ALLOWED_REPLICA_REGIONS"

// regionRE is the syntax of a Region name: a two-to-four-letter area, one or more words, a
// number (us-east-1, ap-southeast-2, us-gov-west-1, cn-north-1, eusc-de-east-1).
var regionRE = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[1-9][0-9]?$`)

// ValidRegionName reports whether s is spelled like an AWS Region name.
func ValidRegionName(s string) bool { return regionRE.MatchString(s) }

// PartitionOf is the partition a Region name belongs to. Secrets Manager replicates only within
// a partition, and a rule in another partition could not be reached with this account anyway.
func PartitionOf(region string) string {
	for _, p := range []struct{ prefix, partition string }{
		{"cn-", "aws-cn"}, {"us-gov-", "aws-us-gov"}, {"us-isob-", "aws-iso-b"}, {"us-isof-", "aws-iso-f"},
		{"eu-isoe-", "aws-iso-e"}, {"us-iso-", "aws-iso"}, {"eusc-", "aws-eusc"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}

// ParseAllowedRegions reads the allow-list (AllowedReplicaRegionsVar): Region names separated by
// commas, blanks ignored (CloudFormation renders an empty CommaDelimitedList as ""). A name that is
// not a Region's is an error, so a typo stops the cold start rather than silently allowing
// nothing there.
func ParseAllowedRegions(s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		switch {
		case r == "":
		case !ValidRegionName(r):
			return nil, fmt.Errorf("%s: %q is not a Region name (e.g. eu-west-1)", AllowedReplicaRegionsVar, kit.Truncate(r, 40))
		case !slices.Contains(out, r):
			out = append(out, r)
		}
	}
	return out, nil
}

// checkReplicaRegionsSyntax reads ReplicaRegions: a list of strings, or one comma-separated string
// (what a template gets from !Join or a CommaDelimitedList parameter rendered as text). Blank
// entries are dropped, so that an empty CommaDelimitedList ([""]) means no replicas. It checks
// what needs no stack: each is a Region name, none twice.
func checkReplicaRegionsSyntax(ps *parser) {
	var items []string
	switch v := ps.raw["ReplicaRegions"].(type) {
	case nil:
	case string:
		items = strings.Split(v, ",")
	case []string:
		items = v
	case []any:
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				ps.bad("ReplicaRegions[%d] must be a string (a Region name such as eu-west-1)", i)
				return
			}
			items = append(items, s)
		}
	default:
		ps.bad("ReplicaRegions must be a list of Region names (or one comma-separated string)")
		return
	}
	for _, r := range items {
		r = strings.TrimSpace(r)
		switch {
		case r == "":
		case !ValidRegionName(r):
			ps.bad("ReplicaRegions %q is not a Region name (e.g. eu-west-1)", kit.Truncate(r, 40))
		case slices.Contains(ps.p.ReplicaRegions, r):
			ps.bad("ReplicaRegions %q is listed twice", r)
		default:
			ps.p.ReplicaRegions = append(ps.p.ReplicaRegions, r)
		}
	}
}

// checkReplicaRegions checks what ParseProperties cannot: no replica Region is the home Region,
// each is in the stack's partition, and each is on the deployer's allow-list. It runs before
// anything is made or asked, so a request naming a Region outside the list touches nothing.
func (p *Provisioner) checkReplicaRegions(props Properties, st stack) error {
	var errs []string
	for _, r := range props.ReplicaRegions {
		switch {
		case r == st.region:
			errs = append(errs, fmt.Sprintf("ReplicaRegions %q is the stack's own Region, where the primary secret and its rule already live", r))
		case PartitionOf(r) != st.partition:
			errs = append(errs, fmt.Sprintf("ReplicaRegions %q is in partition %s, the stack in %s: Secrets Manager replicates only within a partition", r, PartitionOf(r), st.partition))
		case !slices.Contains(p.AllowedReplicaRegions, r):
			allowed := "none: the stack's AllowedReplicaRegions parameter is empty"
			if len(p.AllowedReplicaRegions) > 0 {
				allowed = strings.Join(p.AllowedReplicaRegions, ", ")
			}
			errs = append(errs, fmt.Sprintf("ReplicaRegions %q is not allowed by the deployer (AllowedReplicaRegions: %s)", r, allowed))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// replicaARN is the ARN the replica of primaryARN has in region: the same but for the Region.
func replicaARN(primaryARN, region string) string {
	parts := strings.SplitN(primaryARN, ":", 5)
	if len(parts) != 5 {
		return ""
	}
	parts[3] = region
	return strings.Join(parts, ":")
}

// regionOfARN is the Region field of an ARN ("" if it has none).
func regionOfARN(arn string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}
