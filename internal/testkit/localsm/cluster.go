package localsm

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
)

// Multi-Region Secrets Manager: a Cluster is one Server per Region behind one endpoint, and
// replication between them the way Secrets Manager replicates (replication API reference and
// "Replicate AWS Secrets Manager secrets across Regions").
//
// A replica has the primary's name and ARN suffix with its own Region in the ARN; it copies the
// primary's value versions with their staging labels, tags, description, resource policy and
// rotation configuration, and is read-only: every write in its Region answers
// InvalidParameterException ("Operation not permitted on a replica secret. Call must be made in
// primary secret's region."). DescribeSecret shows ReplicationStatus on the primary and
// PrimaryRegion on both (on a replica it differs from the ARN's Region). A primary that still
// has replicas refuses DeleteSecret with InvalidParameterException.
//
// Replication is asynchronous, as in AWS: every change to a primary that has replicas queues a
// full copy of its replicated state for each replica Region, due ReplicationLag later by the
// Options.Now clock. Queued copies are applied lazily, before and after every request any
// Region serves, once the clock has passed their due time; a replica therefore shows the old
// version until the clock passes, which is the window the provisioner's bounded wait covers.
// FailReplication makes copies into a Region fail (the primary's ReplicationStatus for it turns
// Failed with a StatusMessage, the replica keeps what it had) until HealReplication, which
// queues a fresh copy of every secret replicating there.
//
// Locks: a Server's mu is never held while another Server's mu is taken. Handlers that need
// another Region queue an event (Cluster.mu is a leaf lock); Cluster.pump applies events one
// at a time, serialised by pumpMu, taking one Server's mu at a time.

// Replication statuses, as ReplicationStatus[].Status spells them.
const (
	ReplicationInProgress = "InProgress"
	ReplicationInSync     = "InSync"
	ReplicationFailed     = "Failed"
)

// DefaultReplicaKMSKey is the KmsKeyId ReplicationStatus shows for a replica encrypted with the
// Region's AWS managed key (no KmsKeyId given), as moto and AWS show it.
const DefaultReplicaKMSKey = "alias/aws/secretsmanager"

// ClusterOptions configure a Cluster.
type ClusterOptions struct {
	// Regions are the emulated Regions; the first is the home Region (requests whose Region
	// cannot be read go there). Each gets its own *Server. Empty: just DefaultRegion.
	Regions []string
	// Options is the template for every Region's Server (its Region field is overridden).
	Options Options
	// ReplicationLag is how long after a write to a primary it reaches the replicas, by the
	// Options.Now clock. 0: at once (visible to the next request).
	ReplicationLag time.Duration
}

// Cluster is a multi-Region Secrets Manager: one Server per Region, one http.Handler that
// routes each request by its SigV4 credential scope's Region, and replication between them.
// Create it with NewCluster.
type Cluster struct {
	regions []string
	servers map[string]*Server
	lag     time.Duration
	now     func() time.Time

	pumpMu sync.Mutex // serialises applying events

	mu       sync.Mutex // guards queue, seq, failing, accessed; a leaf lock
	queue    []*event
	seq      uint64
	failing  map[string]bool
	accessed map[string]time.Time // replica reads, by Region + name + ARN suffix
}

type eventKind int

const (
	evSync   eventKind = iota // copy the primary's state into the replica Region
	evRemove                  // delete the replica (RemoveRegionsFromReplication)
	evDetach                  // the replica was promoted: drop it from the primary's list
)

// event is one queued replication effect.
type event struct {
	kind     eventKind
	due      time.Time
	seq      uint64
	from, to string // source and destination Regions
	name     string // the secret's name (the same in every Region)
	tail     string // the ARN's random suffix ("-AbCdEf"), which tells two secrets of a name apart
	snap     *secret
	force    bool // ForceOverwriteReplicaSecret
}

// NewCluster returns a Cluster with an empty Secrets Manager in each Region.
func NewCluster(o ClusterOptions) *Cluster {
	regions := slices.Clone(o.Regions)
	if len(regions) == 0 {
		regions = []string{DefaultRegion}
	}
	now := o.Options.Now
	if now == nil {
		now = time.Now
	}
	c := &Cluster{regions: regions, servers: map[string]*Server{}, lag: o.ReplicationLag, now: now, failing: map[string]bool{}}
	for _, r := range regions {
		opts := o.Options
		opts.Region = r
		opts.Now = now
		s := New(opts)
		s.cluster = c
		c.servers[r] = s
	}
	return c
}

