package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// Defaults for optional properties.
const (
	DefaultRotationSchedule     = "rate(30 days)"
	DefaultRecoveryWindowInDays = 7
)

// Properties are the resource properties of Custom::PullThroughCache after validation and
// defaults.
type Properties struct {
	EcrRepositoryPrefix      string
	UpstreamRegistry         string
	UpstreamRegistryURL      string
	UpstreamRepositoryPrefix string
	SourceSecretArn          string
	SecretName               string
	RotationSchedule         string
	RecoveryWindowInDays     int
	Tags                     map[string]string
}

// ECR's EcrRepositoryPrefix / UpstreamRepositoryPrefix pattern (CreatePullThroughCacheRule).
var prefixRE = regexp.MustCompile(`^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$`)

var secretARNRE = regexp.MustCompile(`^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[a-zA-Z0-9/_+=.@-]+$`)

// ECR's other UpstreamRegistry values: real, but either credential-free or not minted here.
var otherECRUpstreams = []string{"ecr", "ecr-public", "quay", "k8s", "chainguard"}

var knownProps = []string{"ServiceToken", "ServiceTimeout", "EcrRepositoryPrefix", "UpstreamRegistry", "UpstreamRegistryUrl",
	"UpstreamRepositoryPrefix", "SourceSecretArn", "SecretName", "RotationSchedule", "RecoveryWindowInDays", "Tags"}

