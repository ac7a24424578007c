package provision_test

import (
	"encoding/json"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ptc-credentials/ptc-credentials/internal/customresource"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// The rules the accepted properties must meet, restated from ECR's and Secrets Manager's API
// references (see shared/REFERENCE.md) rather than taken from the code under test.
var (
	fuzzECRPrefixRE = regexp.MustCompile(`^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$`)
	// ECR's CredentialArn pattern; the secret's ARN is its name plus Secrets Manager's suffix.
	fuzzCredentialARNRE = regexp.MustCompile(`^arn:aws(-\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\-pullthroughcache\/[a-zA-Z0-9\/_+=.@-]+$`)
	fuzzSourceARNRE     = regexp.MustCompile(`^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[a-zA-Z0-9/_+=.@-]+$`)
	// A Region name: area letters, words, a number (us-east-1, us-gov-west-1, eusc-de-east-1).
	fuzzRegionRE = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)
)

var fuzzPropertyNames = []string{"ServiceToken", "ServiceTimeout", "EcrRepositoryPrefix", "UpstreamRegistry", "UpstreamRegistryUrl",
	"UpstreamRepositoryPrefix", "SourceSecretArn", "SecretName", "RotationSchedule", "RecoveryWindowInDays", "Tags", "ReplicaRegions", "Description"}

// FuzzParseProperties decodes arbitrary JSON into a property map (whatever CloudFormation or a
// template author could send) and checks ParseProperties: no panic; an error names at least
// one property; a success meets ECR's rules (see fuzzCheckProperties).
func FuzzParseProperties(f *testing.F) {
	all := providers.All()
	f.Fuzz(func(t *testing.T, data []byte) {
		var raw map[string]any
		if json.Unmarshal(data, &raw) != nil {
			return
		}
		fuzzCheckProperties(t, raw, all)
	})
}

// FuzzPropertyStrings sets every known property to an arbitrary string (present selects which
// keys exist at all, so absent and empty are both tried) and checks the same as
// FuzzParseProperties.
func FuzzPropertyStrings(f *testing.F) {
	all := providers.All()
	f.Fuzz(func(t *testing.T, ecrPrefix, registry, registryURL, upstreamPrefix, sourceARN, secretName, schedule, recovery, tagKey, tagValue string, present uint16) {
		raw := map[string]any{}
		for i, kv := range [][2]string{
			{"EcrRepositoryPrefix", ecrPrefix}, {"UpstreamRegistry", registry}, {"UpstreamRegistryUrl", registryURL},
			{"UpstreamRepositoryPrefix", upstreamPrefix}, {"SourceSecretArn", sourceARN}, {"SecretName", secretName},
			{"RotationSchedule", schedule}, {"RecoveryWindowInDays", recovery},
		} {
			if present&(1<<i) != 0 {
				raw[kv[0]] = kv[1]
			}
		}
		if present&(1<<8) != 0 {
			raw["Tags"] = []any{map[string]any{"Key": tagKey, "Value": tagValue}}
		}
		fuzzCheckProperties(t, raw, all)
	})
}

func fuzzCheckProperties(t *testing.T, raw map[string]any, all map[string]upstream.Provider) {
	t.Helper()
	p, err := provision.ParseProperties(raw, all, pinned.Standins{})
	if err != nil {
		msg := err.Error()
		for k := range raw {
			if strings.Contains(msg, k) {
				return
			}
		}
		for _, k := range fuzzPropertyNames {
			if strings.Contains(msg, k) {
				return
			}
		}
		t.Fatalf("error names no property: %s", msg)
	}
	if n := len(p.EcrRepositoryPrefix); p.EcrRepositoryPrefix != "ROOT" && (n < 2 || n > 30 || !fuzzECRPrefixRE.MatchString(p.EcrRepositoryPrefix)) {
		t.Fatalf("accepted EcrRepositoryPrefix %q", p.EcrRepositoryPrefix)
	}
	if u := p.UpstreamRepositoryPrefix; u != "" {
		if p.EcrRepositoryPrefix == "ROOT" {
			t.Fatal("accepted UpstreamRepositoryPrefix with EcrRepositoryPrefix ROOT")
		}
		if n := len(u); u != "ROOT" && (n < 2 || n > 30 || !fuzzECRPrefixRE.MatchString(u)) {
			t.Fatalf("accepted UpstreamRepositoryPrefix %q", u)
		}
	}
	if _, ok := all[p.UpstreamRegistry]; !ok {
		t.Fatalf("accepted UpstreamRegistry %q", p.UpstreamRegistry)
	}
	if u := p.UpstreamRegistryURL; u == "" || strings.ContainsAny(u, "@?# \t\n") {
		t.Fatalf("accepted UpstreamRegistryUrl %q", u)
	}
	if !strings.HasPrefix(p.SecretName, ptcsecret.Prefix) || len(p.SecretName) > 512 ||
		!fuzzCredentialARNRE.MatchString("arn:aws:secretsmanager:us-east-1:123456789012:secret:"+p.SecretName+"-AbCdEf") {
		t.Fatalf("accepted SecretName %q, which ECR's CredentialArn pattern refuses", p.SecretName)
	}
	if !fuzzSourceARNRE.MatchString(p.SourceSecretArn) || strings.HasPrefix(ptcsecret.NameFromARN(p.SourceSecretArn), ptcsecret.Prefix) {
		t.Fatalf("accepted SourceSecretArn %q", p.SourceSecretArn)
	}
	if err := provision.ValidateSchedule(p.RotationSchedule); err != nil {
		t.Fatalf("accepted RotationSchedule %q that ValidateSchedule refuses: %v", p.RotationSchedule, err)
	}
	if !fuzzScheduleOK(p.RotationSchedule) {
		t.Fatalf("accepted RotationSchedule %q", p.RotationSchedule)
	}
	if d := p.RecoveryWindowInDays; d != 0 && (d < 7 || d > 30) {
		t.Fatalf("accepted RecoveryWindowInDays %d", d)
	}
	if len(p.Tags) > 40 {
		t.Fatalf("accepted %d tags", len(p.Tags))
	}
	for k, v := range p.Tags {
		if k == "" || len(k) > 128 || len(v) > 256 || strings.HasPrefix(k, "ptc:") || strings.HasPrefix(strings.ToLower(k), "aws:") {
			t.Fatalf("accepted tag %q=%q", k, v)
		}
	}
	// Secrets Manager's Description limit is 2048 characters; ReplicaRegions are Region names,
	// each once (the stack-dependent checks come later, in Create and Update).
	if n := utf8.RuneCountInString(p.Description); n > 2048 {
		t.Fatalf("accepted a Description of %d characters", n)
	}
	for i, r := range p.ReplicaRegions {
		if !fuzzRegionRE.MatchString(r) || slices.Contains(p.ReplicaRegions[:i], r) {
			t.Fatalf("accepted ReplicaRegions %q", p.ReplicaRegions)
		}
	}
}

