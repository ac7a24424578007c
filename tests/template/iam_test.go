package templatecheck

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/cfnauth"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

// The resource ARNs the roles may name, spelled as the template's Fn::Sub spells them.
var (
	managedSecretARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:" + ptcsecret.Prefix + "*"
	// A replica of a managed secret, in whatever Region it lives: read-only, and only with the
	// allowed Regions' condition (replicaRegionsRef).
	replicaSecretARN  = "arn:${AWS::Partition}:secretsmanager:*:${AWS::AccountId}:secret:" + ptcsecret.Prefix + "*"
	sourceSecretARN   = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SourceSecretPrefix}*"
	stackARNs         = "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/*/*"
	ownerKeyRef       = "${OwnerKeySecret}"
	replicaRegionsRef = "${AllowedReplicaRegions}"
	ptcSLRARN         = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/pullthroughcache.ecr.amazonaws.com/AWSServiceRoleForECRPullThroughCache"
)

const ptcServiceName = "pullthroughcache.ecr.amazonaws.com"

// noResourceTypeActions are the actions the IAM Service Authorization Reference lists with no
// resource type: IAM matches them only on Resource "*", and a narrower ARN denies every call.
// TestWildcardExemptionsMatchServiceAuthorizationData re-checks this list against the
// authorization data cfn-lint ships, so it cannot silently go stale.
var noResourceTypeActions = []string{
	"ecr:CreatePullThroughCacheRule",
	"ecr:DescribePullThroughCacheRules",
	"ecr:UpdatePullThroughCacheRule",
	"ecr:DeletePullThroughCacheRule",
	"ecr:ValidatePullThroughCacheRule",
	"sts:GetWebIdentityToken",
}

// codeActions are the AWS calls each function's code can make: the methods of the
// consumer-side interfaces its wiring hands the SDK clients to (functions/*/main.go passes
// each client only as one of these). A method added to an interface needs its grant; a grant
// with no method behind it is a permission no code path uses, and fails the test.
func codeActions() map[string][]string {
	return map[string][]string{
		"RotatorFunction": slices.Concat(operations("secretsmanager", reflect.TypeFor[rotation.SecretsManager]()),
			operations("sts", reflect.TypeFor[webidentity.API]())),
		"ProvisionerFunction": slices.Concat(operations("secretsmanager", reflect.TypeFor[provision.SecretsManager]()),
			operations("ecr", reflect.TypeFor[provision.ECR]()),
			operations("cloudformation", reflect.TypeFor[cfnauth.CloudFormation]()),
			operations("sts", reflect.TypeFor[webidentity.API]())),
	}
}

// operations renders an interface's methods as IAM actions: service:Method (the SDK's method
// names are the API's operation names, which are the IAM action names).
func operations(service string, iface reflect.Type) []string {
	var out []string
	for i := range iface.NumMethod() {
		out = append(out, service+":"+iface.Method(i).Name)
	}
	return out
}

// implicitActions are grants a call needs that are not calls of the code's own: each says which
// call of the code (or of Lambda) needs it.
var implicitActions = map[string]map[string]string{
	"RotatorFunction": {
		"logs:CreateLogStream": "Lambda writes the function's logs as the role",
		"logs:PutLogEvents":    "Lambda writes the function's logs as the role",
	},
	"ProvisionerFunction": {
		"lambda:InvokeFunction":       "RotateSecret checks that its caller may invoke the rotation function it names",
		"iam:CreateServiceLinkedRole": "CreatePullThroughCacheRule creates ECR's pull-through-cache service-linked role as the caller on an account's first rule",
		"logs:CreateLogStream":        "Lambda writes the function's logs as the role",
		"logs:PutLogEvents":           "Lambda writes the function's logs as the role",
	},
}

// wantActions is every action each function's role must grant: exactly these, no more, no
// fewer.
var wantActions = func() map[string][]string {
	out := map[string][]string{}
	for fn, actions := range codeActions() {
		out[fn] = append(out[fn], actions...)
		for a := range implicitActions[fn] {
			out[fn] = append(out[fn], a)
		}
		slices.Sort(out[fn])
	}
	return out
}()

