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
	"time"
	"unicode/utf8"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
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
	// ReplicaRegions are the Regions the secret is replicated to, each with its own rule, in the
	// order given (regions.go). Only their syntax and uniqueness are checked here; the home
	// Region, the partition and the deployer's allow-list need the request's stack
	// (Provisioner.checkReplicaRegions).
	ReplicaRegions []string
	// Description is the secret's description; "" means the default one (SecretDescription).
	Description string
}

// ECR's EcrRepositoryPrefix / UpstreamRepositoryPrefix pattern (CreatePullThroughCacheRule).
var prefixRE = regexp.MustCompile(`^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$`)

var secretARNRE = regexp.MustCompile(`^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[a-zA-Z0-9/_+=.@-]+$`)

// ECR's other UpstreamRegistry values: real, but either credential-free or not minted here.
var otherECRUpstreams = []string{"ecr", "ecr-public", "quay", "k8s"}

// cloudFormationProps are the properties CloudFormation itself adds to every custom resource.
var cloudFormationProps = []string{"ServiceToken", "ServiceTimeout"}

// property is one resource property of Custom::PullThroughCache: how it is read, whether it is
// required, and its check. properties lists them in the order they are read and checked, which
// is also the order their problems are reported in; checks may rely on the entries before them
// (UpstreamRegistryUrl's default needs UpstreamRegistry, SecretName's needs EcrRepositoryPrefix).
type property struct {
	name string
	// text, when set, is the field the property's scalar value is read into (trimmed; numbers
	// and booleans as text) before any property is checked. Nil for a property whose check reads
	// the raw value itself (RecoveryWindowInDays, Tags).
	text func(*Properties) *string
	// required, when set, gives the hint of "<name> is required: <hint>", which an absent or
	// blank value gets instead of check.
	required func(*parser) string
	// check validates the value, applies its default and reports every problem through bad.
	check func(*parser)
}

var properties = []property{
	{name: "EcrRepositoryPrefix", text: func(p *Properties) *string { return &p.EcrRepositoryPrefix },
		required: hint("the repository prefix images are pulled through, e.g. docker-hub"), check: checkEcrRepositoryPrefix},
	{name: "UpstreamRegistry", text: func(p *Properties) *string { return &p.UpstreamRegistry },
		required: func(ps *parser) string { return "one of " + providerList(ps.providers) }, check: checkUpstreamRegistry},
	{name: "UpstreamRegistryUrl", text: func(p *Properties) *string { return &p.UpstreamRegistryURL }, check: checkUpstreamRegistryURL},
	{name: "UpstreamRepositoryPrefix", text: func(p *Properties) *string { return &p.UpstreamRepositoryPrefix }, check: checkUpstreamRepositoryPrefix},
	{name: "SourceSecretArn", text: func(p *Properties) *string { return &p.SourceSecretArn },
		required: hint("the ARN of the secret holding the minting credential (see the README per registry)"), check: checkSourceSecretArn},
	{name: "SecretName", text: func(p *Properties) *string { return &p.SecretName }, check: checkSecretName},
	{name: "RotationSchedule", text: func(p *Properties) *string { return &p.RotationSchedule }, check: checkRotationSchedule},
	{name: "RecoveryWindowInDays", check: checkRecoveryWindowInDays},
	{name: "Tags", check: checkTags},
	{name: "ReplicaRegions", check: checkReplicaRegionsSyntax},
	{name: "Description", text: func(p *Properties) *string { return &p.Description }, check: checkDescription},
}

// propertyNames are the names in properties, for the message about an unknown one.
var propertyNames = func() []string {
	names := make([]string, len(properties))
	for i, pr := range properties {
		names[i] = pr.name
	}
	return names
}()

func hint(s string) func(*parser) string { return func(*parser) string { return s } }

// parser is one ParseProperties run: the raw input, what has been read so far, and every
// problem found.
type parser struct {
	raw       map[string]any
	providers map[string]upstream.Provider
	standins  pinned.Standins
	p         Properties
	errs      []string
}

func (ps *parser) bad(format string, args ...any) {
	ps.errs = append(ps.errs, fmt.Sprintf(format, args...))
}

// text reads a scalar property as CloudFormation sends it: a string, or a number or boolean a
// template wrote without quotes. An absent or null property is "".
func (ps *parser) text(key string) string {
	v, ok := ps.raw[key]
	if !ok || v == nil {
		return ""
	}
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case float64, int, bool, json.Number:
		return fmt.Sprint(x)
	}
	ps.bad("%s must be a string", key)
	return ""
}

