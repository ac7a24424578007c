package testenv

import (
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
)

// SecretsManagerServer is a running Secrets Manager that tests reach over HTTP with the real
// SDK client: moto_server (*Moto) or localsm (*LocalSM). Harnesses take this rather than *Moto
// so that the bulk of a suite can run against localsm — whose conformance test against moto
// (internal/testkit/localsm/conformance_test.go) covers every call the product makes — and keep
// moto for the runs that anchor it to an independent implementation.
type SecretsManagerServer interface {
	// SecretsManager returns a real SDK client pointed at the server.
	SecretsManager() *secretsmanager.Client
	// URL is the endpoint every client must use (for moto: the one-request gate).
	URL() string
}

// URL implements SecretsManagerServer: the gate's endpoint, never moto's own address.
func (m *Moto) URL() string { return m.Endpoint }

// LocalSM is a localsm served over loopback HTTP the way tests drive rotations against moto:
// RotateSecret stages the pending version (a copy of AWSCURRENT for RotateImmediately=false)
// and then fails to invoke the rotation function, because the test itself invokes the steps as
// Secrets Manager would (BeginRotation, RotatingSecretsManager). So the state a test sees after
// BeginRotation is the one it sees with moto. It is synchronous, so that nothing runs after
// RotateSecret has answered.
type LocalSM struct {
	// Endpoint is the server's http://127.0.0.1:<port>.
	Endpoint string
	// Server is the emulator itself, for tests that inspect it (Calls, Rotations).
	Server *localsm.Server

	srv  *httptest.Server
	once sync.Once
}

// StartLocalSM starts a LocalSM in the default account and Region (the same as moto's).
func StartLocalSM() *LocalSM {
	s := localsm.New(localsm.Options{AccountID: AccountID, Region: Region, Synchronous: true})
	hs := httptest.NewServer(s)
	return &LocalSM{Endpoint: hs.URL, Server: s, srv: hs}
}

// StartLocalSMT starts a LocalSM for one test and stops it when the test ends.
func StartLocalSMT(t testing.TB) *LocalSM {
	t.Helper()
	l := StartLocalSM()
	t.Cleanup(l.Stop)
	return l
}

// URL implements SecretsManagerServer.
func (l *LocalSM) URL() string { return l.Endpoint }

// SecretsManager implements SecretsManagerServer: a real SDK client pointed at the server.
func (l *LocalSM) SecretsManager() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(AWSConfig(), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(l.Endpoint) })
}

// Stop closes the server.
func (l *LocalSM) Stop() { l.once.Do(l.srv.Close) }

// LocalSMCluster is a multi-Region localsm (localsm.Cluster) served on one loopback endpoint:
// SDK clients differ only by the Region they sign for, and the cluster routes by it.
type LocalSMCluster struct {
	// Cluster is the emulator, for tests that inspect a Region (Region(r).Calls()) or break
	// replication (FailReplication).
	Cluster *localsm.Cluster

	srv *httptest.Server
}

// StartLocalSMCluster starts a localsm.Cluster for one test and stops it when the test ends.
// The account defaults to AccountID and the Regions to just Region. Unlike StartLocalSM it
// keeps o.Options as given (Synchronous included).
func StartLocalSMCluster(t testing.TB, o localsm.ClusterOptions) *LocalSMCluster {
	t.Helper()
	if o.Options.AccountID == "" {
		o.Options.AccountID = AccountID
	}
	if len(o.Regions) == 0 {
		o.Regions = []string{Region}
	}
	c := localsm.NewCluster(o)
	hs := httptest.NewServer(c)
	t.Cleanup(hs.Close)
	return &LocalSMCluster{Cluster: c, srv: hs}
}

// URL is the one endpoint every Region is served on.
func (l *LocalSMCluster) URL() string { return l.srv.URL }

// SecretsManagerIn returns a real SDK client for region, pointed at the cluster.
func (l *LocalSMCluster) SecretsManagerIn(region string) *secretsmanager.Client {
	cfg := AWSConfig()
	cfg.Region = region
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(l.srv.URL) })
}

// SecretsManager implements SecretsManagerServer: a client of the home Region (the first).
func (l *LocalSMCluster) SecretsManager() *secretsmanager.Client {
	return l.SecretsManagerIn(l.Cluster.Regions()[0])
}
