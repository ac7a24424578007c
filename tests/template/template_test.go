package templatecheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

var upstreams = slices.Sorted(maps.Keys(providers.All()))

func TestLoadTurnsShortFormTagsIntoLongForm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.yaml")
	src := `A: !Ref Param
B: !GetAtt Fn.Arn
C: !Sub "x-${AWS::Region}"
D: !If [Cond, !Ref AWS::NoValue, [1, two]]
E:
  Fn::ImportValue: !Sub ${Stack}-ServiceToken
F: !Condition IsProd
G: !GetAtt [Res, Nested.Attr]
H: "2010-09-09"
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(`{
		"A": {"Ref": "Param"},
		"B": {"Fn::GetAtt": ["Fn", "Arn"]},
		"C": {"Fn::Sub": "x-${AWS::Region}"},
		"D": {"Fn::If": ["Cond", {"Ref": "AWS::NoValue"}, [1, "two"]]},
		"E": {"Fn::ImportValue": {"Fn::Sub": "${Stack}-ServiceToken"}},
		"F": {"Condition": "IsProd"},
		"G": {"Fn::GetAtt": ["Res", "Nested.Attr"]},
		"H": "2010-09-09"
	}`), &want); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Errorf("Load =\n%s\nwant\n%s", gb, wb)
	}
}

func TestLoadReportsBadYAMLWithThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("a: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || errors.Is(err, ErrNoPython) {
		t.Errorf("Load(bad yaml) error = %v, want a parse error naming %s", err, path)
	}
}

func TestFunctionsAreBuiltAndConfiguredAsSAMExpects(t *testing.T) {
	doc := loadRel(t, "template.yaml")
	if got := get(doc, "Transform"); render(got) != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %v, want AWS::Serverless-2016-10-31", got)
	}
	for _, fn := range []string{"RotatorFunction", "ProvisionerFunction"} {
		r := mapAt(doc, "Resources", fn)
		p := mapAt(r, "Properties")
		for _, c := range []struct{ field, got, want string }{
			{"Type", render(r["Type"]), "AWS::Serverless::Function"},
			{"Runtime", render(p["Runtime"]), "provided.al2023"},
			{"Handler", render(p["Handler"]), "bootstrap"},
			{"CodeUri", render(p["CodeUri"]), "."},
			{"Metadata.BuildMethod", render(get(r, "Metadata", "BuildMethod")), "makefile"},
			{"Architectures", strings.Join(renderAll(p["Architectures"]), ","), "${Architecture}"},
			{"LoggingConfig.LogFormat", render(get(p, "LoggingConfig", "LogFormat")), "JSON"},
			{"Environment LOG_LEVEL", render(get(p, "Environment", "Variables", "LOG_LEVEL")), "${LogLevel}"},
		} {
			if c.got != c.want {
				t.Errorf("%s %s = %s, want %s", fn, c.field, c.got, c.want)
			}
		}
		mem, _ := p["MemorySize"].(float64)
		if mem < 128 || mem > 256 {
			t.Errorf("%s MemorySize = %v, want 128-256", fn, p["MemorySize"])
		}
		// The rotator waits up to ~60 s for ACR passwords to replicate; the provisioner's deadline
		// guard answers ~10 s before the deadline and needs real work time before that.
		timeout, _ := p["Timeout"].(float64)
		if timeout < 180 || timeout > 900 {
			t.Errorf("%s Timeout = %v, want 180-900 s", fn, p["Timeout"])
		}
		// Lambda labels level-less lines (the EMF metrics) INFO; a WARN/ERROR filter in Lambda
		// would drop every metric. The code filters its own logs by LOG_LEVEL instead.
		level := get(p, "LoggingConfig", "ApplicationLogLevel")
		if render(level) == "${LogLevel}" {
			t.Errorf("%s ApplicationLogLevel follows LogLevel: WARN or ERROR would drop the EMF metrics", fn)
		}
		var levels []string
		collectStrings(level, &levels)
		for _, l := range levels {
			if l != "DEBUG" && l != "INFO" && l != "TRACE" && l != "LogLevelIsDebug" {
				t.Errorf("%s ApplicationLogLevel may become %q, which filters out the EMF metrics", fn, l)
			}
		}
		lg := strings.TrimSuffix(strings.TrimPrefix(render(get(p, "LoggingConfig", "LogGroup")), "${"), "}")
		if get(doc, "Resources", lg, "Type") != "AWS::Logs::LogGroup" {
			t.Errorf("%s LoggingConfig.LogGroup = %s, want !Ref to a log group of this template", fn, lg)
		} else if got := render(get(doc, "Resources", lg, "Properties", "RetentionInDays")); got != "${LogRetentionDays}" {
			t.Errorf("%s RetentionInDays = %s, want !Ref LogRetentionDays", lg, got)
		}
	}
	if got := render(get(doc, "Resources", "ProvisionerFunction", "Properties", "Environment", "Variables", "ROTATION_LAMBDA_ARN")); got != "${RotatorFunction.Arn}" {
		t.Errorf("provisioner ROTATION_LAMBDA_ARN = %s, want !GetAtt RotatorFunction.Arn", got)
	}
}

// collectStrings gathers every string literal inside v.
func collectStrings(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case []any:
		for _, e := range x {
			collectStrings(e, out)
		}
	case map[string]any:
		for _, e := range x {
			collectStrings(e, out)
		}
	}
}

// permissionProblems checks who may invoke the functions.
func permissionProblems(doc map[string]any) []string {
	var probs []string
	rotatorPerms := 0
	for _, id := range resourcesOfType(doc, "AWS::Lambda::Permission") {
		p := mapAt(doc, "Resources", id, "Properties")
		fn := render(p["FunctionName"])
		if fn != "${RotatorFunction.Arn}" && fn != "${RotatorFunction}" {
			probs = append(probs, fmt.Sprintf("%s lets %s invoke %s: only the rotator needs a resource policy", id, render(p["Principal"]), fn))
			continue
		}
		rotatorPerms++
		if got := render(p["Principal"]); got != "secretsmanager.amazonaws.com" {
			probs = append(probs, fmt.Sprintf("%s Principal = %s, want secretsmanager.amazonaws.com", id, got))
		}
		if got := render(p["SourceAccount"]); got != "${AWS::AccountId}" {
			probs = append(probs, fmt.Sprintf("%s SourceAccount = %s, want !Ref AWS::AccountId", id, got))
		}
		// Only for managed secrets: a rotation Secrets Manager runs for any other secret of the
		// account (one whose RotationLambdaARN someone pointed here) is refused by Lambda.
		if got, want := render(p["SourceArn"]), managedSecretARN; got != want {
			probs = append(probs, fmt.Sprintf("%s SourceArn = %s, want %s", id, got, want))
		}
		if got := render(p["Action"]); got != "lambda:InvokeFunction" {
			probs = append(probs, fmt.Sprintf("%s Action = %s, want lambda:InvokeFunction", id, got))
		}
	}
	if rotatorPerms != 1 {
		probs = append(probs, fmt.Sprintf("%d Lambda permissions for the rotator, want exactly 1", rotatorPerms))
	}
	return probs
}

func TestOnlySecretsManagerOfThisAccountMayInvokeTheRotator(t *testing.T) {
	for _, p := range permissionProblems(loadRel(t, "template.yaml")) {
		t.Error(p)
	}
	for _, tc := range []struct {
		name   string
		mutate func(p map[string]any)
		want   string
	}{
		{"any principal", func(p map[string]any) { p["Principal"] = "*" }, "Principal = *"},
		{"no source account", func(p map[string]any) { delete(p, "SourceAccount") }, "SourceAccount = <null>"},
		{"other account", func(p map[string]any) { p["SourceAccount"] = "111122223333" }, "SourceAccount = 111122223333"},
		{"no source arn", func(p map[string]any) { delete(p, "SourceArn") }, "SourceArn = <null>"},
		{"any secret", func(p map[string]any) {
			p["SourceArn"] = map[string]any{"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"}
		}, "SourceArn = arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*,"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadRel(t, "template.yaml")
			tc.mutate(mapAt(doc, "Resources", "RotatorInvokePermission", "Properties"))
			probs := permissionProblems(doc)
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("no problem containing %q; got %q", tc.want, probs)
			}
		})
	}
}

func TestParametersConstrainTheirValues(t *testing.T) {
	doc := loadRel(t, "template.yaml")
	params := mapAt(doc, "Parameters")
	for name, p := range params {
		if render(get(p, "Description")) == "<null>" {
			t.Errorf("parameter %s has no Description", name)
		}
	}
	for _, c := range []struct {
		name, def string
		allowed   []string
	}{
		{"Architecture", "arm64", []string{"arm64", "x86_64"}},
		{"LogLevel", "INFO", []string{"DEBUG", "INFO", "WARN", "ERROR"}},
	} {
		if got := render(get(params, c.name, "Default")); got != c.def {
			t.Errorf("%s Default = %s, want %s", c.name, got, c.def)
		}
		if got := renderAll(get(params, c.name, "AllowedValues")); !slices.Equal(got, c.allowed) {
			t.Errorf("%s AllowedValues = %v, want %v", c.name, got, c.allowed)
		}
	}
	if got := render(get(params, "LogRetentionDays", "Default")); got != "30" {
		t.Errorf("LogRetentionDays Default = %s, want 30", got)
	}
	if got := render(get(params, "SourceSecretPrefix", "Default")); got != "ptc-source/" {
		t.Errorf("SourceSecretPrefix Default = %s, want ptc-source/", got)
	}

	// The prefix lands in "secret:${SourceSecretPrefix}*": a value that widens that grant, or
	// reaches into the prefix ECR's service role reads, must be refused at deploy time.
	// CloudFormation matches AllowedPattern with Java regular expressions against the whole
	// value; Python's re.fullmatch agrees on this pattern (Go's regexp has no lookahead).
	pattern := render(get(params, "SourceSecretPrefix", "AllowedPattern"))
	cases := map[string]bool{
		"ptc-source/":                    true,
		"team-a/ptc/":                    true,
		"":                               false,
		"*":                              false,
		"/":                              false,
		"ptc-source":                     false, // no trailing slash: would also match ptc-sourcery
		"ptc-*/":                         false,
		ptcsecret.Prefix:                 false,
		ptcsecret.Prefix + "sources/":    false,
		"a//":                            false,
		"ptc-source/\n":                  false,
		"arn:aws:secretsmanager:x/":      false,
		"ptc-source/" + ptcsecret.Prefix: true, // a path below another prefix is not ECR's
		"ptc_source.+=@-/nested/deeper/": true,
	}
	values := slices.Sorted(maps.Keys(cases))
	for i, got := range pyFullMatch(t, pattern, values) {
		if want := cases[values[i]]; got != want {
			t.Errorf("SourceSecretPrefix pattern accepts %q = %v, want %v", values[i], got, want)
		}
	}
	email := regexp.MustCompile(`^(?:` + render(get(params, "AlarmEmail", "AllowedPattern")) + `)$`)
	for value, want := range map[string]bool{"": true, "ops@example.com": true, "not-an-email": false, "a b@example.com": false} {
		if got := email.MatchString(value); got != want {
			t.Errorf("AlarmEmail pattern accepts %q = %v, want %v", value, got, want)
		}
	}
}

// pyFullMatch reports, for each value, whether Python's re.fullmatch(pattern, value) matches
// (one interpreter start for all of them).
func pyFullMatch(t *testing.T, pattern string, values []string) []bool {
	t.Helper()
	in, err := json.Marshal(map[string]any{"pattern": pattern, "values": values})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-c", `
