package localsm_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// productScript replays, against localsm and moto, every Secrets Manager call the product makes
// — rotation.SecretsManager (internal/rotation) and provision.SecretsManager (internal/provision)
// — with the input fields each call site sets, reading back the output fields the product reads,
// and reaching every error the product tells apart (it inspects one: errors.As on
// *types.ResourceNotFoundException; every other error it wraps and fails with). The fault
// matrix (tests/faults) runs most of its cases against localsm on the strength of this script.
// A call site added to the product needs a row here and a step in the script.
//
// Coverage (operation | caller: input fields set | output read | errors the caller tells apart |
// steps, by the numbers TestConformanceWithMoto/product prints):
//
//	DescribeSecret | rotator prepare: SecretId=ARN (the event's) | ARN, Name, Tags,
//	  RotationEnabled, VersionIdsToStages | none (wrapped) | 8 9 15 23 25 30 32 40 42, 48 (gone)
//	DescribeSecret | provisioner Create/Update/Delete/undo: SecretId=name | ARN, Name, Tags,
//	  DeletedDate, RotationEnabled, RotationLambdaARN, VersionIdsToStages | ResourceNotFound =
//	  absent | 2 (absent) 6 35 38 43, 47 57 (absent), 53 (DeletedDate)
//	GetSecretValue | rotator createSecret: SecretId=ARN, VersionId, VersionStage=AWSPENDING |
//	  whether it exists | ResourceNotFound = no value yet, mint | 16 28 (no value yet), 20 (exists)
//	GetSecretValue | rotator setSecret/testSecret: SecretId=ARN, VersionId,
//	  VersionStage=AWSPENDING|AWSCURRENT | SecretString | none | 10 20 21
//	GetSecretValue | rotator upstreamFor, provisioner upstream/revokeAll: SecretId=source ARN, no
//	  VersionId or VersionStage | SecretString (nil is refused) | revokeAll: ResourceNotFound =
//	  source gone, skip revocation | 3 11 17 44, 34 (after a person's PutSecretValue), 50 (gone)
//	GetSecretValue | ECR (ecremu reads the rule's secret): SecretId=ARN, VersionStage=AWSCURRENT |
//	  SecretString | ResourceNotFound, InvalidRequest (scheduled for deletion) | 26 55
//	PutSecretValue | rotator createSecret: SecretId=ARN, ClientRequestToken=the pending version
//	  RotateSecret staged without a value, SecretString, VersionStages=[AWSPENDING, plus
//	  ptc-acr-passwordN for ACR], RotationToken | none | none | 18, 19 (SDK retry, same data), 29
//	  (the slot label leaves the version holding it), 41 (AWSPENDING only)
//	PutSecretValue | a person staging the next GHCR token in the source: SecretId=ARN,
//	  SecretString | - | - | 33
//	UpdateSecretVersionStage | rotator finishSecret: SecretId=ARN, VersionStage=AWSCURRENT,
//	  MoveToVersionId, RemoveFromVersionId=the old current (AWSPREVIOUS follows; omitted when
//	  no version is current, which a secret created with a value never is) | none | none | 24 31
//	UpdateSecretVersionStage | provisioner createSecret: SecretId=ARN, VersionStage=the ACR slot
//	  label, MoveToVersionId=the first version (no version holds the label) | none | none | 5
//	CreateSecret | provisioner createSecret: Name, ClientRequestToken, SecretString,
//	  Description, Tags, no KmsKeyId | ARN | none | 4 51
//	TagResource | rotator testSecret (the tested mark): SecretId=ARN, Tags=ptc:rotator:* keys
//	  whose values are a version id, a username, an RFC 3339 time | none | none | 12 22
//	TagResource, UntagResource | provisioner Update: SecretId=ARN, Tags (a changed value and a
//	  new key) / TagKeys | none | none | 36 37
//	TagResource | rotator recordFacts (after a failed step, and clearing it after the next
//	  promotion): SecretId=ARN, Tags ptc:rotator:last-failure, ptc:rotator:last-error (values with
//	  spaces and : / = + - @ _ .) | none | none (failure logged, never fatal) | 59 60, 62 (of a gone secret)
//	RotateSecret | provisioner enableRotation: SecretId=ARN, RotationLambdaARN,
//	  RotationRules.ScheduleExpression, RotateImmediately=false (Create, schedule change) or true
//	  (source changed), no ClientRequestToken (the SDK makes one) | none | none | 7 39
//	RotateSecret | Secrets Manager starting a rotation, as the harnesses play it
//	  (testenv.BeginRotation): ClientRequestToken, RotationLambdaARN, RotateImmediately=true |
//	  - | - | 14 27
//	DeleteSecret | provisioner Delete and Create's undo: SecretId=ARN,
//	  ForceDeleteWithoutRecovery=true | none | ResourceNotFound = already gone | 45, 46 (of a
//	  secret already gone: AWS answers success, not ResourceNotFound), 56 (of a secret scheduled
//	  for deletion)
//	DeleteSecret | provisioner Delete: SecretId=ARN, RecoveryWindowInDays=N | none |
//	  ResourceNotFound = already gone | 52, 54 (retried: InvalidRequestException, see the step)
//	GetResourcePolicy | provisioner protect and the legacy check: SecretId=ARN | ResourcePolicy
//	  (absent = none) | none (wrapped) | the last steps of the script
//	PutResourcePolicy | provisioner protect: SecretId=ARN, ResourcePolicy, BlockPublicPolicy=true
//	  | none | none | the last steps
//	ValidateResourcePolicy | provisioner protect: SecretId=ARN, ResourcePolicy |
//	  PolicyValidationPassed, ValidationErrors | none | not compared: moto 5.2.1 lacks it
//	  (localsm's own tests: policy_test.go)
//
//	Multi-Region (issue 16): the steps are TestConformanceWithMoto/replication's, run against a
//	localsm.Cluster and moto in four Regions (replication_conformance_test.go), each call signed
//	for the Region named:
//	CreateSecret | provisioner createSecret with ReplicaRegions: Name, ClientRequestToken,
//	  SecretString, Description, Tags, AddReplicaRegions (Region only: default key) | ARN,
//	  ReplicationStatus | none | 2 34 (a Region where the name is taken), 41 (own Region:
//	  InvalidParameterException)
//	DescribeSecret | provisioner replica wait and ptc status/doctor, in the primary's Region:
//	  SecretId=ARN | ReplicationStatus (Region, Status, KmsKeyId), PrimaryRegion,
//	  VersionIdsToStages | none | 4 30 35 (Failed)
//	DescribeSecret | replica wait, ptc status, in a replica's Region: SecretId=the replica's ARN or
//	  the name | ARN, PrimaryRegion, VersionIdsToStages (AWSCURRENT equal to the primary's),
//	  Description, Tags | ResourceNotFound = not there (yet, or any more) | 1 5 6 16 20 22, 24
//	  (removed)
//	GetSecretValue | ECR in a replica's Region (ValidatePullThroughCacheRule, pulls): SecretId=the
//	  replica's ARN, VersionStage=AWSCURRENT | SecretString | ResourceNotFound | 7 8 17 40, 29
//	GetResourcePolicy | provisioner, the policy in a replica's Region: SecretId=the replica's ARN |
//	  ResourcePolicy | none | 9
//	PutResourcePolicy | provisioner protect, in the primary's Region only (replicas copy it) |
//	  none | none | 3; 12 (in a replica's Region: InvalidParameterException)
//	PutSecretValue, UpdateSecretVersionStage | rotator, in the primary's Region only | none |
//	  none | 14 15; 10 (PutSecretValue in a replica's Region: InvalidParameterException)
//	UpdateSecret | provisioner Update, the Description property: SecretId=ARN, Description only |
//	  ARN | none | 18; 11 (in a replica's Region: InvalidParameterException)
//	TagResource | provisioner Update, in the primary's Region | none | none | 19
//	ReplicateSecretToRegions | provisioner Update, a Region added: SecretId=ARN,
//	  AddReplicaRegions (new Regions only, default key), ForceOverwriteReplicaSecret | ARN,
//	  ReplicationStatus | none | 21 39
//	RemoveRegionsFromReplication | provisioner Update (a Region dropped), Delete and Create's undo
//	  (every Region, before DeleteSecret): SecretId=ARN, RemoveReplicaRegions | ReplicationStatus
//	  | none | 23 25 (again: a no-op) 28 37 (a Failed Region)
//	DeleteSecret | provisioner Delete of a primary: ForceDeleteWithoutRecovery or a recovery
//	  window | none | InvalidParameterException while replicas exist (26 27), then ok (31); 13 (on
//	  a replica: InvalidParameterException)
//	StopReplicationToReplica is not in the script: the product never calls it (its protecting
//	  policy denies it) and moto 5.2.1 does not implement it (localsm's own tests: cluster_test.go)
//
// Secrets Manager's own part (staging and dropping the tested copy, a person's edits) is played
// by the script too, in the calls a harness makes (testenv.BeginRotation,
// RotatingSecretsManager), so that the state the product's calls meet is the one they meet in
// the tests that run on localsm.
func productScript() []cstep {
	rate30 := smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(30 days)")}
	prodTags := []smtypes.Tag{
		{Key: aws.String("ptc:upstream"), Value: aws.String("azure-container-registry")},
		{Key: aws.String("ptc:source-secret"), Value: aws.String("<source>")},
		{Key: aws.String("ptc:managed-by"), Value: aws.String(confManagedBy)},
		{Key: aws.String("ptc:registry-url"), Value: aws.String("ptcreg.azurecr.io")},
		{Key: aws.String("team"), Value: aws.String("platform")},
	}
	created := `{v1:[AWSCURRENT ptc-acr-password1] x1:[AWSPENDING]}`
	return []cstep{
		{name: "setup: CreateSecret the source secret, as a person does (Name and SecretString only)", run: func(c *conf) string {
			return c.pcreate("source", confSource, 0, `{"clientSecret":"first"}`, nil)
		}},

		// --- provisioner Create ---
		{name: "Create: DescribeSecret by name before the secret exists", run: func(c *conf) string { return c.pdescribe(confProd) }},
		{name: "Create: GetSecretValue of the source by ARN, no VersionId or VersionStage", run: func(c *conf) string { return c.pget("source", "", "") }},
		{name: "Create: CreateSecret with ClientRequestToken, Description and the ptc: tags", run: func(c *conf) string {
			return c.pcreate("prod", confProd, 1, `{"username":"ptc-pull","accessToken":"pw-1"}`, prodTags)
		}},
		{name: "Create: UpdateSecretVersionStage ACR slot label onto the first version (on no version yet)", run: func(c *conf) string {
			return c.pstage("prod", "ptc-acr-password1", "v1", "")
		}},
		{name: "Create resumed / undo: DescribeSecret by name", run: func(c *conf) string { return c.pdescribe(confProd) }},
		{name: "Create: RotateSecret ScheduleExpression, RotateImmediately=false, no ClientRequestToken", run: func(c *conf) string {
			return c.protate("prod", "", true, &rate30, false)
		},
			dev: "rotation-function-missing", aws: "ok version=x1", moto: "err=ResourceNotFoundException"},
		{name: "DescribeSecret after Create: rotation on, the copy to test pending", run: func(c *conf) string { return c.pdescribe("prod") },
			dev: "schedule-ignored", aws: confDescribeLine(created, true), moto: confDescribeLine(created, false),
			motoFix: func(c *conf) error {
				// What AWS did: rotation is on. moto turns it on only for AutomaticallyAfterDays;
				// doing that stages another copy, so AWSPENDING goes back to x1 afterwards.
				if got := c.protate("prod", "v90", true, &days30, false); got != "err=ResourceNotFoundException" {
					return fmt.Errorf("RotateSecret AutomaticallyAfterDays: %s", got)
				}
				if got := c.pstage("prod", "AWSPENDING", "x1", "v90"); got != "ok" {
					return fmt.Errorf("AWSPENDING back to x1: %s", got)
				}
				return nil
			}},
		{name: "testSecret of the copy: DescribeSecret by ARN", run: func(c *conf) string { return c.pdescribe("prod") }},
		{name: "testSecret: GetSecretValue VersionId x1 + AWSPENDING (the copy of AWSCURRENT)", run: func(c *conf) string {
			return c.pget("prod", "x1", "AWSPENDING")
		}},
		{name: "testSecret: GetSecretValue of the source by ARN", run: func(c *conf) string { return c.pget("source", "", "") }},
		{name: "testSecret of the copy: TagResource by ARN, the tested mark (ptc:rotator:tested-version x1, -username)", run: func(c *conf) string {
			return c.ptag("prod", "ptc:rotator:tested-version", c.vid("x1"), "ptc:rotator:tested-username", "ptc-pull")
		}},
		{name: "Secrets Manager drops the tested copy: UpdateSecretVersionStage remove AWSPENDING from x1", run: func(c *conf) string {
			return c.pstage("prod", "AWSPENDING", "", "x1")
		}},

		// --- rotation 1 (ACR mints into the slot AWSCURRENT does not carry: password2) ---
		// Secrets Manager starting a rotation is played as testenv.BeginRotation plays it: with
		// the function's ARN, because moto's RotateSecret without one forgets the configured
		// function and then "rotates" by itself (AWSCURRENT onto the empty pending version).
		{name: "rotation 1: RotateSecret ClientRequestToken v2, RotateImmediately=true", run: func(c *conf) string {
			return c.protate("prod", "v2", true, nil, true)
		},
			dev: "rotation-function-missing", aws: "ok version=v2", moto: "err=ResourceNotFoundException"},
		{name: "createSecret: DescribeSecret by ARN", run: func(c *conf) string { return c.pdescribe("prod") }},
		{name: "createSecret: GetSecretValue v2 + AWSPENDING before a value is put", run: func(c *conf) string {
			return c.pget("prod", "v2", "AWSPENDING")
		}},
		{name: "createSecret: GetSecretValue of the source", run: func(c *conf) string { return c.pget("source", "", "") }},
		{name: "createSecret: PutSecretValue v2, RotationToken, VersionStages AWSPENDING + ptc-acr-password2", run: func(c *conf) string {
			return c.pput("prod", "v2", `{"username":"ptc-pull","accessToken":"pw-2"}`, "AWSPENDING", "ptc-acr-password2")
		}},
		{name: "createSecret: the same PutSecretValue again (an SDK retry after a lost answer)", run: func(c *conf) string {
			return c.pput("prod", "v2", `{"username":"ptc-pull","accessToken":"pw-2"}`, "AWSPENDING", "ptc-acr-password2")
		}},
		{name: "createSecret retried / setSecret / testSecret: GetSecretValue v2 + AWSPENDING", run: func(c *conf) string {
			return c.pget("prod", "v2", "AWSPENDING")
		}},
		{name: "setSecret: GetSecretValue v1 + AWSCURRENT", run: func(c *conf) string { return c.pget("prod", "v1", "AWSCURRENT") }},
		{name: "testSecret: TagResource by ARN, the tested mark (ptc:rotator:tested-version v2, -username, -expires-at)", run: func(c *conf) string {
			return c.ptag("prod", "ptc:rotator:tested-version", tok(2), "ptc:rotator:tested-username", "ptc-pull", "ptc:rotator:tested-expires-at", "2027-01-02T03:04:05Z")
		}},
		{name: "finishSecret: DescribeSecret by ARN", run: func(c *conf) string { return c.pdescribe("prod") }},
		{name: "finishSecret: UpdateSecretVersionStage AWSCURRENT to v2, RemoveFromVersionId v1", run: func(c *conf) string {
			return c.pstage("prod", "AWSCURRENT", "v2", "v1")
		}},
		{name: "finishSecret retried: DescribeSecret by ARN (v2 already AWSCURRENT, v1 AWSPREVIOUS)", run: func(c *conf) string { return c.pdescribe("prod") }},
		{name: "ECR reads the credential: GetSecretValue by ARN + AWSCURRENT", run: func(c *conf) string { return c.pget("prod", "", "AWSCURRENT") }},

		// --- rotation 2 (the slot label password1 leaves AWSPREVIOUS v1 for the new version) ---
		{name: "rotation 2: RotateSecret v3 while AWSPENDING is on AWSCURRENT v2 (rotation 1 finished)", run: func(c *conf) string {
			return c.protate("prod", "v3", true, nil, true)
		},
			dev: "pending-on-current-blocks", aws: "ok version=v3", moto: "err=InvalidRequestException",
			motoFix: func(c *conf) error {
				if got := c.pstage("prod", "AWSPENDING", "", "v2"); got != "ok" {
					return fmt.Errorf("clearing AWSPENDING from v2: %s", got)
				}
				if got := c.protate("prod", "v3", true, nil, true); got != "err=ResourceNotFoundException" {
					return fmt.Errorf("RotateSecret v3: %s", got)
				}
				return nil
			}},
		{name: "createSecret: GetSecretValue v3 + AWSPENDING before a value is put", run: func(c *conf) string {
			return c.pget("prod", "v3", "AWSPENDING")
		}},
		{name: "createSecret: PutSecretValue v3, VersionStages AWSPENDING + ptc-acr-password1 (held by v1)", run: func(c *conf) string {
			return c.pput("prod", "v3", `{"username":"ptc-pull","accessToken":"pw-3"}`, "AWSPENDING", "ptc-acr-password1")
		}},
		{name: "DescribeSecret: the slot label moved to v3", run: func(c *conf) string { return c.pdescribe("prod") }},
		{name: "finishSecret: UpdateSecretVersionStage AWSCURRENT to v3, RemoveFromVersionId v2", run: func(c *conf) string {
			return c.pstage("prod", "AWSCURRENT", "v3", "v2")
		}},
		{name: "DescribeSecret after rotation 2 (v1 has no label left)", run: func(c *conf) string { return c.pdescribe("prod") }},

		// --- GHCR's staged mode: a person puts the next token into the source secret ---
		{name: "a person stages the next token: PutSecretValue of the source, SecretString only", run: func(c *conf) string {
			return c.pput("source", "", `{"clientSecret":"second"}`)
		}},
		{name: "the next rotation reads it: GetSecretValue of the source, no VersionId or VersionStage", run: func(c *conf) string {
			return c.pget("source", "", "")
		}},

		// --- provisioner Update, in place ---
		{name: "Update: DescribeSecret by name", run: func(c *conf) string { return c.pdescribe(confProd) }},
		{name: "Update: TagResource a changed ptc:source-secret and a new tag", run: func(c *conf) string {
			return c.ptag("prod", "ptc:source-secret", confOtherSource, "cost-center", "42")
		}},
		{name: "Update: UntagResource a tag no longer in the properties", run: func(c *conf) string { return c.puntag("prod", "team") }},
		{name: "Update: DescribeSecret by name, the tags", run: func(c *conf) string { return c.pdescribe(confProd) }},
		{name: "Update (source changed): RotateSecret ScheduleExpression, RotateImmediately=true, no ClientRequestToken", run: func(c *conf) string {
			return c.protate("prod", "", true, &rate30, true)
		},
			dev: "pending-on-current-blocks", aws: "ok version=x2", moto: "err=InvalidRequestException",
			motoFix: func(c *conf) error {
				if got := c.pstage("prod", "AWSPENDING", "", "v3"); got != "ok" {
					return fmt.Errorf("clearing AWSPENDING from v3: %s", got)
				}
				if got := c.protate("prod", "", true, &days30, true); got != "err=ResourceNotFoundException" {
					return fmt.Errorf("RotateSecret: %s", got)
				}
				return nil
			}},
		{name: "DescribeSecret: the new rotation's pending version", run: func(c *conf) string { return c.pdescribe("prod") }},
		{name: "createSecret (an upstream without slot labels): PutSecretValue x2, VersionStages AWSPENDING only", run: func(c *conf) string {
			return c.pput("prod", "x2", `{"username":"ptc-pull","accessToken":"pw-4"}`, "AWSPENDING")
		}},
		{name: "DescribeSecret after the put to x2", run: func(c *conf) string { return c.pdescribe("prod") }},

		// --- provisioner Delete (RecoveryWindowInDays 0) ---
		{name: "Delete: DescribeSecret by name", run: func(c *conf) string { return c.pdescribe(confProd) }},
		{name: "Delete: GetSecretValue of the source, to revoke the tokens", run: func(c *conf) string { return c.pget("source", "", "") }},
		{name: "Delete: DeleteSecret by ARN, ForceDeleteWithoutRecovery", run: func(c *conf) string { return c.pdelete("prod", true, 0) }},
		{name: "undo / SDK retry: DeleteSecret ForceDeleteWithoutRecovery of the gone secret", run: func(c *conf) string {
			return c.pdelete("prod", true, 0)
		}},
		{name: "Delete retried: DescribeSecret by name of the gone secret", run: func(c *conf) string { return c.pdescribe(confProd) }},
		{name: "a late rotation event: DescribeSecret by ARN of the gone secret", run: func(c *conf) string { return c.pdescribe("prod") }},
		{name: "setup: the source secret is deleted", run: func(c *conf) string { return c.pdelete("source", true, 0) }},
		{name: "Delete: GetSecretValue of the gone source", run: func(c *conf) string { return c.pget("source", "", "") }},

		// --- provisioner Delete with a recovery window ---
		{name: "setup: CreateSecret a second managed secret", run: func(c *conf) string {
			return c.pcreate("window", confWindow, 40, `{"username":"u","accessToken":"w-1"}`, prodTags[2:3])
		}},
		{name: "Delete: DeleteSecret by ARN, RecoveryWindowInDays 7", run: func(c *conf) string { return c.pdelete("window", false, 7) }},
		{name: "Create with that SecretName: DescribeSecret by name shows DeletedDate", run: func(c *conf) string { return c.pdescribe(confWindow) }},
		// Delete treats only ResourceNotFoundException as "already gone": a Delete retried after
		// this one succeeded (a lost answer) fails on this InvalidRequestException.
		{name: "Delete retried: DeleteSecret RecoveryWindowInDays 7 of a secret scheduled for deletion", run: func(c *conf) string {
			return c.pdelete("window", false, 7)
		}},
		{name: "ECR reads it: GetSecretValue AWSCURRENT of a secret scheduled for deletion", run: func(c *conf) string {
			return c.pget("window", "", "AWSCURRENT")
		}},
		{name: "Delete (RecoveryWindowInDays 0 now): DeleteSecret ForceDeleteWithoutRecovery of a secret scheduled for deletion", run: func(c *conf) string {
			return c.pdelete("window", true, 0)
		}},
		{name: "DescribeSecret by name after it", run: func(c *conf) string { return c.pdescribe(confWindow) }},

		// --- the protecting resource policy (ValidateResourcePolicy is not here: moto 5.2.1 does
		// not implement it, and the moto gate answers it with localsm's checks) ---
		{name: "setup: CreateSecret a third managed secret", run: func(c *conf) string {
			return c.pcreate("guarded", confGuarded, 60, `{"username":"u","accessToken":"g-1"}`, prodTags[2:3])
		}},
		{name: "Create/Update: GetResourcePolicy by ARN before any policy", run: func(c *conf) string { return c.pgetpolicy("guarded") }},
		{name: "Create: PutResourcePolicy by ARN, the protecting policy, BlockPublicPolicy", run: func(c *conf) string { return c.pputpolicy("guarded") }},
		{name: "Update: GetResourcePolicy by ARN reads it back", run: func(c *conf) string { return c.pgetpolicy("guarded") }},
		{name: "Update: PutResourcePolicy again (drift repaired, or an SDK retry)", run: func(c *conf) string { return c.pputpolicy("guarded") }},
		{name: "GetResourcePolicy of a secret that does not exist", run: func(c *conf) string { return c.pgetpolicy("ecr-pullthroughcache/conformance-none") }},
		// --- rotator facts (internal/rotation/facts.go) ---
		{name: "setup: CreateSecret a managed secret for the rotator's facts", run: func(c *conf) string {
			return c.pcreate("facts", confFacts, 60, `{"username":"u","accessToken":"f-1"}`, prodTags[:1])
		}},
		{name: "failed-step facts: TagResource by ARN ptc:rotator:last-failure, ptc:rotator:last-error", run: func(c *conf) string {
			return c.ptag("facts", "ptc:rotator:last-failure", "2026-12-04T17:00:00Z testSecret", "ptc:rotator:last-error",
				"the pending token of ecr-pullthroughcache/x cannot log in: login check at https://registry-1.docker.io: HTTP 401 = + - @ _ . : /")
		}},
		{name: "the next promotion clears them: TagResource by ARN, both none", run: func(c *conf) string {
			return c.ptag("facts", "ptc:rotator:last-failure", "none", "ptc:rotator:last-error", "none")
		}},
		{name: "DescribeSecret by ARN: the facts among the tags", run: func(c *conf) string { return c.pdescribe("facts") }},
		{name: "facts of a secret deleted meanwhile: TagResource by ARN", run: func(c *conf) string {
			if got := c.pdelete("facts", true, 0); !strings.HasPrefix(got, "ok") {
				return "delete: " + got
			}
			return c.ptag("facts", "ptc:rotator:last-failure", "2026-12-05T17:00:00Z createSecret")
		}},
	}
}