// Region returns that Region's emulator (nil for a Region the cluster does not have).
func (c *Cluster) Region(name string) *Server { return c.servers[name] }

// Regions returns the cluster's Regions, home first.
func (c *Cluster) Regions() []string { return slices.Clone(c.regions) }

// ServeHTTP routes a request to the Server of its SigV4 credential scope's Region. An unsigned
// request goes to the home Region (which refuses it as any Server does); a Region the cluster
// does not have is answered as AWS answers a credential scoped to a Region it does not serve.
func (c *Cluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	region := emukit.SigV4Region(r)
	if region == "" {
		c.servers[c.regions[0]].ServeHTTP(w, r)
		return
	}
	s := c.servers[region]
	if s == nil {
		writeError(w, &apiError{Type: "InvalidSignatureException", Status: http.StatusForbidden,
			Message: "Credential should be scoped to a valid region. localsm serves " + strings.Join(c.regions, ", ") + ", not " + region + "."})
		return
	}
	s.ServeHTTP(w, r)
}

// FailReplication makes replication into region fail until HealReplication: the primary's
// ReplicationStatus for the Region turns Failed (with a StatusMessage) at the next copy due, and
// the replica keeps what it had (or is never created).
func (c *Cluster) FailReplication(region string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failing[region] = true
}

// HealReplication ends FailReplication for region and queues a fresh copy of every primary
// that replicates there, so the replicas converge.
func (c *Cluster) HealReplication(region string) {
	c.mu.Lock()
	delete(c.failing, region)
	c.mu.Unlock()
	for _, src := range c.regions {
		s := c.servers[src]
		s.mu.Lock()
		for _, sec := range s.secrets {
			if sec.primaryRegion == "" && sec.replicaIn(region) != nil && !sec.isDeleted() {
				s.queueSync(sec, []string{region}, false, 0)
			}
		}
		s.mu.Unlock()
	}
	c.pump()
}

// enqueue adds events (Cluster.mu is a leaf: callers may hold a Server's mu).
func (c *Cluster) enqueue(evs ...*event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		c.seq++
		ev.seq = c.seq
		c.queue = append(c.queue, ev)
	}
}

// pump applies every queued event whose due time the clock has passed, oldest due first. It
// must be called with no Server's mu held.
func (c *Cluster) pump() {
	c.pumpMu.Lock()
	defer c.pumpMu.Unlock()
	for {
		now := c.now()
		c.mu.Lock()
		sort.SliceStable(c.queue, func(i, j int) bool { return c.queue[i].due.Before(c.queue[j].due) })
		if len(c.queue) == 0 || c.queue[0].due.After(now) {
			c.mu.Unlock()
			return
		}
		ev := c.queue[0]
		c.queue = c.queue[1:]
		failing := c.failing[ev.to]
		c.mu.Unlock()
		switch ev.kind {
		case evSync:
			c.applySync(ev, failing)
		case evRemove:
			c.applyRemove(ev)
		case evDetach:
			c.applyDetach(ev)
		}
	}
}

// applySync copies a snapshot into the replica Region and records the outcome on the primary.
func (c *Cluster) applySync(ev *event, failing bool) {
	src := c.servers[ev.from]
	// The primary is the authority on whether the Region is still a replica: a copy queued
	// before RemoveRegionsFromReplication or StopReplicationToReplica must not bring it back.
	src.mu.Lock()
	psec := src.lookup(ev.name)
	live := psec != nil && tailOf(psec) == ev.tail && psec.replicaIn(ev.to) != nil
	kmsKey := ""
	if live {
		if k := psec.replicaIn(ev.to).kmsKeyID; k != DefaultReplicaKMSKey {
			kmsKey = k
		}
	}
	src.mu.Unlock()
	if !live {
		return
	}
	status, msg := ReplicationInSync, "Replication succeeded"
	dst := c.servers[ev.to]
	switch {
	case dst == nil:
		status, msg = ReplicationFailed, "Replication failed: Region "+ev.to+" is not one of this localsm cluster's Regions ("+strings.Join(c.regions, ", ")+")."
	case failing:
		status, msg = ReplicationFailed, "Replication failed: replication into "+ev.to+" is failing (Cluster.FailReplication)."
	default:
		dst.mu.Lock()
		cur := dst.lookup(ev.name)
		switch {
		case cur == nil || (cur.primaryRegion == "" && ev.force && !cur.isDeleted()):
			if cur != nil {
				if r := dst.running[cur.arn]; r != nil {
					r.cancel()
				}
			}
			rep := ev.snap.clone()
			rep.arn = dst.partialARN(ev.name) + ev.tail
			rep.primaryRegion, rep.replicas, rep.seq = ev.from, nil, ev.seq
			rep.kmsKeyID = kmsKey
			rep.created, rep.accessed = c.now(), time.Time{}
			dst.secrets[ev.name] = rep
		case cur.primaryRegion == ev.from && tailOf(cur) == ev.tail:
			if ev.seq > cur.seq {
				cur.copyFrom(ev.snap)
				cur.seq = ev.seq
			}
		default:
			// The StatusMessage the API reference gives as its example (ReplicationStatusType).
			status, msg = ReplicationFailed, "Secret with this name already exists in this region"
		}
		dst.mu.Unlock()
	}
	src.mu.Lock()
	if psec := src.lookup(ev.name); psec != nil && tailOf(psec) == ev.tail {
		if r := psec.replicaIn(ev.to); r != nil {
			r.status, r.message = status, msg
		}
	}
	src.mu.Unlock()
}