// iamProblems checks every permission the template grants. It returns what is wrong, one line
// each, so the mutation test below can prove each rule actually fires.
func iamProblems(doc map[string]any) []string {
	var probs []string
	addf := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	// Every grant must pass through the two explicit roles, where the checks below see it.
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group", "AWS::Serverless::Application"} {
		for _, id := range resourcesOfType(doc, typ) {
			addf("unexpected %s %s: keep every permission in the functions' roles", typ, id)
		}
	}
	functions := append(resourcesOfType(doc, "AWS::Serverless::Function"), resourcesOfType(doc, "AWS::Lambda::Function")...)
	if !slices.Equal(functions, []string{"ProvisionerFunction", "RotatorFunction"}) {
		addf("functions are %v, want exactly ProvisionerFunction and RotatorFunction", functions)
	}
	rolesUsed := map[string]bool{}
	for _, fn := range slices.Sorted(maps.Keys(wantActions)) {
		props := mapAt(doc, "Resources", fn, "Properties")
		for _, k := range []string{"Policies", "PermissionsBoundary", "Events", "FunctionUrlConfig"} {
			if _, ok := props[k]; ok {
				addf("%s sets %s: SAM would add permissions this test cannot see; use the explicit role", fn, k)
			}
		}
		roleRef := render(props["Role"])
		roleID, ok := strings.CutSuffix(strings.TrimPrefix(roleRef, "${"), ".Arn}")
		if !ok || get(doc, "Resources", roleID, "Type") != "AWS::IAM::Role" {
			addf("%s Role is %s, want !GetAtt <an AWS::IAM::Role in this template>.Arn", fn, roleRef)
			continue
		}
		if rolesUsed[roleID] {
			addf("%s shares role %s with another function: each function gets its own", fn, roleID)
		}
		rolesUsed[roleID] = true
		probs = append(probs, roleProblems(doc, fn, roleID)...)
	}
	for _, id := range resourcesOfType(doc, "AWS::IAM::Role") {
		if !rolesUsed[id] {
			addf("role %s is not one of the functions' roles", id)
		}
	}
	return probs
}

