package localsm

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
)

type tagJSON struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

func renderTags(tags []tag) []tagJSON {
	if len(tags) == 0 {
		return nil
	}
	out := make([]tagJSON, len(tags))
	for i, t := range tags {
		k, v := t.key, t.value
		out[i] = tagJSON{Key: &k, Value: &v}
	}
	return out
}

type createIn struct {
	Name               *string
	ClientRequestToken *string
	Description        *string
	KmsKeyId           *string
	SecretString       *string
	SecretBinary       []byte
	Tags               []tagJSON
	AddReplicaRegions  []replicaRegionJSON
	// ForceOverwriteReplicaSecret replaces a secret of the same name in a replica Region.
	ForceOverwriteReplicaSecret *bool
}

type createOut struct {
	ARN               string           `json:"ARN"`
	Name              string           `json:"Name"`
	VersionId         string           `json:"VersionId,omitempty"`
	ReplicationStatus []replStatusJSON `json:"ReplicationStatus,omitempty"`
}

type secretRef struct {
	ARN       string `json:"ARN"`
	Name      string `json:"Name"`
	VersionId string `json:"VersionId,omitempty"`
}

func (s *Server) createSecret(_ context.Context, body []byte) (any, *apiError) {
	var in createIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.Name == nil {
		return nil, errParam("Name is required.")
	}
	if e := checkName(*in.Name); e != nil {
		return nil, e
	}
	if e := checkValue(in.SecretString, in.SecretBinary); e != nil {
		return nil, e
	}
	if in.Description != nil && len(*in.Description) > 2048 {
		return nil, errParam("Description must be at most 2048 characters long.")
	}
	var replicas []*replica
	if in.AddReplicaRegions != nil {
		if s.cluster == nil {
			return nil, errRequest("localsm does not replicate secrets to other Regions.")
		}
		var e *apiError
		if replicas, e = s.checkReplicaRegions(in.AddReplicaRegions, nil); e != nil {
			return nil, e
		}
	}
	token := newUUID()
	if in.ClientRequestToken != nil {
		token = *in.ClientRequestToken
		if e := checkVersionID("ClientRequestToken", token); e != nil {
			return nil, e
		}
	}
	tags, e := mergeTags(nil, in.Tags)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.lookup(*in.Name); old != nil {
		if old.isDeleted() {
			return nil, errRequest("You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		// A retry with the same ClientRequestToken and the same value is ignored (CreateSecret
		// API reference, ClientRequestToken); anything else is a second secret of that name.
		if v := old.versions[token]; v != nil && v.hasValue() && v.sameData(in.SecretString, in.SecretBinary) {
			return createOut{ARN: old.arn, Name: old.name, VersionId: v.id, ReplicationStatus: s.renderReplication(old)}, nil
		}
		return nil, errf("ResourceExistsException", "The operation failed because the secret %s already exists.", *in.Name)
	}
	now := s.opts.Now()
	sec := &secret{
		arn:      s.partialARN(*in.Name) + "-" + arnSuffix(),
		name:     *in.Name,
		tags:     tags,
		versions: map[string]*version{},
		created:  now,
		changed:  now,
	}
	if in.Description != nil {
		sec.description = *in.Description
	}
	if in.KmsKeyId != nil {
		sec.kmsKeyID = *in.KmsKeyId
	}
	out := createOut{ARN: sec.arn, Name: sec.name}
	if in.SecretString != nil || in.SecretBinary != nil {
		sec.addVersion(&version{id: token, str: in.SecretString, bin: in.SecretBinary, stages: []string{StageCurrent}, created: now})
		out.VersionId = token
	}
	s.secrets[sec.name] = sec
	if len(replicas) > 0 {
		sec.replicas = replicas
		regions := make([]string, len(replicas))
		for i, r := range replicas {
			regions[i] = r.region
		}
		s.queueSync(sec, regions, in.ForceOverwriteReplicaSecret != nil && *in.ForceOverwriteReplicaSecret, 0)
		out.ReplicationStatus = s.renderReplication(sec)
	}
	return out, nil
}

type secretIDIn struct {
	SecretId *string
}

type rulesJSON struct {
	AutomaticallyAfterDays *int64  `json:",omitempty"`
	Duration               *string `json:",omitempty"`
	ScheduleExpression     *string `json:",omitempty"`
}

type describeOut struct {
	ARN                string              `json:"ARN"`
	Name               string              `json:"Name"`
	Description        string              `json:"Description,omitempty"`
	KmsKeyId           string              `json:"KmsKeyId,omitempty"`
	RotationEnabled    *bool               `json:"RotationEnabled,omitempty"`
	RotationLambdaARN  string              `json:"RotationLambdaARN,omitempty"`
	RotationRules      *rulesJSON          `json:"RotationRules,omitempty"`
	LastRotatedDate    *epoch              `json:"LastRotatedDate,omitempty"`
	LastChangedDate    *epoch              `json:"LastChangedDate,omitempty"`
	LastAccessedDate   *epoch              `json:"LastAccessedDate,omitempty"`
	DeletedDate        *epoch              `json:"DeletedDate,omitempty"`
	NextRotationDate   *epoch              `json:"NextRotationDate,omitempty"`
	CreatedDate        *epoch              `json:"CreatedDate,omitempty"`
	Tags               []tagJSON           `json:"Tags,omitempty"`
	VersionIdsToStages map[string][]string `json:"VersionIdsToStages,omitempty"`
	PrimaryRegion      string              `json:"PrimaryRegion,omitempty"`
	ReplicationStatus  []replStatusJSON    `json:"ReplicationStatus,omitempty"`
}

func (s *Server) describeSecret(_ context.Context, body []byte) (any, *apiError) {
	var in secretIDIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, errNotFound()
	}
	out := describeOut{
		ARN: sec.arn, Name: sec.name, Description: sec.description, KmsKeyId: sec.kmsKeyID,
		LastRotatedDate: ts(sec.lastRotated), LastChangedDate: ts(sec.changed), LastAccessedDate: ts(sec.accessed),
		DeletedDate: ts(sec.deleted), CreatedDate: ts(sec.created), Tags: renderTags(sec.tags),
		ReplicationStatus: s.renderReplication(sec), PrimaryRegion: sec.primaryRegion,
	}
	if out.PrimaryRegion == "" && len(sec.replicas) > 0 {
		// A replicated primary names its own Region (DescribeSecret API reference,
		// PrimaryRegion); a secret that was never replicated shows none.
		out.PrimaryRegion = s.opts.Region
	}
	if sec.rotationConfigured {
		enabled := sec.rotationEnabled
		out.RotationEnabled = &enabled
		out.RotationLambdaARN = sec.lambdaARN
		out.RotationRules = sec.rules.render()
		if enabled {
			out.NextRotationDate = ts(sec.nextRotation)
		}
	}
	// Only versions with staging labels: the others are deprecated (DescribeSecret API
	// reference, VersionIdsToStages).
	for _, vid := range sec.order {
		v := sec.versions[vid]
		if len(v.stages) == 0 {
			continue
		}
		if out.VersionIdsToStages == nil {
			out.VersionIdsToStages = map[string][]string{}
		}
		out.VersionIdsToStages[vid] = slices.Clone(v.stages)
	}
	return out, nil
}

type getIn struct {
	SecretId     *string
	VersionId    *string
	VersionStage *string
}

type getOut struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionId     string   `json:"VersionId"`
	SecretString  *string  `json:"SecretString,omitempty"`
	SecretBinary  []byte   `json:"SecretBinary,omitempty"`
	VersionStages []string `json:"VersionStages,omitempty"`
	CreatedDate   *epoch   `json:"CreatedDate,omitempty"`
}