// applyRemove deletes the replica RemoveRegionsFromReplication dropped.
func (c *Cluster) applyRemove(ev *event) {
	dst := c.servers[ev.to]
	if dst == nil {
		return
	}
	dst.mu.Lock()
	defer dst.mu.Unlock()
	if cur := dst.lookup(ev.name); cur != nil && cur.primaryRegion == ev.from && tailOf(cur) == ev.tail {
		delete(dst.secrets, ev.name)
	}
}

// applyDetach drops a promoted replica's Region from its former primary.
func (c *Cluster) applyDetach(ev *event) {
	prim := c.servers[ev.to]
	if prim == nil {
		return
	}
	prim.mu.Lock()
	defer prim.mu.Unlock()
	if sec := prim.lookup(ev.name); sec != nil && tailOf(sec) == ev.tail {
		sec.replicas = slices.DeleteFunc(sec.replicas, func(r *replica) bool { return r.region == ev.from })
	}
}

// replica is one entry of a primary's ReplicationStatus.
type replica struct {
	region, kmsKeyID, status, message string
}

func (s *secret) replicaIn(region string) *replica {
	for _, r := range s.replicas {
		if r.region == region {
			return r
		}
	}
	return nil
}

// tailOf is the ARN's random suffix, "-" included.
func tailOf(sec *secret) string {
	i := strings.LastIndex(sec.arn, ":secret:"+sec.name)
	if i < 0 {
		return ""
	}
	return sec.arn[i+len(":secret:")+len(sec.name):]
}

// clone deep-copies what replication copies (and the bookkeeping the copy starts from).
func (s *secret) clone() *secret {
	out := *s
	out.copyFrom(s)
	return &out
}

// copyFrom takes over src's replicated state: versions and staging labels, tags, description,
// resource policy, rotation configuration and dates.
func (s *secret) copyFrom(src *secret) {
	old := s.versions
	s.versions = make(map[string]*version, len(src.versions))
	for id, v := range src.versions {
		cp := *v
		cp.stages = slices.Clone(v.stages)
		cp.bin = slices.Clone(v.bin)
		if v.str != nil {
			str := *v.str
			cp.str = &str
		}
		cp.accessed = time.Time{}
		if o := old[id]; o != nil && o != v {
			cp.accessed = o.accessed
		}
		s.versions[id] = &cp
	}
	s.order = slices.Clone(src.order)
	s.tags = slices.Clone(src.tags)
	s.description, s.policy = src.description, src.policy
	s.rotationConfigured, s.rotationEnabled, s.lambdaARN, s.rules = src.rotationConfigured, src.rotationEnabled, src.lambdaARN, src.rules
	s.lastRotated, s.nextRotation, s.changed = src.lastRotated, src.nextRotation, src.changed
}

// queueSync queues a copy of sec (a primary) to regions, due after the cluster's lag plus
// extra. It needs s.mu held.
func (s *Server) queueSync(sec *secret, regions []string, force bool, extra time.Duration) {
	if s.cluster == nil || len(regions) == 0 {
		return
	}
	snap := sec.clone()
	due := s.opts.Now().Add(s.cluster.lag + extra)
	evs := make([]*event, 0, len(regions))
	for _, r := range regions {
		evs = append(evs, &event{kind: evSync, due: due, from: s.opts.Region, to: r, name: sec.name, tail: tailOf(sec), snap: snap, force: force})
	}
	s.cluster.enqueue(evs...)
}

