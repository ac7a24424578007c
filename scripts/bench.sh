#!/usr/bin/env bash
# bench.sh — every figure of BENCHMARKS.md, in one run (`make bench`). Nothing here passes or
# fails on a number: each step prints what it measured, and the summaries land in $OUT.
#
# Needs moto_server on PATH (the benchmarks start it). Takes about 5 minutes on 2 cores.
# Environment: OUT (default dist/bench), GO (default go), COUNT (runs per benchmark, default 5).
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=${OUT:-dist/bench}
COUNT=${COUNT:-5}
mkdir -p "$OUT"
export CGO_ENABLED=0
# The benchmarks build and run host binaries; a GOOS/GOARCH meant for `make build` must not leak in.
unset GOOS GOARCH

# Timings are only as quiet as the machine: record its load with every step.
step() {
  printf '\n==> %s\n' "$*" >&2
  printf '%s  load %s  %s\n' "$(date -u +%H:%M:%S)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$*" >> "$OUT/env.txt"
}
{
  echo "# $(date -u +%FT%TZ) $($GO version) on $(nproc) CPUs ($(uname -m)); moto $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?')"
} > "$OUT/env.txt"

step "1/6 bootstrap sizes and what each module contributes -> $OUT/binsize.md"
$GO run ./tools/binsize | tee "$OUT/binsize.md"

step "2/6 rotation and custom-resource benchmarks (count $COUNT) -> $OUT/benchmarks.md"
{
  $GO test -run '^$' -bench 'Rotation/sm=moto' -benchtime 20x -count "$COUNT" -benchmem ./tests/bench/
  $GO test -run '^$' -bench 'Rotation/sm=local' -benchtime 200x -count "$COUNT" -benchmem ./tests/bench/
  $GO test -run '^$' -bench 'Provision' -benchtime 20x -count 3 -benchmem ./tests/bench/
  $GO test -run '^$' -bench 'MotoCall' -benchtime 200x -count 3 ./tests/bench/
} 2>&1 | tee "$OUT/benchmarks.txt" | $GO run ./tools/benchsum > "$OUT/benchmarks.md"
cat "$OUT/benchmarks.md"

step "3/6 cold start, and peak RSS of the real rotator during full rotations -> $OUT/lambda.md"
$GO run ./tools/lambdarun -runs 30 -rotations 10 -warm-rotations 30 | tee "$OUT/lambda.md"

step "4/6 cold start under aws-lambda-rie (tests/e2e) -> $OUT/e2e-coldstart.txt"
if grep -qs 'func BenchmarkColdStart' tests/e2e/*_test.go; then
  if [ -x bin/aws-lambda-rie ]; then export PTC_RIE_BIN="$PWD/bin/aws-lambda-rie"; fi
  $GO test -run '^$' -bench ColdStart -benchtime 20x ./tests/e2e/ 2>&1 | tee "$OUT/e2e-coldstart.txt"
else
  echo "tests/e2e has no BenchmarkColdStart: skipped" | tee "$OUT/e2e-coldstart.txt"
fi

step "5/6 scale simulation: 1000 secrets, 50 workers, 100 req/s per registry -> $OUT/scale.md"
$GO run ./tools/scale -secrets 1000 -workers 50 -rate 100 | tee "$OUT/scale.md"

step "6/6 done: summaries in $OUT (machine load per step in $OUT/env.txt)"
ls -l "$OUT" >&2