// ParseProperties validates raw resource properties (as CloudFormation sends them: every
// scalar as a string) against ECR's and Secrets Manager's rules. Every problem is reported, each
// naming its property and what is allowed. On error the Properties returned hold what could be
// read, defaults applied, for callers that compare best effort (Update's old properties).
// standins are the loopback endpoints UpstreamRegistryUrl may name besides the registry's
// pinned hosts (the zero value, in a deployment: none).
func ParseProperties(raw map[string]any, providers map[string]upstream.Provider, standins pinned.Standins) (Properties, error) {
	ps := &parser{raw: raw, providers: providers, standins: standins}
	for k := range raw {
		if !slices.Contains(cloudFormationProps, k) && !slices.Contains(propertyNames, k) {
			ps.bad("%s is not a property of Custom::PullThroughCache (known: %s)", k, strings.Join(propertyNames, ", "))
		}
	}
	// Every scalar is read before any is checked, so that a check can see the others.
	for _, pr := range properties {
		if pr.text != nil {
			*pr.text(&ps.p) = ps.text(pr.name)
		}
	}
	for _, pr := range properties {
		if pr.required != nil && *pr.text(&ps.p) == "" {
			ps.bad("%s is required: %s", pr.name, pr.required(ps))
			continue
		}
		pr.check(ps)
	}
	if len(ps.errs) > 0 {
		return ps.p, errors.New(strings.Join(ps.errs, "; "))
	}
	return ps.p, nil
}

func checkEcrRepositoryPrefix(ps *parser) {
	v := ps.p.EcrRepositoryPrefix
	if n := len(v); v != "ROOT" && (n < 2 || n > 30 || !prefixRE.MatchString(v)) {
		ps.bad("EcrRepositoryPrefix %q: use 2 to 30 lowercase letters, digits and . _ - / (no leading or doubled separators), or ROOT", v)
	}
}

func checkUpstreamRegistry(ps *parser) {
	v := ps.p.UpstreamRegistry
	_, known := ps.providers[v]
	switch {
	case slices.Contains(otherECRUpstreams, v):
		ps.bad("UpstreamRegistry %q needs no managed credential here; use AWS::ECR::PullThroughCacheRule for it (managed: %s)", v, providerList(ps.providers))
	case !known:
		ps.bad("UpstreamRegistry %q is not supported; use one of %s", v, providerList(ps.providers))
	}
}

// checkUpstreamRegistryURL defaults the URL to the registry's pinned one; a registry without one
// (ACR: every registry has its own host) makes it required. A URL naming another host than the
// registry's (Provider.RegistryHosts, or a listed stand-in) is refused here, before anything is
// minted or verified: the login check would send the new token there.
func checkUpstreamRegistryURL(ps *parser) {
	p := &ps.p
	if prov, known := ps.providers[p.UpstreamRegistry]; p.UpstreamRegistryURL == "" && known {
		p.UpstreamRegistryURL = prov.DefaultRegistryURL
		if p.UpstreamRegistryURL == "" {
			ps.bad("UpstreamRegistryUrl is required for %s: the registry's login server, e.g. myregistry.azurecr.io", p.UpstreamRegistry)
		}
	}
	if p.UpstreamRegistryURL != "" {
		if _, err := registryauth.ParseRegistry(p.UpstreamRegistryURL); err != nil {
			ps.bad("UpstreamRegistryUrl: %v", err)
		} else if prov, known := ps.providers[p.UpstreamRegistry]; known {
			if err := prov.CheckRegistryURL("UpstreamRegistryUrl", p.UpstreamRegistryURL, ps.standins); err != nil {
				ps.bad("%v", err)
			}
		}
	}
}

func checkUpstreamRepositoryPrefix(ps *parser) {
	v := ps.p.UpstreamRepositoryPrefix
	if v == "" {
		return
	}
	switch n := len(v); {
	case ps.p.EcrRepositoryPrefix == "ROOT":
		ps.bad("UpstreamRepositoryPrefix cannot be used with EcrRepositoryPrefix ROOT (ECR rule)")
	case v == "ROOT":
	case n < 2 || n > 30 || !prefixRE.MatchString(v):
		ps.bad("UpstreamRepositoryPrefix %q: use 2 to 30 lowercase letters, digits and . _ - /, or ROOT", v)
	}
}

func checkSourceSecretArn(ps *parser) {
	v := ps.p.SourceSecretArn
	switch {
	case !secretARNRE.MatchString(v):
		ps.bad("SourceSecretArn %q is not a Secrets Manager secret ARN", kit.Truncate(v, 120))
	case ptcsecret.IsManagedName(v):
		ps.bad("SourceSecretArn must not be under %q: ECR's service role can read that prefix, and the minting credential must stay out of its reach", ptcsecret.Prefix)
	}
}