// ParseProperties validates raw resource properties (as CloudFormation sends them: every
// scalar as a string) against ECR's and Secrets Manager's rules. Every problem is reported, each
// naming its property and what is allowed.
func ParseProperties(raw map[string]any, providers map[string]upstream.Provider) (Properties, error) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	str := func(key string) string {
		v, ok := raw[key]
		if !ok || v == nil {
			return ""
		}
		switch x := v.(type) {
		case string:
			return strings.TrimSpace(x)
		case float64, int, bool, json.Number:
			return fmt.Sprint(x)
		}
		bad("%s must be a string", key)
		return ""
	}
	for k := range raw {
		if !slices.Contains(knownProps, k) {
			bad("%s is not a property of Custom::PullThroughCache (known: %s)", k, strings.Join(knownProps[2:], ", "))
		}
	}
	p := Properties{
		EcrRepositoryPrefix: str("EcrRepositoryPrefix"), UpstreamRegistry: str("UpstreamRegistry"),
		UpstreamRegistryURL: str("UpstreamRegistryUrl"), UpstreamRepositoryPrefix: str("UpstreamRepositoryPrefix"),
		SourceSecretArn: str("SourceSecretArn"), SecretName: str("SecretName"), RotationSchedule: str("RotationSchedule"),
	}

	switch n := len(p.EcrRepositoryPrefix); {
	case n == 0:
		bad("EcrRepositoryPrefix is required: the repository prefix images are pulled through, e.g. docker-hub")
	case p.EcrRepositoryPrefix != "ROOT" && (n < 2 || n > 30 || !prefixRE.MatchString(p.EcrRepositoryPrefix)):
		bad("EcrRepositoryPrefix %q: use 2 to 30 lowercase letters, digits and . _ - / (no leading or doubled separators), or ROOT", p.EcrRepositoryPrefix)
	}

	prov, known := providers[p.UpstreamRegistry]
	switch {
	case p.UpstreamRegistry == "":
		bad("UpstreamRegistry is required: one of %s", providerList(providers))
	case slices.Contains(otherECRUpstreams, p.UpstreamRegistry):
		bad("UpstreamRegistry %q needs no managed credential here; use AWS::ECR::PullThroughCacheRule for it (managed: %s)", p.UpstreamRegistry, providerList(providers))
	case !known:
		bad("UpstreamRegistry %q is not supported; use one of %s", p.UpstreamRegistry, providerList(providers))
	}

	if p.UpstreamRegistryURL == "" && known {
		p.UpstreamRegistryURL = prov.DefaultRegistryURL
		if p.UpstreamRegistryURL == "" {
			bad("UpstreamRegistryUrl is required for %s: the registry's login server, e.g. myregistry.azurecr.io", p.UpstreamRegistry)
		}
	}
	if p.UpstreamRegistryURL != "" {
		if _, err := registryauth.ParseRegistry(p.UpstreamRegistryURL); err != nil {
			bad("UpstreamRegistryUrl: %v", err)
		}
	}

	if p.UpstreamRepositoryPrefix != "" {
		switch n := len(p.UpstreamRepositoryPrefix); {
		case p.EcrRepositoryPrefix == "ROOT":
			bad("UpstreamRepositoryPrefix cannot be used with EcrRepositoryPrefix ROOT (ECR rule)")
		case p.UpstreamRepositoryPrefix == "ROOT":
		case n < 2 || n > 30 || !prefixRE.MatchString(p.UpstreamRepositoryPrefix):
			bad("UpstreamRepositoryPrefix %q: use 2 to 30 lowercase letters, digits and . _ - /, or ROOT", p.UpstreamRepositoryPrefix)
		}
	}

	switch {
	case p.SourceSecretArn == "":
		bad("SourceSecretArn is required: the ARN of the secret holding the minting credential (see the README per registry)")
	case !secretARNRE.MatchString(p.SourceSecretArn):
		bad("SourceSecretArn %q is not a Secrets Manager secret ARN", truncate(p.SourceSecretArn, 120))
	case ptcsecret.IsManagedName(p.SourceSecretArn):
		bad("SourceSecretArn must not be under %q: ECR's service role can read that prefix, and the minting credential must stay out of its reach", ptcsecret.Prefix)
	}

	if p.SecretName == "" && p.EcrRepositoryPrefix != "" {
		p.SecretName = ptcsecret.Prefix + strings.ToLower(strings.TrimSuffix(p.EcrRepositoryPrefix, "/"))
	}
	if p.SecretName != "" {
		if err := ptcsecret.ValidateName(p.SecretName); err != nil {
			bad("SecretName: %v", err)
		}
	}

	if p.RotationSchedule == "" {
		p.RotationSchedule = DefaultRotationSchedule
	}
	if err := ValidateSchedule(p.RotationSchedule); err != nil {
		bad("RotationSchedule: %v", err)
	}

	p.RecoveryWindowInDays = DefaultRecoveryWindowInDays
	if s := str("RecoveryWindowInDays"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			bad("RecoveryWindowInDays %q must be a whole number: 0 (delete at once) or 7 to 30", truncate(s, 20))
		case n != 0 && (n < 7 || n > 30):
			bad("RecoveryWindowInDays %d: use 0 (delete at once) or 7 to 30 days", n)
		default:
			p.RecoveryWindowInDays = n
		}
	}

	tags, err := parseTags(raw["Tags"])
	if err != nil {
		bad("%v", err)
	}
	p.Tags = tags

	if len(errs) > 0 {
		return p, errors.New(strings.Join(errs, "; "))
	}
	return p, nil
}

// parseTags accepts CloudFormation's list of {Key, Value} (or a plain map).
func parseTags(v any) (map[string]string, error) {
	out := map[string]string{}
	add := func(k, val string) error {
		switch {
		case k == "" || len(k) > 128:
			return errors.New("Tags: every tag needs a Key of 1 to 128 characters")
		case len(val) > 256:
			return fmt.Errorf("Tags: the value of %q is longer than 256 characters", k)
		case strings.HasPrefix(k, "ptc:") || strings.HasPrefix(strings.ToLower(k), "aws:"):
			return fmt.Errorf("Tags: key %q is reserved (ptc: tags carry this resource's configuration; aws: tags belong to AWS)", k)
		}
		out[k] = val
		return nil
	}
	switch t := v.(type) {
	case nil:
	case []any:
		for i, item := range t {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("Tags[%d] must be an object with Key and Value", i)
			}
			k, _ := m["Key"].(string)
			val, _ := m["Value"].(string)
			if err := add(k, val); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k, val := range t {
			s, _ := val.(string)
			if err := add(k, s); err != nil {
				return nil, err
			}
		}
	default:
		return nil, errors.New("Tags must be a list of {Key, Value}")
	}
	if len(out) > 40 {
		return nil, errors.New("Tags: at most 40 tags (Secrets Manager allows 50, and 4 are this resource's own)")
	}
	return out, nil
}