// confGuarded is the product script's secret for the resource-policy calls.
const confGuarded = "ecr-pullthroughcache/conformance-guarded"

// pgetpolicy is GetResourcePolicy as the provisioner calls it (SecretId=ARN), reading
// ResourcePolicy.
func (c *conf) pgetpolicy(key string) string {
	out, err := c.sm.GetResourcePolicy(c.ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(c.id(key))})
	if err != nil {
		return okOr(err)
	}
	pol := "none"
	switch p := aws.ToString(out.ResourcePolicy); {
	case p == confPolicy:
		pol = "protecting"
	case p != "":
		pol = "other: " + p
	}
	return fmt.Sprintf("ok name=%s arn-shape=%v policy=%s", aws.ToString(out.Name), c.arnShape(aws.ToString(out.Name), aws.ToString(out.ARN)), pol)
}

// pputpolicy is PutResourcePolicy as the provisioner calls it.
func (c *conf) pputpolicy(key string) string {
	out, err := c.sm.PutResourcePolicy(c.ctx, &secretsmanager.PutResourcePolicyInput{
		SecretId: aws.String(c.id(key)), ResourcePolicy: aws.String(confPolicy), BlockPublicPolicy: aws.Bool(true),
	})
	if err != nil {
		return okOr(err)
	}
	return fmt.Sprintf("ok name=%s arn-shape=%v", aws.ToString(out.Name), c.arnShape(aws.ToString(out.Name), aws.ToString(out.ARN)))
}