// replicateLocked queues a copy of sec to all its replicas, if it is a primary that has any.
// It needs s.mu held.
func (s *Server) replicateLocked(sec *secret) {
	if s.cluster == nil || sec == nil || sec.primaryRegion != "" || len(sec.replicas) == 0 {
		return
	}
	regions := make([]string, len(sec.replicas))
	for i, r := range sec.replicas {
		regions[i] = r.region
	}
	s.queueSync(sec, regions, false, 0)
}

// writeOps change a secret: refused on a replica, replicated from a primary.
var writeOps = map[string]bool{
	"PutSecretValue": true, "UpdateSecret": true, "UpdateSecretVersionStage": true, "RotateSecret": true,
	"CancelRotateSecret": true, "DeleteSecret": true, "RestoreSecret": true, "TagResource": true,
	"UntagResource": true, "PutResourcePolicy": true, "DeleteResourcePolicy": true,
	"ReplicateSecretToRegions": true, "RemoveRegionsFromReplication": true,
}

// targetOf reads the secret a request is about: SecretId, or Name for CreateSecret.
func targetOf(op string, body []byte) string {
	var in struct {
		SecretId *string
		Name     *string
	}
	if decode(body, &in) != nil {
		return ""
	}
	if op == "CreateSecret" {
		return deref(in.Name)
	}
	return deref(in.SecretId)
}

// refuseOnReplica answers what a write to a replica gets from Secrets Manager: an
// InvalidParameterException with this message (seen from real AWS, e.g. gruntwork-io/cloud-nuke
// issue 435, and copied by moto). It does not name the primary's Region; DescribeSecret's
// PrimaryRegion does.
func (s *Server) refuseOnReplica(op string, body []byte) *apiError {
	if s.cluster == nil || !writeOps[op] {
		return nil
	}
	id := targetOf(op, body)
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil || sec.primaryRegion == "" {
		return nil
	}
	return errParam("Operation not permitted on a replica secret. Call must be made in primary secret's region.")
}

// afterWrite queues replication of the secret a successful write touched.
func (s *Server) afterWrite(op string, body []byte) {
	if s.cluster == nil || (!writeOps[op] && op != "CreateSecret") {
		return
	}
	id := targetOf(op, body)
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == "ReplicateSecretToRegions" || op == "CreateSecret" {
		return // those handlers queue their own copies (with ForceOverwriteReplicaSecret)
	}
	s.replicateLocked(s.lookup(id))
}

// --- replication operations ---

// regionRE is the Region parameters' pattern in the API reference (ReplicaRegionType.Region,
// RemoveReplicaRegions).
var regionRE = regexp.MustCompile(`^([a-z]+-)+\d+$`)

type replicaRegionJSON struct {
	Region   *string
	KmsKeyId *string
}

type replStatusJSON struct {
	Region           string `json:"Region"`
	KmsKeyId         string `json:"KmsKeyId,omitempty"`
	Status           string `json:"Status,omitempty"`
	StatusMessage    string `json:"StatusMessage,omitempty"`
	LastAccessedDate *epoch `json:"LastAccessedDate,omitempty"`
}

func (s *Server) renderReplication(sec *secret) []replStatusJSON {
	if len(sec.replicas) == 0 {
		return nil
	}
	out := make([]replStatusJSON, len(sec.replicas))
	for i, r := range sec.replicas {
		out[i] = replStatusJSON{Region: r.region, KmsKeyId: r.kmsKeyID, Status: r.status, StatusMessage: r.message}
		if s.cluster != nil {
			out[i].LastAccessedDate = ts(s.cluster.accessedIn(r.region, sec.name, tailOf(sec)))
		}
	}
	return out
}

// noteAccess records that the replica of name (ARN suffix tail) in region was read on day, for
// the primary's ReplicationStatus LastAccessedDate ("The date that the secret was last accessed
// in the Region"). Cluster.mu is a leaf: the replica's Server holds its own mu here.
func (c *Cluster) noteAccess(region, name, tail string, day time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.accessed == nil {
		c.accessed = map[string]time.Time{}
	}
	c.accessed[region+"\x00"+name+tail] = day
}