// roleProblems checks one function's role: trust, no managed policies, exact action set, and
// the resources each action may touch.
func roleProblems(doc map[string]any, fn, roleID string) []string {
	var probs []string
	addf := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	role := mapAt(doc, "Resources", roleID, "Properties")
	for _, k := range []string{"ManagedPolicyArns", "PermissionsBoundary"} {
		if _, ok := role[k]; ok {
			addf("%s sets %s: grants outside the inline policies are not allowed", roleID, k)
		}
	}
	trust := list(get(role, "AssumeRolePolicyDocument", "Statement"))
	if len(trust) != 1 ||
		get(trust[0], "Effect") != "Allow" ||
		!slices.Equal(renderAll(get(trust[0], "Principal", "Service")), []string{"lambda.amazonaws.com"}) ||
		len(mapAt(trust[0], "Principal")) != 1 ||
		!slices.Equal(renderAll(get(trust[0], "Action")), []string{"sts:AssumeRole"}) {
		addf("%s trust policy must let only lambda.amazonaws.com assume it, got %s", roleID, render(trust))
	}

	logGroup := strings.TrimSuffix(strings.TrimPrefix(render(get(doc, "Resources", fn, "Properties", "LoggingConfig", "LogGroup")), "${"), "}")
	granted := map[string]bool{}
	for _, st := range roleStatements(doc, roleID) {
		for _, k := range []string{"NotAction", "NotResource", "NotPrincipal"} {
			if _, ok := st.raw[k]; ok {
				addf("%s uses %s: say what is allowed, not what is not", st.where, k)
			}
		}
		if st.effect != "Allow" {
			addf("%s has Effect %s; only Allow statements are expected", st.where, st.effect)
			continue
		}
		if len(st.actions) == 0 || len(st.resources) == 0 {
			addf("%s has no Action or no Resource", st.where)
		}
		wildcard := slices.Contains(st.resources, "*")
		for _, a := range st.actions {
			granted[a] = true
			if strings.Contains(a, "*") {
				addf("%s grants wildcard action %s", st.where, a)
			}
			if wildcard && !slices.Contains(noResourceTypeActions, a) {
				if isReadOnly(a) {
					addf("%s grants %s on Resource \"*\": it supports resource-level permissions, scope it", st.where, a)
				} else {
					addf("%s grants write action %s on Resource \"*\"", st.where, a)
				}
			}
			service, name, _ := strings.Cut(a, ":")
			switch {
			case a == "secretsmanager:TagResource" && fn == "RotatorFunction":
				if !slices.Equal(st.resources, []string{managedSecretARN}) {
					addf("%s grants %s on %v, want only %s", st.where, a, st.resources, managedSecretARN)
				}
				// The rotator writes only its own fact tags (the tested mark); a tag of the
				// configuration would let a compromised rotator redirect itself.
				if got := strings.Join(renderAll(get(st.raw, "Condition", "ForAllValues:StringLike", "aws:TagKeys")), ","); got != ptcsecret.RotatorTagPrefix+"*" {
					addf("%s grants %s without Condition ForAllValues:StringLike aws:TagKeys = %s* (got %s)", st.where, a, ptcsecret.RotatorTagPrefix, got)
				}
			case service == "secretsmanager" && !isReadOnly(a):
				if !slices.Equal(st.resources, []string{managedSecretARN}) {
					addf("%s grants %s on %v, want only %s", st.where, a, st.resources, managedSecretARN)
				}
				// The two calls that can name replica Regions, only for the allowed ones.
				if a == "secretsmanager:CreateSecret" || a == "secretsmanager:ReplicateSecretToRegions" {
					if got := render(get(st.raw, "Condition", "ForAllValues:StringEquals", "secretsmanager:AddReplicaRegions")); got != replicaRegionsRef {
						addf("%s grants %s without Condition ForAllValues:StringEquals secretsmanager:AddReplicaRegions = !Ref AllowedReplicaRegions (got %s)", st.where, a, got)
					}
					// ForceOverwriteReplicaSecret would make someone else's secret of the name in a
					// replica Region ours; the code never sets it, so the role may not.
					if got := render(get(st.raw, "Condition", "BoolIfExists", "secretsmanager:ForceOverwriteReplicaSecret")); got != "false" {
						addf("%s grants %s without Condition BoolIfExists secretsmanager:ForceOverwriteReplicaSecret = false (got %s)", st.where, a, got)
					}
				}
			case fn == "ProvisionerFunction" && a == "secretsmanager:GetSecretValue" && slices.Equal(st.resources, []string{ownerKeyRef}):
				// The ownership-proof key, the one secret outside both prefixes it reads.
			case service == "secretsmanager" && slices.Contains(st.resources, replicaSecretARN):
				// Replicas, in any Region: read-only, and only where the deployer allows.
				if !isReadOnly(a) || fn != "ProvisionerFunction" {
					addf("%s grants %s on replicas in every Region: only the provisioner reads them, and only reads", st.where, a)
				}
				if got := render(get(st.raw, "Condition", "StringEquals", "aws:RequestedRegion")); got != replicaRegionsRef {
					addf("%s grants %s on replicas without Condition StringEquals aws:RequestedRegion = !Ref AllowedReplicaRegions (got %s)", st.where, a, got)
				}
			case service == "secretsmanager":
				for _, r := range st.resources {
					if r != managedSecretARN && r != sourceSecretARN {
						addf("%s grants %s on %s, want only %s or %s", st.where, a, r, managedSecretARN, sourceSecretARN)
					}
				}
			case service == "logs":
				if logGroup == "" || !slices.Equal(st.resources, []string{"${" + logGroup + ".Arn}"}) {
					addf("%s grants %s on %v, want only the function's own log group (%s)", st.where, a, st.resources, logGroup)
				}
			case a == "lambda:InvokeFunction":
				if !slices.Equal(st.resources, []string{"${RotatorFunction.Arn}"}) {
					addf("%s grants %s on %v, want only ${RotatorFunction.Arn}", st.where, a, st.resources)
				}
			case a == "iam:CreateServiceLinkedRole":
				if !slices.Equal(st.resources, []string{ptcSLRARN}) {
					addf("%s grants %s on %v, want only %s", st.where, a, st.resources, ptcSLRARN)
				}
				if got := render(get(st.raw, "Condition", "StringEquals", "iam:AWSServiceName")); got != ptcServiceName {
					addf("%s grants %s without Condition StringEquals iam:AWSServiceName = %s (got %s)", st.where, a, ptcServiceName, got)
				}
			case service == "cloudformation":
				// Reading the stacks of this account and Region is how the provisioner tells a
				// request CloudFormation sent from a forged one (cfnauth).
				if !slices.Equal(st.resources, []string{stackARNs}) {
					addf("%s grants %s on %v, want only %s", st.where, a, st.resources, stackARNs)
				}
			case a == "sts:GetWebIdentityToken":
				// The role's web identity token, only for the audiences the parameter lists
				// (every audience of the token among them: ForAllValues) and short-lived.
				if got := render(get(st.raw, "Condition", "ForAllValues:StringEquals", "sts:IdentityTokenAudience")); got != "${FederationAudiences}" {
					addf("%s grants %s without Condition ForAllValues:StringEquals sts:IdentityTokenAudience = !Ref FederationAudiences (got %s)", st.where, a, got)
				}
				if got := render(get(st.raw, "Condition", "NumericLessThanEquals", "sts:DurationSeconds")); got != "300" {
					addf("%s grants %s without Condition NumericLessThanEquals sts:DurationSeconds = 300 (got %s)", st.where, a, got)
				}
			case service == "ecr" && strings.Contains(name, "PullThroughCacheRule"):
				if !slices.Equal(st.resources, []string{"*"}) {
					addf("%s grants %s on %v: IAM matches pull-through cache rule actions only on \"*\", a narrower Resource denies every call", st.where, a, st.resources)
				}
			}
		}
		if wildcard {
			// The stack's Region, or (provisioner only) the deployer's replica Regions.
			got := render(get(st.raw, "Condition", "StringEquals", "aws:RequestedRegion"))
			if got != "${AWS::Region}" && (got != replicaRegionsRef || fn != "ProvisionerFunction") {
				addf("%s grants on Resource \"*\" without Condition StringEquals aws:RequestedRegion = !Ref AWS::Region (got %s)", st.where, got)
			}
		}
		// A statement naming source secrets may only read them.
		if slices.Contains(st.resources, sourceSecretARN) {
			for _, a := range st.actions {
				if a != "secretsmanager:GetSecretValue" && a != "secretsmanager:DescribeSecret" {
					addf("%s grants %s on source secrets: they are read-only", st.where, a)
				}
			}
		}
	}
	got := slices.Sorted(maps.Keys(granted))
	want := slices.Sorted(slices.Values(wantActions[fn]))
	if !slices.Equal(got, want) {
		addf("%s (%s) grants %v, want exactly %v", roleID, fn, got, want)
	}
	return probs
}