var (
	rateRE = regexp.MustCompile(`^rate\((\d+) (hour|hours|day|days)\)$`)
	cronRE = regexp.MustCompile(`^cron\((.+)\)$`)
	// minuteRE is one minute, 0-59.
	minuteRE = regexp.MustCompile(`^[0-5]?[0-9]$`)
)

// ValidateSchedule checks a Secrets Manager rotation schedule: rate(N hours|days) at least 4
// hours and at most 1000 days apart, or a six-field cron(...) expression (UTC) that does not
// fire more often than every 4 hours.
func ValidateSchedule(s string) error {
	if m := rateRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 1000*24 { // also keeps n*24 from overflowing into the allowed range
			return fmt.Errorf("%q: at most 1000 days", s)
		}
		hours := n
		if strings.HasPrefix(m[2], "day") {
			hours = n * 24
		}
		switch {
		case n == 0:
			return fmt.Errorf("%q: the interval must be positive", s)
		case hours < 4:
			return fmt.Errorf("%q: Secrets Manager rotates at most every 4 hours", s)
		case hours > 1000*24:
			return fmt.Errorf("%q: at most 1000 days", s)
		case (n == 1) != (m[2] == "hour" || m[2] == "day"):
			return fmt.Errorf("%q: write rate(1 day) / rate(N days) (singular only for 1)", s)
		}
		return nil
	}
	m := cronRE.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("%q: use rate(N days), rate(N hours) (N hours ≥ 4) or cron(minutes hours day-of-month month day-of-week year)", s)
	}
	f := strings.Fields(m[1])
	if len(f) != 6 {
		return fmt.Errorf("%q: a cron expression has six fields (minutes hours day-of-month month day-of-week year), got %d", s, len(f))
	}
	if (f[2] == "?") == (f[4] == "?") {
		return fmt.Errorf("%q: exactly one of day-of-month and day-of-week must be ?", s)
	}
	if gap := minHourGap(f[1]); gap >= 0 && gap < 4 {
		return fmt.Errorf("%q: fires every %d hours; Secrets Manager rotates at most every 4 hours", s, gap)
	}
	if !minuteRE.MatchString(f[0]) { // "*", lists, ranges, steps and junk such as "0*" alike
		return fmt.Errorf("%q: the minutes field must be one value (0-59): rotation runs once per matching hour", s)
	}
	return nil
}

// minHourGap returns the smallest distance between the hours a cron hours field names, or -1
// when it names only one hour.
func minHourGap(field string) int {
	var hours []int
	for _, part := range strings.Split(field, ",") {
		switch {
		case part == "*":
			return 1
		case strings.Contains(part, "/"):
			base, step, _ := strings.Cut(part, "/")
			n, err := strconv.Atoi(step)
			if err != nil || n <= 0 {
				return 0
			}
			if base == "*" || strings.Contains(base, "-") || n < 24 {
				return n
			}
		case strings.Contains(part, "-"):
			return 1
		default:
			n, err := strconv.Atoi(part)
			if err != nil {
				return 0
			}
			hours = append(hours, n)
		}
	}
	if len(hours) < 2 {
		return -1
	}
	sort.Ints(hours)
	gap := 24 - hours[len(hours)-1] + hours[0]
	for i := 1; i < len(hours); i++ {
		gap = min(gap, hours[i]-hours[i-1])
	}
	return gap
}

func providerList(providers map[string]upstream.Provider) string {
	names := make([]string, 0, len(providers))
	for n := range providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