import json, re, sys
req = json.load(sys.stdin)
json.dump([re.fullmatch(req["pattern"], v) is not None for v in req["values"]], sys.stdout)
`)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 re.fullmatch: %v", err)
	}
	var got []bool
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(values) {
		t.Fatalf("python3 re.fullmatch answered %s (%v)", out, err)
	}
	return got
}

func TestAlarmsWatchEveryFailureMetricOfEveryUpstream(t *testing.T) {
	doc := loadRel(t, "template.yaml")
	type key struct{ metric, upstream string }
	alarms := map[key]map[string]any{}
	for _, id := range resourcesOfType(doc, "AWS::CloudWatch::Alarm") {
		p := mapAt(doc, "Resources", id, "Properties")
		if got := render(p["AlarmActions"]); !strings.Contains(got, "AlarmTopic") {
			t.Errorf("alarm %s AlarmActions = %s, want the AlarmTopic (when AlarmEmail is set)", id, got)
		}
		if render(p["Namespace"]) != metrics.Namespace {
			continue
		}
		dims := list(p["Dimensions"])
		if render(p["MetricName"]) == metrics.ReplicationFailed && len(dims) == 0 {
			// The one alarm on the dimension-less set metrics.EmitReplica writes.
			alarms[key{metrics.ReplicationFailed, ""}] = p
			continue
		}
		if len(dims) != 1 || render(get(dims[0], "Name")) != "Upstream" {
			t.Errorf("alarm %s dimensions = %s, want exactly [Upstream] as the code emits", id, render(p["Dimensions"]))
			continue
		}
		alarms[key{render(p["MetricName"]), render(get(dims[0], "Value"))}] = p
	}
	for _, up := range upstreams {
		for _, m := range []string{metrics.RotationStepFailed, metrics.VerificationFailed, metrics.RevocationFailed, metrics.ProvisionFailed} {
			p, ok := alarms[key{m, up}]
			if !ok {
				t.Errorf("no alarm on %s/%s with Upstream=%s", metrics.Namespace, m, up)
				continue
			}
			for _, c := range []struct{ field, want string }{
				{"Statistic", "Sum"}, {"ComparisonOperator", "GreaterThanThreshold"},
				{"Threshold", "0"}, {"TreatMissingData", "notBreaching"},
			} {
				if got := render(p[c.field]); got != c.want {
					t.Errorf("alarm %s/%s %s = %s, want %s", m, up, c.field, got, c.want)
				}
			}
		}
	}
	// Staged mode runs on every upstream: each must page before a staged token lapses.
	for _, up := range upstreams {
		p, ok := alarms[key{metrics.TokenDaysToExpiry, up}]
		if !ok {
			t.Errorf("no alarm on %s for %s", metrics.TokenDaysToExpiry, up)
		} else if render(p["ComparisonOperator"]) != "LessThanThreshold" || render(p["Threshold"]) != "14" || render(p["Statistic"]) != "Minimum" || render(p["TreatMissingData"]) != "ignore" {
			t.Errorf("%s expiry alarm = %s %s %s %s, want Minimum LessThanThreshold 14, missing data ignored",
				up, render(p["Statistic"]), render(p["ComparisonOperator"]), render(p["Threshold"]), render(p["TreatMissingData"]))
		}
	}

	// The pull budget Docker Hub reports (PullsRemaining) pages when low, at the parameter's
	// threshold; an upstream that reports nothing leaves the alarm without data, not breaching.
	if p, ok := alarms[key{metrics.PullsRemaining, ptcsecret.UpstreamDockerHub}]; !ok {
		t.Errorf("no alarm on %s for %s", metrics.PullsRemaining, ptcsecret.UpstreamDockerHub)
	} else if render(p["ComparisonOperator"]) != "LessThanThreshold" || render(p["Statistic"]) != "Minimum" ||
		render(p["Threshold"]) != "${PullsRemainingAlarmThreshold}" || render(p["TreatMissingData"]) == "breaching" {
		t.Errorf("Docker Hub pulls alarm = %s %s %s %s, want Minimum LessThanThreshold !Ref PullsRemainingAlarmThreshold, missing data not breaching",
			render(p["Statistic"]), render(p["ComparisonOperator"]), render(p["Threshold"]), render(p["TreatMissingData"]))
	}
	if min := render(get(doc, "Parameters", "PullsRemainingAlarmThreshold", "MinValue")); min != "0" {
		t.Errorf("PullsRemainingAlarmThreshold MinValue = %s, want 0", min)
	}

	// Replication failures of every upstream and replica Region page through one alarm.
	if p, ok := alarms[key{metrics.ReplicationFailed, ""}]; !ok {
		t.Errorf("no alarm on %s without dimensions", metrics.ReplicationFailed)
	} else if render(p["Statistic"]) != "Maximum" || render(p["ComparisonOperator"]) != "GreaterThanThreshold" || render(p["Threshold"]) != "0" || render(p["TreatMissingData"]) != "notBreaching" {
		t.Errorf("%s alarm = %s %s %s %s, want Maximum GreaterThanThreshold 0 notBreaching", metrics.ReplicationFailed,
			render(p["Statistic"]), render(p["ComparisonOperator"]), render(p["Threshold"]), render(p["TreatMissingData"]))
	}

	var rotatorErrors bool
	for _, id := range resourcesOfType(doc, "AWS::CloudWatch::Alarm") {
		p := mapAt(doc, "Resources", id, "Properties")
		dims := list(p["Dimensions"])
		if render(p["Namespace"]) == "AWS/Lambda" && render(p["MetricName"]) == "Errors" && len(dims) == 1 &&
			render(get(dims[0], "Value")) == "${RotatorFunction}" && render(p["Threshold"]) == "0" &&
			render(p["ComparisonOperator"]) == "GreaterThanThreshold" && render(p["TreatMissingData"]) == "notBreaching" {
			rotatorErrors = true
		}
	}
	if !rotatorErrors {
		t.Error("no AWS/Lambda Errors > 0 alarm on the rotator")
	}
	if render(get(doc, "Resources", "AlarmTopic", "Condition")) != "HasAlarmEmail" ||
		render(get(doc, "Resources", "AlarmEmailSubscription", "Condition")) != "HasAlarmEmail" {
		t.Error("the SNS topic and email subscription must exist only when AlarmEmail is set (Condition HasAlarmEmail)")
	}
}

func TestOutputsExportServiceTokenAndRotatorArn(t *testing.T) {
	doc := loadRel(t, "template.yaml")
	// <stack>-X by default; <ExportPrefix>-X when set, because StackSets give their stacks
	// unpredictable names (StackSet-<set>-<uuid>) that no importing stack could spell.
	if render(get(doc, "Parameters", "ExportPrefix", "Default")) != "" {
		t.Error("ExportPrefix must default to empty (exports named after the stack)")
	}
	for _, c := range []struct{ output, value string }{
		{"ServiceToken", "${ProvisionerFunction.Arn}"},
		{"RotatorArn", "${RotatorFunction.Arn}"},
	} {
		o := mapAt(doc, "Outputs", c.output)
		if got := render(o["Value"]); got != c.value {
			t.Errorf("output %s Value = %s, want %s", c.output, got, c.value)
		}
		name := list(get(o, "Export", "Name", "Fn::If"))
		if len(name) != 3 || render(name[0]) != "HasExportPrefix" ||
			render(name[1]) != "${ExportPrefix}-"+c.output || render(name[2]) != "${AWS::StackName}-"+c.output {
			t.Errorf("output %s Export.Name = %s, want !If [HasExportPrefix, ${ExportPrefix}-%s, ${AWS::StackName}-%s]",
				c.output, render(get(o, "Export", "Name")), c.output, c.output)
		}
	}
}

func TestExamplesDeclareOneCompleteRuleEach(t *testing.T) {
	provisionerTimeout, _ := get(loadRel(t, "template.yaml"), "Resources", "ProvisionerFunction", "Properties", "Timeout").(float64)
	schedule := regexp.MustCompile(`^(rate\([1-9][0-9]* (hours|days)\)|cron\(.+\))$`)
	for _, up := range upstreams {
		t.Run(up, func(t *testing.T) {
			doc := loadRel(t, filepath.Join("examples", up+".yaml"))
			ids := resourcesOfType(doc, "Custom::PullThroughCache")
			if len(ids) != 1 {
				t.Fatalf("Custom::PullThroughCache resources = %v, want one", ids)
			}
			id := ids[0]
			p := mapAt(doc, "Resources", id, "Properties")
			if got := render(get(p, "ServiceToken", "Fn::ImportValue")); got != "${PtcStackName}-ServiceToken" {
				t.Errorf("ServiceToken imports %s, want ${PtcStackName}-ServiceToken", got)
			}
			if mapAt(doc, "Parameters", "PtcStackName") == nil {
				t.Error("no PtcStackName parameter")
			}
			if got := render(p["UpstreamRegistry"]); got != up {
				t.Errorf("UpstreamRegistry = %s, want %s", got, up)
			}
			for _, k := range []string{"EcrRepositoryPrefix", "UpstreamRegistryUrl", "UpstreamRepositoryPrefix", "SourceSecretArn", "SecretName", "RotationSchedule", "RecoveryWindowInDays", "Tags", "ReplicaRegions", "Description"} {
				if _, ok := p[k]; !ok {
					t.Errorf("property %s missing (every example shows every property)", k)
				}
			}
			if s := render(p["RotationSchedule"]); !schedule.MatchString(s) {
				t.Errorf("RotationSchedule = %q, want rate(N hours|days) or cron(...)", s)
			}
			if days, _ := p["RecoveryWindowInDays"].(float64); days < 7 || days > 30 {
				t.Errorf("RecoveryWindowInDays = %v, want 7-30", p["RecoveryWindowInDays"])
			}
			for _, tag := range list(p["Tags"]) {
				if m, _ := tag.(map[string]any); len(m) != 2 || m["Key"] == nil || m["Value"] == nil {
					t.Errorf("tag %s, want {Key, Value}", render(tag))
				}
			}
			// The provisioner's guard answers shortly before the earlier of its Lambda deadline and
			// ServiceTimeout; a ServiceTimeout above the Lambda timeout only makes a lost request
			// hang longer, and one under a minute leaves no time for the work.
			st, _ := p["ServiceTimeout"].(float64)
			if st < 60 || st > provisionerTimeout {
				t.Errorf("ServiceTimeout = %v, want 60 to the provisioner's Timeout (%v)", p["ServiceTimeout"], provisionerTimeout)
			}
			if up == ptcsecret.UpstreamACR {
				param := strings.TrimSuffix(strings.TrimPrefix(render(p["UpstreamRegistryUrl"]), "${"), "}")
				pat := render(get(doc, "Parameters", param, "AllowedPattern"))
				if !strings.Contains(pat, `azurecr\.io`) || render(get(doc, "Parameters", param, "Default")) != "<null>" {
					t.Errorf("ACR UpstreamRegistryUrl must be a required parameter matching <name>.azurecr.io, got %s with pattern %s", param, pat)
				}
			}
			var outs []string
			for _, o := range mapAt(doc, "Outputs") {
				outs = append(outs, render(get(o, "Value")))
			}
			if got := render(p["ReplicaRegions"]); got != "${ReplicaRegions}" || get(doc, "Parameters", "ReplicaRegions", "Type") != "CommaDelimitedList" || render(get(doc, "Parameters", "ReplicaRegions", "Default")) != "" {
				t.Errorf("ReplicaRegions = %s, want !Ref of a CommaDelimitedList parameter defaulting to none", got)
			}
			for _, attr := range []string{"RepositoryUriPrefix", "SecretArn", "Regions"} {
				if !slices.Contains(outs, "${"+id+"."+attr+"}") {
					t.Errorf("no output of !GetAtt %s.%s", id, attr)
				}
			}
		})
	}
}

// The same lint `make lint` runs, so `go test ./...` alone catches a broken template.
func TestCfnLintPasses(t *testing.T) {
	t.Parallel() // cfn-lint needs a few seconds of its own
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint is not installed (pip install cfn-lint); skipping the template lint")
	}
	root := repoRoot(t)
	examples, err := filepath.Glob(filepath.Join(root, "examples", "*.yaml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples/*.yaml (%v)", err)
	}
	args := []string{"template.yaml"}
	for _, e := range examples {
		args = append(args, filepath.Join("examples", filepath.Base(e)))
	}
	cmd := exec.Command(lint, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// The "*" exemptions rest on the Service Authorization Reference saying these actions have no
// resource type. cfn-lint ships that data; if AWS adds resource types, this fails and says so.
// Every other action the roles grant must exist there too (catches misspelt actions).
func TestWildcardExemptionsMatchServiceAuthorizationData(t *testing.T) {
	if _, err := exec.LookPath("cfn-lint"); err != nil {
		t.Skip("cfn-lint is not installed; its IAM authorization data is what this test reads")
	}
	doc := loadRel(t, "template.yaml")
	actions := map[string]bool{}
	for _, role := range resourcesOfType(doc, "AWS::IAM::Role") {
		for _, st := range roleStatements(doc, role) {
			for _, a := range st.actions {
				actions[a] = true
			}
		}
	}
	for _, a := range noResourceTypeActions {
		actions[a] = true
	}
	args := []string{"-c", `
