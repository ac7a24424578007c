package rotation

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
)

// reportReplication emits ReplicationFailed for each replica Region of the secret, from the
// ReplicationStatus of the DescribeSecret every step already makes: the replicas are where ECR
// reads the credential in those Regions, and a replica that stopped receiving versions keeps
// serving a token this rotator is about to revoke. It costs no call. A Failed replica is also
// logged, with the service's status message (it names a cause such as a name clash, never a
// value). Rotation itself goes on: the primary is what it rotates, and ptc status and ptc
// doctor show the replica.
func (r *Rotator) reportReplication(st *stepState, out *secretsmanager.DescribeSecretOutput) {
	for _, rs := range out.ReplicationStatus {
		region := aws.ToString(rs.Region)
		if region == "" {
			continue
		}
		failed := 0.0
		props := map[string]any{"secret": st.name, "replica_status": string(rs.Status)}
		if rs.Status == smtypes.StatusTypeFailed {
			failed = 1
			msg := kit.Truncate(aws.ToString(rs.StatusMessage), 300)
			props["status_message"] = msg
			st.log.Warn("replication of the secret to a replica Region failed: ECR there keeps reading the replica's last value", "replica_region", region, "status_message", msg)
		}
		r.Metrics.EmitReplica(metrics.ReplicationFailed, failed, metrics.Count, st.upstream, region, props)
	}
}
