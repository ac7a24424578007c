// Package faults is a fault-injection matrix over every external HTTP call the rotator and the
// provisioner make: Secrets Manager (localsm for the fault cases; moto_server for each
// scenario's fault-free run and a sample of cases — see smServer), ECR (the ecrptc emulator)
// and each upstream's token API and registry login (the emulators under internal/testkit).
//
// One counting http.RoundTripper sits under every client of a scenario. A fault-free dry run
// learns the N calls the scenario makes; then, for every call k = 1..N and every fault kind
// (an error answer in the API's own format, a 5xx, a connection reset, a hang until the
// deadline, and the process dying right after the call succeeded), the scenario runs again with
// that one fault, is retried the way Secrets Manager or CloudFormation would retry it, and the
// invariants in docs/reliability.md are checked after the fault, after the retry and at the end.
//
// The custom resource runs in three Regions (a localsm.Cluster and one ECR emulator per Region,
// routed by the SigV4 Region); a call outside the home Region is named <op>@<region>, and the
// multi-Region scenarios (*-regions) check every Region's replica and rule.
//
// Everything lives in the _test.go files; this file only names the package.
// PTC_WRITE_MATRIX=<path> makes the test write the matrix as a markdown table.
package faults
