// Package e2e runs the real bootstrap binaries of functions/rotator and functions/provisioner
// under the AWS Lambda Runtime Interface Emulator (aws-lambda-rie, pinned in tools.mod) against
// moto_server and the project's own ECR and Docker Hub emulators. Everything it checks goes
// through the same process boundary, environment variables and HTTP invoke path Lambda uses.
//
// The package holds tests and benchmarks only. TestMain builds aws-lambda-rie and both bootstraps
// for the host (or takes prebuilt ones from PTC_RIE_BIN and PTC_BOOTSTRAP_DIR) and starts
// moto_server; `make e2e` runs it, and so does a plain `go test ./...`.
package e2e
