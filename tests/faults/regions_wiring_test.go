package faults

import "github.com/ptc-credentials/ptc-credentials/internal/provision"

// regionsWired reports whether the provisioner can be given the clients of other Regions
// (provision.Provisioner's Region, SMFor, ECRFor and AllowedReplicaRegions, issue 16). Until it
// can, the multi-Region scenarios skip and say so.
const regionsWired = false

// wireRegions gives the provisioner of one invocation every Region's clients, each through
// the injector (so a call in a replica Region is counted and faulted like any other).
func wireRegions(_ *provision.Provisioner, _ *provEnv) {}