// confPolicy is the protecting policy for the test world's roles.
var confPolicy = func() string {
	p, err := provision.ProtectingPolicy(testenv.RotatorRoleARN, testenv.ProvisionerRoleARN)
	if err != nil {
		panic(err)
	}
	return p
}()

// The product script's secrets, named as the product names them.
const (
	confSource      = "ptc-source/conformance"
	confProd        = "ecr-pullthroughcache/conformance-prod"
	confWindow      = "ecr-pullthroughcache/conformance-window"
	confFacts       = "ecr-pullthroughcache/conformance-facts"
	confOtherSource = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/other-AbCdEf"
	confManagedBy   = "arn:aws:cloudformation:us-east-1:123456789012:stack/ptc-conformance/0f0e0d0c-0b0a-4909-8807-060504030201/Cache"
)

// confDescribeLine is pdescribe's answer for the product secret right after Create.
func confDescribeLine(stages string, rotation bool) string {
	return fmt.Sprintf("ok name=%s arn-shape=true kms=- tags={ptc:managed-by=%s ptc:registry-url=ptcreg.azurecr.io ptc:source-secret=<source> ptc:upstream=azure-container-registry team=platform} stages=%s rotation=%v lambda=configured deleted=false",
		confProd, confManagedBy, stages, rotation)
}