// findStatement returns the live statement map with the Sid in a role, for mutations.
func findStatement(t *testing.T, doc map[string]any, roleID, sid string) map[string]any {
	t.Helper()
	for _, st := range roleStatements(doc, roleID) {
		if get(st.raw, "Sid") == sid {
			return st.raw
		}
	}
	t.Fatalf("no statement %s in %s", sid, roleID)
	return nil
}

func TestTemplateIAMIsLeastPrivilege(t *testing.T) {
	doc := loadRel(t, "template.yaml")
	for _, p := range iamProblems(doc) {
		t.Error(p)
	}
}

// Reads of source secrets and writes of managed secrets are present, and where they must be.
func TestBothRolesReadSourceSecretsOnlyUnderThePrefix(t *testing.T) {
	doc := loadRel(t, "template.yaml")
	// The rotator writes new versions; the provisioner writes a managed secret only by creating
	// it (the first version is part of CreateSecret).
	for role, write := range map[string]string{"RotatorRole": "secretsmanager:PutSecretValue", "ProvisionerRole": "secretsmanager:CreateSecret"} {
		var readsSource, writesManaged bool
		for _, st := range roleStatements(doc, role) {
			if slices.Contains(st.actions, "secretsmanager:GetSecretValue") && slices.Equal(st.resources, []string{sourceSecretARN}) {
				readsSource = true
			}
			if slices.Contains(st.actions, write) && slices.Equal(st.resources, []string{managedSecretARN}) {
				writesManaged = true
			}
		}
		if !readsSource {
			t.Errorf("%s cannot GetSecretValue on %s", role, sourceSecretARN)
		}
		if !writesManaged {
			t.Errorf("%s cannot %s on %s", role, write, managedSecretARN)
		}
	}
}

