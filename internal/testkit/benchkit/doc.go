// Package benchkit measures what the budgets of docs/design.md §9 promise: a full four-step
// rotation per registry against the local emulators, with Secrets Manager played by
// moto_server or by localsm (a Go implementation, conformance-tested against moto) so the
// rotator's own cost shows apart from moto's; the calls each
// rotation makes to Secrets Manager and to the upstream; Create and Delete of the custom
// resource; and, under cmd/, binary sizes, cold start and peak RSS of the real bootstrap
// binaries, and a 1,000-secret scale simulation under rate limits and transient failures.
//
// Nothing here asserts a time: the benchmarks and programs print numbers, and BENCHMARKS.md
// records them with the command that produced each. `make bench` runs it all
// (scripts/bench.sh); `make test` runs only the package's quick self-checks.
//
// The package is imported by nothing in the product; it holds test-only helpers.
package benchkit