var (
	fuzzRateRE = regexp.MustCompile(`^rate\(([0-9]+) (hour|hours|day|days)\)$`)
	fuzzCronRE = regexp.MustCompile(`^cron\((.+)\)$`)
	// One minute of the hour: the rotation window opens once per matching hour.
	fuzzMinuteRE = regexp.MustCompile(`^([0-9]|[1-5][0-9]|0[0-9])$`)
)

// fuzzScheduleOK restates the schedule rules: rate(N unit) between 4 hours and 1000 days
// (singular unit exactly for 1), or a six-field cron with one "?" among day-of-month and
// day-of-week, a single minute (0-59), and listed hours at least 4 apart.
func fuzzScheduleOK(s string) bool {
	if m := fuzzRateRE.FindStringSubmatch(s); m != nil {
		n, _ := new(big.Int).SetString(m[1], 10)
		hours := new(big.Int).Set(n)
		if strings.HasPrefix(m[2], "day") {
			hours.Mul(hours, big.NewInt(24))
		}
		singular := m[2] == "hour" || m[2] == "day"
		return hours.Cmp(big.NewInt(4)) >= 0 && hours.Cmp(big.NewInt(1000*24)) <= 0 && singular == (n.Cmp(big.NewInt(1)) == 0)
	}
	m := fuzzCronRE.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	f := strings.Fields(m[1])
	if len(f) != 6 || (f[2] == "?") == (f[4] == "?") || !fuzzMinuteRE.MatchString(f[0]) {
		return false
	}
	if f[1] == "*" || strings.Contains(f[1], "-") {
		return false
	}
	var hours []int
	for _, part := range strings.Split(f[1], ",") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || n > 23 {
			return true // steps, names and out-of-range hours: not restated here
		}
		hours = append(hours, n)
	}
	slices.Sort(hours)
	for i := 1; i < len(hours); i++ {
		if hours[i]-hours[i-1] < 4 {
			return false
		}
	}
	return len(hours) < 2 || 24-hours[len(hours)-1]+hours[0] >= 4
}

// FuzzValidateSchedule checks ValidateSchedule on arbitrary strings: no panic; it accepts
// exactly what fuzzScheduleOK accepts (for the forms restated there); an error quotes the
// schedule, so the stack event names it.
func FuzzValidateSchedule(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		err := provision.ValidateSchedule(s)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("error does not quote the schedule: %v", err)
			}
			if fuzzScheduleOK(s) && fuzzRateRE.MatchString(s) {
				t.Fatalf("refused %q: %v", s, err)
			}
			return
		}
		if !fuzzScheduleOK(s) {
			t.Fatalf("accepted %q", s)
		}
	})
}

// FuzzPhysicalID checks that ParsePhysicalID(PhysicalID(prefix, name)) gives back both parts
// whenever they are valid (an ECR prefix, a managed secret name), that anything it parses renders
// back to the same id, and that a failed Create's id never parses (it owns nothing).
func FuzzPhysicalID(f *testing.F) {
	f.Fuzz(func(t *testing.T, prefix, name string) {
		id := provision.PhysicalID(prefix, name)
		p, s, ok := provision.ParsePhysicalID(id)
		valid := (prefix == "ROOT" || (len(prefix) >= 2 && len(prefix) <= 30 && fuzzECRPrefixRE.MatchString(prefix))) &&
			ptcsecret.ValidateName(name) == nil
		if valid && (!ok || p != prefix || s != name) {
			t.Fatalf("PhysicalID(%q, %q) = %q parses as (%q, %q, %v)", prefix, name, id, p, s, ok)
		}
		for _, x := range []string{id, prefix, name} {
			if p, s, ok := provision.ParsePhysicalID(x); ok && provision.PhysicalID(p, s) != x {
				t.Fatalf("ParsePhysicalID(%q) = (%q, %q), which renders as %q", x, p, s, provision.PhysicalID(p, s))
			}
		}
		for _, failed := range []string{customresource.FailedCreateID(prefix), customresource.FailedCreateID(id)} {
			if _, _, ok := provision.ParsePhysicalID(failed); ok {
				t.Fatalf("the failed-Create id %q parses as a resource", failed)
			}
		}
	})
}