func (s *Server) getSecretValue(_ context.Context, body []byte) (any, *apiError) {
	var in getIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	if in.VersionId != nil {
		if e := checkVersionID("VersionId", *in.VersionId); e != nil {
			return nil, e
		}
	}
	if in.VersionStage != nil {
		if e := checkStage("VersionStage", *in.VersionStage); e != nil {
			return nil, e
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, errNotFound()
	}
	if sec.isDeleted() {
		return nil, errDeleted()
	}
	var v *version
	what := ""
	if in.VersionId != nil {
		what = "VersionId: " + *in.VersionId
		v = sec.versions[*in.VersionId]
		if v != nil && in.VersionStage != nil && !v.has(*in.VersionStage) {
			// "If you include both this parameter and VersionId, the two parameters must refer
			// to the same secret version" (GetSecretValue API reference, VersionStage).
			return nil, errf("ResourceNotFoundException", "You provided a VersionStage that is not associated to the provided VersionId.")
		}
	} else {
		stage := StageCurrent
		if in.VersionStage != nil {
			stage = *in.VersionStage
		}
		what = "staging label: " + stage
		v = sec.holder(stage)
	}
	if v == nil || !v.hasValue() {
		return nil, errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for %s", what)
	}
	// LastAccessedDate is kept to the day, as AWS keeps it.
	day := s.opts.Now().UTC().Truncate(24 * time.Hour)
	v.accessed, sec.accessed = day, day
	if s.cluster != nil && sec.primaryRegion != "" {
		s.cluster.noteAccess(s.opts.Region, sec.name, tailOf(sec), day)
	}
	return getOut{
		ARN: sec.arn, Name: sec.name, VersionId: v.id, SecretString: v.str, SecretBinary: v.bin,
		VersionStages: slices.Clone(v.stages), CreatedDate: ts(v.created),
	}, nil
}

type putIn struct {
	SecretId           *string
	ClientRequestToken *string
	SecretString       *string
	SecretBinary       []byte
	VersionStages      []string
	RotationToken      *string
}

type putOut struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionId     string   `json:"VersionId"`
	VersionStages []string `json:"VersionStages,omitempty"`
}