import importlib.util, json, os, sys
# Locate cfnlint's data without importing the package (its import alone takes seconds).
spec = importlib.util.find_spec("cfnlint")
if spec is None:
    sys.exit("No module named 'cfnlint'")
path = os.path.join(list(spec.submodule_search_locations)[0], "data", "AdditionalSpecs", "Policies.json")
with open(path, encoding="utf-8") as f:
    data = json.load(f)
out = {}
for a in sys.argv[1:]:
    service, name = a.split(":", 1)
    info = data.get(service, {}).get("Actions", {}).get(name.lower())
    out[a] = None if info is None else info.get("Resources", [])
json.dump(out, sys.stdout)
`}
	for a := range actions {
		args = append(args, a)
	}
	out, err := exec.Command("python3", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && strings.Contains(string(ee.Stderr), "No module named 'cfnlint'") {
			t.Skip("cfn-lint's Python package is not importable by python3")
		}
		t.Fatalf("reading cfn-lint's IAM data: %v", err)
	}
	var resources map[string][]string
	if err := json.Unmarshal(out, &resources); err != nil {
		t.Fatalf("decoding cfn-lint's IAM data: %v", err)
	}
	for a, types := range resources {
		if types == nil {
			t.Errorf("%s is not a known IAM action", a)
			continue
		}
		if slices.Contains(noResourceTypeActions, a) && len(types) > 0 {
			t.Errorf("%s now supports resource types %v: scope it instead of \"*\" and drop it from noResourceTypeActions", a, types)
		}
	}
}

// logGroupProblems: the functions' log groups outlive the stack, because they are the only
// record of which upstream tokens were minted and revoked.
func logGroupProblems(doc map[string]any) []string {
	var probs []string
	groups := resourcesOfType(doc, "AWS::Logs::LogGroup")
	if len(groups) != 2 {
		probs = append(probs, fmt.Sprintf("%d log groups, want 2 (one per function)", len(groups)))
	}
	for _, id := range groups {
		r := mapAt(doc, "Resources", id)
		for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
			if got := render(r[k]); got != "Retain" {
				probs = append(probs, fmt.Sprintf("%s %s = %s, want Retain", id, k, got))
			}
		}
	}
	return probs
}

func TestLogGroupsOutliveTheStack(t *testing.T) {
	for _, p := range logGroupProblems(loadRel(t, "template.yaml")) {
		t.Error(p)
	}
	doc := loadRel(t, "template.yaml")
	mapAt(doc, "Resources", "ProvisionerLogGroup")["DeletionPolicy"] = "Delete"
	if probs := logGroupProblems(doc); !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, "ProvisionerLogGroup DeletionPolicy = Delete") }) {
		t.Errorf("a log group deleted with the stack was not reported; got %q", probs)
	}
}

// endpointOverrideProblems: the only switch that points the functions at emulators is the SDK's
// own AWS_ENDPOINT_URL[_<SERVICE>] variables (internal/awsenv). The deployed template must
// never set one, or a function would send the role's calls — and secret values — elsewhere.
func endpointOverrideProblems(doc map[string]any) []string {
	var probs []string
	for _, id := range resourcesOfType(doc, "AWS::Serverless::Function") {
		for k := range mapAt(doc, "Resources", id, "Properties", "Environment", "Variables") {
			if strings.HasPrefix(k, "AWS_ENDPOINT_URL") || strings.HasPrefix(k, "PTC_") {
				probs = append(probs, fmt.Sprintf("%s sets %s: the endpoint switch is for tests and the demo only", id, k))
			}
		}
	}
	for k := range mapAt(doc, "Globals", "Function", "Environment", "Variables") {
		if strings.HasPrefix(k, "AWS_ENDPOINT_URL") || strings.HasPrefix(k, "PTC_") {
			probs = append(probs, fmt.Sprintf("Globals sets %s: the endpoint switch is for tests and the demo only", k))
		}
	}
	return probs
}

func TestTemplateSetsNoEndpointOverride(t *testing.T) {
	for _, p := range endpointOverrideProblems(loadRel(t, "template.yaml")) {
		t.Error(p)
	}
	doc := loadRel(t, "template.yaml")
	mapAt(doc, "Resources", "RotatorFunction", "Properties", "Environment", "Variables")["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = "https://attacker.example"
	if probs := endpointOverrideProblems(doc); len(probs) != 1 || !strings.Contains(probs[0], "AWS_ENDPOINT_URL_SECRETS_MANAGER") {
		t.Errorf("an endpoint override in the template was not reported; got %q", probs)
	}
}

// The provisioner learns the two roles its protecting policy exempts and the ownership key from
// the template, and the key is readable by the provisioner's role alone.
func TestProvisionerKnowsTheRolesAndTheOwnerKey(t *testing.T) {
	doc := loadRel(t, "template.yaml")
	vars := mapAt(doc, "Resources", "ProvisionerFunction", "Properties", "Environment", "Variables")
	for name, want := range map[string]string{
		"ROTATOR_ROLE_ARN":     "${RotatorRole.Arn}",
		"PROVISIONER_ROLE_ARN": "${ProvisionerRole.Arn}",
		"OWNER_KEY_SECRET_ARN": "${OwnerKeySecret}",
	} {
		if got := render(vars[name]); got != want {
			t.Errorf("ProvisionerFunction %s = %s, want %s", name, got, want)
		}
	}
	if _, ok := mapAt(doc, "Resources", "RotatorFunction", "Properties", "Environment", "Variables")["OWNER_KEY_SECRET_ARN"]; ok {
		t.Error("the rotator is given the ownership key; only the provisioner may have it")
	}
	pol := mapAt(doc, "Resources", "OwnerKeySecretPolicy", "Properties")
	if render(pol["SecretId"]) != "${OwnerKeySecret}" || pol["BlockPublicPolicy"] != true {
		t.Errorf("OwnerKeySecretPolicy must protect OwnerKeySecret with BlockPublicPolicy, got %v", pol)
	}
	sts := list(get(pol, "ResourcePolicy", "Statement"))
	if len(sts) != 1 || get(sts[0], "Effect") != "Deny" || get(sts[0], "Principal") != "*" ||
		!slices.Contains(renderAll(get(sts[0], "Action")), "secretsmanager:GetSecretValue") ||
		render(get(sts[0], "Condition", "StringNotEquals", "aws:PrincipalArn")) != "${ProvisionerRole.Arn}" {
		t.Errorf("OwnerKeySecretPolicy must deny GetSecretValue to every principal but ProvisionerRole, got %s", render(sts))
	}
	// CloudFormation's generated name (OwnerKeySecret-<random>) has no "/", so it is under
	// neither ecr-pullthroughcache/ nor any SourceSecretPrefix (which must end in "/").
	if name, ok := mapAt(doc, "Resources", "OwnerKeySecret", "Properties")["Name"]; ok {
		t.Errorf("OwnerKeySecret has Name %s: leave it to CloudFormation, whose generated name no prefix grant can match", render(name))
	}
}

// The deployer's replica Regions reach the provisioner as ALLOWED_REPLICA_REGIONS, default to
// none, and accept only Region names — each entry of the list parameter (CloudFormation applies a
// CommaDelimitedList's AllowedPattern to every entry) must also be what the code accepts.
func TestAllowedReplicaRegionsReachTheProvisioner(t *testing.T) {
	doc := loadRel(t, "template.yaml")
	p := mapAt(doc, "Parameters", "AllowedReplicaRegions")
	if get(p, "Type") != "CommaDelimitedList" || render(get(p, "Default")) != "" {
		t.Errorf("AllowedReplicaRegions must be a CommaDelimitedList defaulting to empty (no replication), got %s", render(p))
	}
	vars := mapAt(doc, "Resources", "ProvisionerFunction", "Properties", "Environment", "Variables")
	if got, want := render(vars[provision.AllowedReplicaRegionsVar]), render(map[string]any{"Fn::Join": []any{",", map[string]any{"Ref": "AllowedReplicaRegions"}}}); got != want {
		t.Errorf("ProvisionerFunction %s = %s, want %s", provision.AllowedReplicaRegionsVar, got, want)
	}
	if _, ok := mapAt(doc, "Resources", "RotatorFunction", "Properties", "Environment", "Variables")[provision.AllowedReplicaRegionsVar]; ok {
		t.Error("the rotator is given the replica Regions; it acts in the primary's Region only")
	}
	cases := []string{"", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1", "eusc-de-east-1", "EU-WEST-1", "eu-west", "eu_west_1", "eu-west-1 ", "*", "eu-*"}
	pattern := render(get(p, "AllowedPattern"))
	for i, got := range pyFullMatch(t, pattern, cases) {
		want := cases[i] == "" || provision.ValidRegionName(cases[i])
		if got != want {
			t.Errorf("AllowedReplicaRegions pattern accepts %q = %v, but the provisioner's Region syntax says %v", cases[i], got, want)
		}
	}
}