// Each rule of iamProblems fires on a template broken in the way it guards against.
func TestIAMCheckCatchesBrokenTemplates(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, doc map[string]any)
		want   string
	}{
		{"managed secret writes on *", func(t *testing.T, doc map[string]any) {
			findStatement(t, doc, "RotatorRole", "RotateManagedSecrets")["Resource"] = "*"
		}, `write action secretsmanager:PutSecretValue on Resource "*"`},
		{"managed secret writes on every secret", func(t *testing.T, doc map[string]any) {
			findStatement(t, doc, "ProvisionerRole", "ManageManagedSecrets")["Resource"] = map[string]any{
				"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"}
		}, "grants secretsmanager:DeleteSecret on [arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*]"},
		{"write to source secrets", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "RotatorRole", "ReadSourceSecrets")
			st["Action"] = append(list(st["Action"]), "secretsmanager:PutSecretValue")
		}, "on source secrets: they are read-only"},
		{"read any secret", func(t *testing.T, doc map[string]any) {
			findStatement(t, doc, "RotatorRole", "ReadSourceSecrets")["Resource"] = map[string]any{
				"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"}
		}, "grants secretsmanager:GetSecretValue on arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"},
		{"extra action", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "RotatorRole", "RotateManagedSecrets")
			st["Action"] = append(list(st["Action"]), "secretsmanager:DeleteSecret")
		}, "want exactly"},
		// The grants the security review found no code path using: putting any back fails.
		{"unused grant: provisioner PutSecretValue", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "ProvisionerRole", "ManageManagedSecrets")
			st["Action"] = append(list(st["Action"]), "secretsmanager:PutSecretValue")
		}, "want exactly"},
		{"unused grant: provisioner CancelRotateSecret", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "ProvisionerRole", "ManageManagedSecrets")
			st["Action"] = append(list(st["Action"]), "secretsmanager:CancelRotateSecret")
		}, "want exactly"},
		{"unused grant: provisioner UpdatePullThroughCacheRule", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "ProvisionerRole", "ManagePullThroughCacheRules")
			st["Action"] = append(list(st["Action"]), "ecr:UpdatePullThroughCacheRule")
		}, "want exactly"},
		{"web identity tokens for any audience a token lists with one allowed (ForAnyValue)", func(t *testing.T, doc map[string]any) {
			cond := findStatement(t, doc, "RotatorRole", "GetWebIdentityTokensForUpstreams")["Condition"].(map[string]any)
			cond["ForAnyValue:StringEquals"] = cond["ForAllValues:StringEquals"]
			delete(cond, "ForAllValues:StringEquals")
		}, "without Condition ForAllValues:StringEquals sts:IdentityTokenAudience"},
		{"web identity tokens of any lifetime", func(t *testing.T, doc map[string]any) {
			delete(findStatement(t, doc, "ProvisionerRole", "GetWebIdentityTokensForUpstreams")["Condition"].(map[string]any), "NumericLessThanEquals")
		}, "without Condition NumericLessThanEquals sts:DurationSeconds = 300"},
		{"unused grant: rotator ECR validate", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "RotatorRole", "RotateManagedSecrets")
			st["Action"] = append(list(st["Action"]), "ecr:ValidatePullThroughCacheRule")
		}, "want exactly"},
		{"stack reads on every stack of every account", func(t *testing.T, doc map[string]any) {
			findStatement(t, doc, "ProvisionerRole", "ConfirmRequestsWithCloudFormation")["Resource"] = "*"
		}, "want only arn:${AWS::Partition}:cloudformation"},
		// Many Regions: replication only to the allowed Regions, replicas only read, only there.
		{"replicate anywhere (CreateSecret)", func(t *testing.T, doc map[string]any) {
			delete(findStatement(t, doc, "ProvisionerRole", "CreateAndReplicateManagedSecrets"), "Condition")
		}, "grants secretsmanager:CreateSecret without Condition ForAllValues:StringEquals secretsmanager:AddReplicaRegions"},
		{"replicate anywhere (ForAnyValue)", func(t *testing.T, doc map[string]any) {
			cond := findStatement(t, doc, "ProvisionerRole", "CreateAndReplicateManagedSecrets")["Condition"].(map[string]any)
			cond["ForAnyValue:StringEquals"] = cond["ForAllValues:StringEquals"]
			delete(cond, "ForAllValues:StringEquals")
		}, "grants secretsmanager:ReplicateSecretToRegions without Condition ForAllValues:StringEquals secretsmanager:AddReplicaRegions"},
		{"replicate over someone else's secret", func(t *testing.T, doc map[string]any) {
			cond := findStatement(t, doc, "ProvisionerRole", "CreateAndReplicateManagedSecrets")["Condition"].(map[string]any)
			delete(cond, "BoolIfExists")
		}, "grants secretsmanager:CreateSecret without Condition BoolIfExists secretsmanager:ForceOverwriteReplicaSecret = false"},
		{"replicate outside the condition", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "ProvisionerRole", "ManageManagedSecrets")
			st["Action"] = append(list(st["Action"]), "secretsmanager:ReplicateSecretToRegions")
		}, "ManageManagedSecrets grants secretsmanager:ReplicateSecretToRegions without Condition"},
		{"replicas read in every Region", func(t *testing.T, doc map[string]any) {
			delete(findStatement(t, doc, "ProvisionerRole", "ReadReplicas"), "Condition")
		}, "on replicas without Condition StringEquals aws:RequestedRegion = !Ref AllowedReplicaRegions"},
		{"replicas written", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "ProvisionerRole", "ReadReplicas")
			st["Action"] = append(list(st["Action"]), "secretsmanager:DeleteSecret")
		}, "ReadReplicas grants secretsmanager:DeleteSecret on [arn:${AWS::Partition}:secretsmanager:*:"},
		{"replica rules in every Region", func(t *testing.T, doc map[string]any) {
			delete(findStatement(t, doc, "ProvisionerRole", "ManageReplicaPullThroughCacheRules"), "Condition")
		}, "ManageReplicaPullThroughCacheRules grants on Resource \"*\" without Condition StringEquals aws:RequestedRegion"},
		{"rotator in the replica Regions", func(t *testing.T, doc map[string]any) {
			findStatement(t, doc, "RotatorRole", "GetWebIdentityTokensForUpstreams")["Condition"].(map[string]any)["StringEquals"] =
				map[string]any{"aws:RequestedRegion": map[string]any{"Ref": "AllowedReplicaRegions"}}
		}, "RotatorRole/federated-upstreams/GetWebIdentityTokensForUpstreams grants on Resource \"*\" without Condition"},
		{"missing grant the code needs", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "RotatorRole", "RotateManagedSecrets")
			st["Action"] = slices.DeleteFunc(list(st["Action"]), func(a any) bool { return a == "secretsmanager:UpdateSecretVersionStage" })
		}, "want exactly"},
		{"wildcard action", func(t *testing.T, doc map[string]any) {
			findStatement(t, doc, "ProvisionerRole", "ManageManagedSecrets")["Action"] = "secretsmanager:*"
		}, "wildcard action secretsmanager:*"},
		{"PTC rule actions scoped to repositories", func(t *testing.T, doc map[string]any) {
			findStatement(t, doc, "ProvisionerRole", "ManagePullThroughCacheRules")["Resource"] = map[string]any{
				"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"}
		}, "a narrower Resource denies every call"},
		{"wildcard without Region condition", func(t *testing.T, doc map[string]any) {
			delete(findStatement(t, doc, "ProvisionerRole", "ManagePullThroughCacheRules"), "Condition")
		}, "without Condition StringEquals aws:RequestedRegion"},
		{"other write on *", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "ProvisionerRole", "ManagePullThroughCacheRules")
			st["Action"] = append(list(st["Action"]), "ecr:CreateRepository")
		}, `write action ecr:CreateRepository on Resource "*"`},
		{"invoke any function", func(t *testing.T, doc map[string]any) {
			findStatement(t, doc, "ProvisionerRole", "AttachRotator")["Resource"] = "*"
		}, "grants lambda:InvokeFunction on [*]"},
		{"service-linked role without service condition", func(t *testing.T, doc map[string]any) {
			delete(findStatement(t, doc, "ProvisionerRole", "CreatePullThroughCacheServiceLinkedRole"), "Condition")
		}, "without Condition StringEquals iam:AWSServiceName"},
		{"rotator may write any tag", func(t *testing.T, doc map[string]any) {
			delete(findStatement(t, doc, "RotatorRole", "MarkTestedVersions"), "Condition")
		}, "without Condition ForAllValues:StringLike aws:TagKeys = ptc:rotator:*"},
		{"logs anywhere", func(t *testing.T, doc map[string]any) {
			findStatement(t, doc, "RotatorRole", "WriteLogs")["Resource"] = "*"
		}, "want only the function's own log group"},
		{"NotResource", func(t *testing.T, doc map[string]any) {
			st := findStatement(t, doc, "RotatorRole", "RotateManagedSecrets")
			st["NotResource"] = st["Resource"]
		}, "uses NotResource"},
		{"SAM policies on a function", func(t *testing.T, doc map[string]any) {
			mapAt(doc, "Resources", "RotatorFunction", "Properties")["Policies"] = []any{"AWSSecretsManagerRotationPolicy"}
		}, "RotatorFunction sets Policies"},
		{"managed policy on a role", func(t *testing.T, doc map[string]any) {
			mapAt(doc, "Resources", "RotatorRole", "Properties")["ManagedPolicyArns"] = []any{"arn:aws:iam::aws:policy/AdministratorAccess"}
		}, "RotatorRole sets ManagedPolicyArns"},
		{"extra policy resource", func(t *testing.T, doc map[string]any) {
			mapAt(doc, "Resources")["Extra"] = map[string]any{"Type": "AWS::IAM::Policy", "Properties": map[string]any{}}
		}, "unexpected AWS::IAM::Policy Extra"},
		{"shared role", func(t *testing.T, doc map[string]any) {
			mapAt(doc, "Resources", "RotatorFunction", "Properties")["Role"] = map[string]any{"Fn::GetAtt": []any{"ProvisionerRole", "Arn"}}
		}, "shares role ProvisionerRole"},
		{"role trusted by another service", func(t *testing.T, doc map[string]any) {
			st := list(get(doc, "Resources", "RotatorRole", "Properties", "AssumeRolePolicyDocument", "Statement"))[0]
			mapAt(st, "Principal")["Service"] = []any{"lambda.amazonaws.com", "ec2.amazonaws.com"}
		}, "trust policy must let only lambda.amazonaws.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadRel(t, "template.yaml")
			tc.mutate(t, doc)
			probs := iamProblems(doc)
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("no problem containing %q; got %q", tc.want, probs)
			}
		})
	}
}