// id is what the product passes as SecretId for a script key (the secret's ARN on this server)
// or for a name.
func (c *conf) id(keyOrName string) string {
	if arn, ok := c.arns[keyOrName]; ok {
		return arn
	}
	return keyOrName
}

// norm replaces this server's ARNs of the script's secrets by <key>, so transcripts compare.
func (c *conf) norm(s string) string {
	for k, arn := range c.arns {
		s = strings.ReplaceAll(s, arn, "<"+k+">")
	}
	return s
}

func (c *conf) arnShape(name, arn string) bool {
	return regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:` + regexp.QuoteMeta(name) + `-[A-Za-z0-9]{6}$`).MatchString(arn)
}

// pcreate is CreateSecret as the provisioner makes it (version n > 0: ClientRequestToken,
// Description, Tags, where a tag value "<key>" stands for that secret's ARN), or as a person
// makes a source secret (n 0: Name and SecretString only).
func (c *conf) pcreate(key, name string, n int, value string, tags []smtypes.Tag) string {
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}
	if n > 0 {
		in.ClientRequestToken = aws.String(tok(n))
		in.Description = aws.String("ECR pull-through cache credential for conformance (azure-container-registry), rotated by ptc-credentials")
		for _, t := range tags {
			v := aws.ToString(t.Value)
			if strings.HasPrefix(v, "<") {
				v = c.arns[strings.Trim(v, "<>")]
			}
			in.Tags = append(in.Tags, smtypes.Tag{Key: t.Key, Value: aws.String(v)})
		}
	}
	out, err := c.sm.CreateSecret(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	c.arns[key] = aws.ToString(out.ARN)
	version := "(made by the SDK)"
	if n > 0 {
		version = c.vname(aws.ToString(out.VersionId))
	}
	return fmt.Sprintf("ok name=%s version=%s arn-shape=%v", aws.ToString(out.Name), version, c.arnShape(name, aws.ToString(out.ARN)))
}

// pdescribe renders what the product reads of DescribeSecret: Name, the ARN, KmsKeyId (ECR
// needs the default key), Tags, the labelled versions, RotationEnabled, RotationLambdaARN and
// DeletedDate.
func (c *conf) pdescribe(keyOrName string) string {
	d, err := c.sm.DescribeSecret(c.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(c.id(keyOrName))})
	if err != nil {
		return outcome(err)
	}
	lambda := orDash(aws.ToString(d.RotationLambdaARN))
	if lambda == lambdaARN {
		lambda = "configured"
	}
	var tags []string
	for _, t := range d.Tags {
		v := c.norm(aws.ToString(t.Value))
		if n := c.vname(aws.ToString(t.Value)); n != "?" {
			v = n // the tested mark names a version: by its step-local name
		}
		tags = append(tags, aws.ToString(t.Key)+"="+v)
	}
	slices.Sort(tags)
	return fmt.Sprintf("ok name=%s arn-shape=%v kms=%s tags={%s} stages=%s rotation=%v lambda=%s deleted=%v",
		aws.ToString(d.Name), c.arnShape(aws.ToString(d.Name), aws.ToString(d.ARN)), orDash(aws.ToString(d.KmsKeyId)),
		strings.Join(tags, " "), c.fmtStages(d.VersionIdsToStages, false), aws.ToBool(d.RotationEnabled), lambda, d.DeletedDate != nil)
}

// pget is GetSecretValue by ARN, with the version (a step-local name) and stage when given.
func (c *conf) pget(key, version, stage string) string {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(c.id(key))}
	if version != "" {
		in.VersionId = aws.String(c.vid(version))
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := c.sm.GetSecretValue(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	st := slices.Clone(out.VersionStages)
	slices.Sort(st)
	return fmt.Sprintf("ok version=%s stages=%v value=%q arn-shape=%v", c.vname(aws.ToString(out.VersionId)), st, aws.ToString(out.SecretString),
		c.arnShape(aws.ToString(out.Name), aws.ToString(out.ARN)))
}

// pput is PutSecretValue by ARN: as createSecret makes it (version, VersionStages and a
// RotationToken), or as a person does (no version: SecretString only).
func (c *conf) pput(key, version, value string, stages ...string) string {
	in := &secretsmanager.PutSecretValueInput{SecretId: aws.String(c.id(key)), SecretString: aws.String(value)}
	if version != "" {
		in.ClientRequestToken = aws.String(c.vid(version))
		in.VersionStages = stages
		in.RotationToken = aws.String("rotation-token-0f0e0d0c-0b0a-4909-8807-060504030201")
	}
	out, err := c.sm.PutSecretValue(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	st := slices.Clone(out.VersionStages)
	slices.Sort(st)
	v := "(made by the SDK)"
	if version != "" {
		v = c.vname(aws.ToString(out.VersionId))
	}
	return fmt.Sprintf("ok version=%s stages=%v", v, st)
}

// pstage is UpdateSecretVersionStage by ARN; move and remove are step-local names or "".
func (c *conf) pstage(key, label, move, remove string) string {
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(c.id(key)), VersionStage: aws.String(label)}
	if move != "" {
		in.MoveToVersionId = aws.String(c.vid(move))
	}
	if remove != "" {
		in.RemoveFromVersionId = aws.String(c.vid(remove))
	}
	_, err := c.sm.UpdateSecretVersionStage(c.ctx, in)
	return okOr(err)
}

// protate is RotateSecret by ARN: as the provisioner makes it (no version: the SDK makes the
// ClientRequestToken; the function ARN and rules) or as Secrets Manager starts a rotation.
func (c *conf) protate(key, version string, lambda bool, rules *smtypes.RotationRulesType, immediately bool) string {
	in := &secretsmanager.RotateSecretInput{SecretId: aws.String(c.id(key)), RotationRules: rules, RotateImmediately: aws.Bool(immediately)}
	if version != "" {
		in.ClientRequestToken = aws.String(c.vid(version))
	}
	if lambda {
		in.RotationLambdaARN = aws.String(lambdaARN)
	}
	out, err := c.sm.RotateSecret(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	c.learn(aws.ToString(out.VersionId))
	return "ok version=" + c.vname(aws.ToString(out.VersionId))
}

// ptag is TagResource by ARN with key, value pairs.
func (c *conf) ptag(key string, kv ...string) string {
	in := &secretsmanager.TagResourceInput{SecretId: aws.String(c.id(key))}
	for i := 0; i+1 < len(kv); i += 2 {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	_, err := c.sm.TagResource(c.ctx, in)
	return okOr(err)
}

// puntag is UntagResource by ARN.
func (c *conf) puntag(key string, keys ...string) string {
	_, err := c.sm.UntagResource(c.ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(c.id(key)), TagKeys: keys})
	return okOr(err)
}

// pdelete is DeleteSecret by ARN as the provisioner makes it: ForceDeleteWithoutRecovery, or a
// recovery window. The answer's Name is shown only for a secret that exists (for one already
// gone AWS has no name to give, and moto echoes the SecretId).
func (c *conf) pdelete(key string, force bool, window int64) string {
	d, derr := c.sm.DescribeSecret(c.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(c.id(key))})
	in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(c.id(key))}
	if force {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
	} else {
		in.RecoveryWindowInDays = aws.Int64(window)
	}
	out, err := c.sm.DeleteSecret(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	if derr != nil {
		return fmt.Sprintf("ok (secret was %s) deletion-date=%v", outcome(derr), out.DeletionDate != nil)
	}
	return fmt.Sprintf("ok name=%s (was deleted=%v) deletion-date=%v", aws.ToString(out.Name), d.DeletedDate != nil, out.DeletionDate != nil)
}