// checkSecretName defaults the name to ecr-pullthroughcache/<EcrRepositoryPrefix>.
func checkSecretName(ps *parser) {
	p := &ps.p
	if p.SecretName == "" && p.EcrRepositoryPrefix != "" {
		p.SecretName = ptcsecret.Prefix + strings.ToLower(strings.TrimSuffix(p.EcrRepositoryPrefix, "/"))
	}
	if p.SecretName != "" {
		if err := ptcsecret.ValidateName(p.SecretName); err != nil {
			ps.bad("SecretName: %v", err)
		}
	}
}

func checkRotationSchedule(ps *parser) {
	if ps.p.RotationSchedule == "" {
		ps.p.RotationSchedule = DefaultRotationSchedule
	}
	if err := ValidateSchedule(ps.p.RotationSchedule); err != nil {
		ps.bad("RotationSchedule: %v", err)
	}
}

// checkRecoveryWindowInDays reads its own value, so that its type error is reported in its
// place among the checks.
func checkRecoveryWindowInDays(ps *parser) {
	ps.p.RecoveryWindowInDays = DefaultRecoveryWindowInDays
	s := ps.text("RecoveryWindowInDays")
	if s == "" {
		return
	}
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		ps.bad("RecoveryWindowInDays %q must be a whole number: 0 (delete at once) or 7 to 30", kit.Truncate(s, 20))
	case n != 0 && (n < 7 || n > 30):
		ps.bad("RecoveryWindowInDays %d: use 0 (delete at once) or 7 to 30 days", n)
	default:
		ps.p.RecoveryWindowInDays = n
	}
}

// MaxDescriptionLength is CreateSecret's and UpdateSecret's limit on Description (characters).
const MaxDescriptionLength = 2048

func checkDescription(ps *parser) {
	if n := utf8.RuneCountInString(ps.p.Description); n > MaxDescriptionLength {
		ps.bad("Description is %d characters long: Secrets Manager allows at most %d", n, MaxDescriptionLength)
	}
}

// SecretDescription is the description the secret gets: the Description property, or a default
// naming the rule and the upstream.
func (p Properties) SecretDescription() string {
	if p.Description != "" {
		return p.Description
	}
	return fmt.Sprintf("ECR pull-through cache credential for %s (%s), rotated by ptc-credentials", p.EcrRepositoryPrefix, p.UpstreamRegistry)
}

func checkTags(ps *parser) {
	tags, err := parseTags(ps.raw["Tags"])
	if err != nil {
		ps.bad("%v", err)
	}
	ps.p.Tags = tags
}

// parseTags accepts CloudFormation's list of {Key, Value} (or a plain map).
func parseTags(v any) (map[string]string, error) {
	out := map[string]string{}
	add := func(k, val string) error {
		switch {
		case k == "" || len(k) > 128:
			//lint:ignore ST1005 the message starts with the property's name, Tags, as CloudFormation spells it
			return errors.New("Tags: every tag needs a Key of 1 to 128 characters")
		case len(val) > 256:
			//lint:ignore ST1005 the message starts with the property's name, Tags, as CloudFormation spells it
			return fmt.Errorf("Tags: the value of %q is longer than 256 characters", k)
		case strings.HasPrefix(k, "ptc:") || strings.HasPrefix(strings.ToLower(k), "aws:"):
			//lint:ignore ST1005 the message starts with the property's name, Tags, as CloudFormation spells it
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
				//lint:ignore ST1005 the message starts with the property's name, Tags, as CloudFormation spells it
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
		//lint:ignore ST1005 the message starts with the property's name, Tags, as CloudFormation spells it
		return nil, errors.New("Tags must be a list of {Key, Value}")
	}
	if len(out) > 40 {
		//lint:ignore ST1005 the message starts with the property's name, Tags, as CloudFormation spells it
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

// RateInterval is the interval of a valid rate(N hours|days) schedule; ok is false for cron
// expressions and anything ValidateSchedule refuses.
func RateInterval(s string) (every time.Duration, ok bool) {
	m := rateRE.FindStringSubmatch(s)
	if m == nil || ValidateSchedule(s) != nil {
		return 0, false
	}
	n, _ := strconv.Atoi(m[1])
	if strings.HasPrefix(m[2], "day") {
		return time.Duration(n) * 24 * time.Hour, true
	}
	return time.Duration(n) * time.Hour, true
}

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