func (s *Server) putSecretValue(_ context.Context, body []byte) (any, *apiError) {
	var in putIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	if in.SecretString == nil && in.SecretBinary == nil {
		return nil, errRequest("You must provide either SecretString or SecretBinary.")
	}
	if e := checkValue(in.SecretString, in.SecretBinary); e != nil {
		return nil, e
	}
	token := newUUID()
	if in.ClientRequestToken != nil {
		token = *in.ClientRequestToken
		if e := checkVersionID("ClientRequestToken", token); e != nil {
			return nil, e
		}
	}
	if in.RotationToken != nil && !rotationTokenRE.MatchString(*in.RotationToken) {
		return nil, errParam("RotationToken must be 36-256 letters, digits or hyphens.")
	}
	stages := []string{StageCurrent}
	if in.VersionStages != nil {
		if len(in.VersionStages) < 1 || len(in.VersionStages) > 20 {
			return nil, errParam("VersionStages must list 1-20 staging labels.")
		}
		for _, st := range in.VersionStages {
			if e := checkStage("VersionStages", st); e != nil {
				return nil, e
			}
		}
		stages = in.VersionStages
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, errNotFound()
	}
	if sec.isDeleted() {
		return nil, errDeleted()
	}
	v := sec.versions[token]
	switch {
	case v != nil && v.hasValue() && v.sameData(in.SecretString, in.SecretBinary):
		// Same token, same data: the request is ignored (PutSecretValue API reference).
		return putOut{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
	case v != nil && v.hasValue():
		return nil, errf("ResourceExistsException", "You can't modify an existing version, you can only create new versions: ClientRequestToken %s is already the id of a version of secret %s with a different value.", token, sec.arn)
	case v == nil:
		if len(sec.versions) == 0 && !slices.Contains(stages, StageCurrent) {
			// "If this operation creates the first version for the secret, then Secrets
			// Manager automatically attaches the staging label AWSCURRENT."
			stages = append(slices.Clone(stages), StageCurrent)
		}
		v = &version{id: token, created: s.opts.Now()}
		sec.addVersion(v)
	}
	// A new version, or the value-less version RotateSecret staged for the rotation function.
	v.str, v.bin = in.SecretString, in.SecretBinary
	// AWSCURRENT first, so an explicit AWSPREVIOUS in the same request wins.
	ordered := slices.Clone(stages)
	slices.SortStableFunc(ordered, func(a, b string) int {
		switch {
		case a == StageCurrent && b != StageCurrent:
			return -1
		case b == StageCurrent && a != StageCurrent:
			return 1
		}
		return 0
	})
	for _, st := range ordered {
		sec.attach(v, st)
	}
	sec.changed = s.opts.Now()
	return putOut{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
}

type stageIn struct {
	SecretId            *string
	VersionStage        *string
	MoveToVersionId     *string
	RemoveFromVersionId *string
}

func (s *Server) updateSecretVersionStage(_ context.Context, body []byte) (any, *apiError) {
	var in stageIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	if in.VersionStage == nil {
		return nil, errParam("VersionStage is required.")
	}
	stage := *in.VersionStage
	if e := checkStage("VersionStage", stage); e != nil {
		return nil, e
	}
	moveTo, removeFrom := deref(in.MoveToVersionId), deref(in.RemoveFromVersionId)
	for _, f := range []struct{ name, v string }{{"MoveToVersionId", moveTo}, {"RemoveFromVersionId", removeFrom}} {
		if f.v != "" {
			if e := checkVersionID(f.name, f.v); e != nil {
				return nil, e
			}
		}
	}
	if moveTo == "" && removeFrom == "" {
		return nil, errParam("Specify MoveToVersionId, RemoveFromVersionId or both.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, errNotFound()
	}
	if sec.isDeleted() {
		return nil, errDeleted()
	}
	var target, from *version
	if moveTo != "" {
		if target = sec.versions[moveTo]; target == nil {
			return nil, errParam("Not a valid version: %s", moveTo)
		}
	}
	if removeFrom != "" {
		if from = sec.versions[removeFrom]; from == nil {
			return nil, errParam("Not a valid version: %s", removeFrom)
		}
	}
	holder := sec.holder(stage)
	switch {
	case holder != nil && holder == target && (from == nil || from == holder):
		// The label is already where it is asked to go.
		return secretRef{ARN: sec.arn, Name: sec.name}, nil
	case holder != nil && from == nil:
		// "If the label is attached and you either do not specify this parameter, or the
		// version ID does not match, then the operation fails" (RemoveFromVersionId).
		return nil, errParam("The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", stage, holder.id)
	case holder != nil && from != holder:
		return nil, errParam("The parameter RemoveFromVersionId doesn't match: staging label %s is attached to version %s, not to version %s.", stage, holder.id, from.id)
	case holder == nil && from != nil:
		return nil, errParam("Staging label %s is not attached to version %s, so it can't be removed from it.", stage, from.id)
	case stage == StageCurrent && target == nil:
		return nil, errParam("You can't remove staging label %s without moving it to another version with MoveToVersionId: a secret always has a current version.", StageCurrent)
	}
	if target != nil {
		sec.attach(target, stage)
	} else {
		from.remove(stage)
	}
	sec.changed = s.opts.Now()
	return secretRef{ARN: sec.arn, Name: sec.name}, nil
}

type deleteIn struct {
	SecretId                   *string
	RecoveryWindowInDays       *int64
	ForceDeleteWithoutRecovery *bool
}

type deleteOut struct {
	ARN          string `json:"ARN"`
	Name         string `json:"Name"`
	DeletionDate *epoch `json:"DeletionDate,omitempty"`
}

func (s *Server) deleteSecret(_ context.Context, body []byte) (any, *apiError) {
	var in deleteIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	force := in.ForceDeleteWithoutRecovery != nil && *in.ForceDeleteWithoutRecovery
	window := int64(30)
	if in.RecoveryWindowInDays != nil {
		window = *in.RecoveryWindowInDays
		if window < 7 || window > 30 {
			return nil, errParam("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
		if force {
			return nil, errParam("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	now := s.opts.Now()
	if sec == nil && force {
		// "If you forcibly delete an already deleted or nonexistent secret, the operation does
		// not return ResourceNotFoundException" (DeleteSecret API reference,
		// ForceDeleteWithoutRecovery): a retried force delete succeeds. There is no secret to
		// name, so the answer echoes the SecretId.
		arn, name := id, id
		if strings.HasPrefix(id, "arn:") {
			_, name, _ = strings.Cut(id, ":secret:")
		} else {
			arn = s.partialARN(id)
		}
		return deleteOut{ARN: arn, Name: name, DeletionDate: ts(now)}, nil
	}
	if sec == nil {
		return nil, errNotFound()
	}
	if len(sec.replicas) > 0 {
		// Secrets Manager refuses to delete a primary that still has replicas: they go first
		// (RemoveRegionsFromReplication). The error and its wording are AWS's as seen in the
		// wild (gruntwork-io/cloud-nuke issue 435); moto joins the Regions with "," alone.
		regions := make([]string, len(sec.replicas))
		for i, r := range sec.replicas {
			regions[i] = r.region
		}
		return nil, errParam("You can't delete secret %s that still has replica regions [%s].", id, strings.Join(regions, ", "))
	}
	if force {
		delete(s.secrets, sec.name)
		if r := s.running[sec.arn]; r != nil {
			r.cancel()
		}
		return deleteOut{ARN: sec.arn, Name: sec.name, DeletionDate: ts(now)}, nil
	}
	if sec.isDeleted() {
		return nil, errDeleted()
	}
	sec.deleted, sec.purgeAt = now, now.Add(time.Duration(window)*24*time.Hour)
	return deleteOut{ARN: sec.arn, Name: sec.name, DeletionDate: ts(sec.purgeAt)}, nil
}

func (s *Server) restoreSecret(_ context.Context, body []byte) (any, *apiError) {
	var in secretIDIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, errNotFound()
	}
	sec.deleted, sec.purgeAt = time.Time{}, time.Time{}
	sec.changed = s.opts.Now()
	return secretRef{ARN: sec.arn, Name: sec.name}, nil
}

type tagIn struct {
	SecretId *string
	Tags     []tagJSON
	TagKeys  []string
}

func (s *Server) tagResource(_ context.Context, body []byte) (any, *apiError) {
	var in tagIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	if in.Tags == nil {
		return nil, errParam("Tags is required.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, errNotFound()
	}
	tags, e := mergeTags(sec.tags, in.Tags)
	if e != nil {
		return nil, e
	}
	sec.tags, sec.changed = tags, s.opts.Now()
	return struct{}{}, nil
}

func (s *Server) untagResource(_ context.Context, body []byte) (any, *apiError) {
	var in tagIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	if in.TagKeys == nil {
		return nil, errParam("TagKeys is required.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, errNotFound()
	}
	sec.tags = slices.DeleteFunc(slices.Clone(sec.tags), func(t tag) bool { return slices.Contains(in.TagKeys, t.key) })
	sec.changed = s.opts.Now()
	return struct{}{}, nil
}

type listIn struct {
	SecretId          *string
	IncludeDeprecated *bool
	MaxResults        *int32
	NextToken         *string
}

type listEntry struct {
	VersionId        string   `json:"VersionId"`
	VersionStages    []string `json:"VersionStages,omitempty"`
	CreatedDate      *epoch   `json:"CreatedDate,omitempty"`
	LastAccessedDate *epoch   `json:"LastAccessedDate,omitempty"`
}

type listOut struct {
	ARN       string      `json:"ARN"`
	Name      string      `json:"Name"`
	Versions  []listEntry `json:"Versions"`
	NextToken string      `json:"NextToken,omitempty"`
}

func (s *Server) listSecretVersionIds(_ context.Context, body []byte) (any, *apiError) {
	var in listIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	limit := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, errParam("MaxResults must be 1-100.")
		}
		limit = int(*in.MaxResults)
	}
	start := 0
	if in.NextToken != nil && *in.NextToken != "" {
		n, err := strconv.Atoi(*in.NextToken)
		if err != nil || n < 0 {
			return nil, errf("InvalidNextTokenException", "The NextToken value is invalid.")
		}
		start = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, errNotFound()
	}
	var all []listEntry
	for _, vid := range sec.order {
		v := sec.versions[vid]
		if len(v.stages) == 0 && (in.IncludeDeprecated == nil || !*in.IncludeDeprecated) {
			continue
		}
		all = append(all, listEntry{VersionId: vid, VersionStages: slices.Clone(v.stages), CreatedDate: ts(v.created), LastAccessedDate: ts(v.accessed)})
	}
	out := listOut{ARN: sec.arn, Name: sec.name, Versions: []listEntry{}}
	if start < len(all) {
		end := min(start+limit, len(all))
		out.Versions = all[start:end]
		if end < len(all) {
			out.NextToken = strconv.Itoa(end)
		}
	}
	return out, nil
}

type updateIn struct {
	SecretId           *string
	ClientRequestToken *string
	Description        *string
	KmsKeyId           *string
	SecretString       *string
	SecretBinary       []byte
}

// updateSecret changes the description and key and, given a value, adds a version that becomes
// AWSCURRENT exactly as PutSecretValue would (UpdateSecret API reference).
func (s *Server) updateSecret(ctx context.Context, body []byte) (any, *apiError) {
	var in updateIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	if in.Description != nil && len(*in.Description) > 2048 {
		return nil, errParam("Description must be at most 2048 characters long.")
	}
	if e := checkValue(in.SecretString, in.SecretBinary); e != nil {
		return nil, e
	}
	if in.ClientRequestToken != nil {
		if e := checkVersionID("ClientRequestToken", *in.ClientRequestToken); e != nil {
			return nil, e
		}
	}
	s.mu.Lock()
	sec := s.lookup(id)
	if sec == nil {
		s.mu.Unlock()
		return nil, errNotFound()
	}
	if sec.isDeleted() {
		s.mu.Unlock()
		return nil, errDeleted()
	}
	if in.Description != nil {
		sec.description = *in.Description
	}
	if in.KmsKeyId != nil {
		sec.kmsKeyID = *in.KmsKeyId
	}
	sec.changed = s.opts.Now()
	out := secretRef{ARN: sec.arn, Name: sec.name}
	s.mu.Unlock()
	if in.SecretString == nil && in.SecretBinary == nil {
		return out, nil
	}
	put, _ := marshal(putIn{SecretId: &out.ARN, ClientRequestToken: in.ClientRequestToken, SecretString: in.SecretString, SecretBinary: in.SecretBinary})
	res, e := s.putSecretValue(ctx, put)
	if e != nil {
		return nil, e
	}
	p := res.(putOut)
	return secretRef{ARN: p.ARN, Name: p.Name, VersionId: p.VersionId}, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