// accessedIn is what noteAccess recorded, or the zero time (then the field is omitted, as AWS
// omits it for a replica never read).
func (c *Cluster) accessedIn(region, name, tail string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accessed[region+"\x00"+name+tail]
}

// checkReplicaRegions validates AddReplicaRegions against the primary's Region and itself.
func (s *Server) checkReplicaRegions(in []replicaRegionJSON, existing []*replica) ([]*replica, *apiError) {
	if len(in) == 0 {
		return nil, errParam("AddReplicaRegions must list at least one Region.")
	}
	var out []*replica
	for _, r := range in {
		if r.Region == nil || !regionRE.MatchString(*r.Region) || len(*r.Region) > 128 {
			return nil, errParam("Invalid replica region.")
		}
		if *r.Region == s.opts.Region {
			return nil, errParam("Invalid replica region.")
		}
		if slices.ContainsFunc(out, func(x *replica) bool { return x.region == *r.Region }) {
			return nil, errParam("Duplicate replica region %s.", *r.Region)
		}
		if slices.ContainsFunc(existing, func(x *replica) bool { return x.region == *r.Region }) {
			continue // already a replica Region: ReplicateSecretToRegions leaves it as it is
		}
		key := DefaultReplicaKMSKey
		if r.KmsKeyId != nil && *r.KmsKeyId != "" {
			key = *r.KmsKeyId
		}
		out = append(out, &replica{region: *r.Region, kmsKeyID: key, status: ReplicationInProgress})
	}
	return out, nil
}

type replicateIn struct {
	SecretId                    *string
	AddReplicaRegions           []replicaRegionJSON
	ForceOverwriteReplicaSecret *bool
}

type replicateOut struct {
	ARN               string           `json:"ARN"`
	ReplicationStatus []replStatusJSON `json:"ReplicationStatus"`
}

func (s *Server) replicateSecretToRegions(_ context.Context, body []byte) (any, *apiError) {
	var in replicateIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	if s.cluster == nil {
		return nil, errRequest("localsm does not replicate secrets to other Regions (use a Cluster).")
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
	add, e := s.checkReplicaRegions(in.AddReplicaRegions, sec.replicas)
	if e != nil {
		return nil, e
	}
	sec.replicas = append(sec.replicas, add...)
	regions := make([]string, len(add))
	for i, r := range add {
		regions[i] = r.region
	}
	s.queueSync(sec, regions, in.ForceOverwriteReplicaSecret != nil && *in.ForceOverwriteReplicaSecret, 0)
	return replicateOut{ARN: sec.arn, ReplicationStatus: s.renderReplication(sec)}, nil
}

type removeRegionsIn struct {
	SecretId             *string
	RemoveReplicaRegions []string
}

func (s *Server) removeRegionsFromReplication(_ context.Context, body []byte) (any, *apiError) {
	var in removeRegionsIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	if len(in.RemoveReplicaRegions) == 0 {
		return nil, errParam("RemoveReplicaRegions must list at least one Region.")
	}
	for _, r := range in.RemoveReplicaRegions {
		if !regionRE.MatchString(r) {
			return nil, errParam("Invalid replica region.")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	if sec == nil {
		return nil, errNotFound()
	}
	var evs []*event
	now := s.opts.Now()
	sec.replicas = slices.DeleteFunc(sec.replicas, func(r *replica) bool {
		if !slices.Contains(in.RemoveReplicaRegions, r.region) {
			return false
		}
		evs = append(evs, &event{kind: evRemove, due: now, from: s.opts.Region, to: r.region, name: sec.name, tail: tailOf(sec)})
		return true
	})
	if s.cluster != nil {
		s.cluster.enqueue(evs...)
	}
	return replicateOut{ARN: sec.arn, ReplicationStatus: s.renderReplication(sec)}, nil
}

func (s *Server) stopReplicationToReplica(_ context.Context, body []byte) (any, *apiError) {
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
	if sec.primaryRegion == "" {
		return nil, errRequest("The secret %s is not a replica: StopReplicationToReplica must be called in a replica's Region.", sec.name)
	}
	prim := sec.primaryRegion
	sec.primaryRegion, sec.changed = "", s.opts.Now()
	if s.cluster != nil {
		s.cluster.enqueue(&event{kind: evDetach, due: s.opts.Now(), from: s.opts.Region, to: prim, name: sec.name, tail: tailOf(sec)})
	}
	return struct {
		ARN string `json:"ARN"`
	}{sec.arn}, nil
}
