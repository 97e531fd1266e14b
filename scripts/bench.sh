#!/usr/bin/env bash
# Measures medfed against its performance targets and prints one table:
# round latency (3 and 10 nodes, exchange log synced per entry and flushed at
# the end), launch to first round, peak RSS, the local compute kernels against
# a streaming-read baseline, vault load, FedAvg aggregation, scale (nodes
# and features), and secure aggregation against clear updates at 4, 20 and
# 100 nodes with one run losing a member. Builds the release binaries first;
# extra arguments go to medfed-bench (e.g. --quick for a smoke run, --only
# latency, --only secagg).
# The federations' files land in ./bench-run (or $MEDFED_BENCH_DIR): a real
# disk is needed for the fsync figures, so not a tmpfs. Each job clears its own
# n<nodes>-d<features> folder there before it is prepared.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p medfed-coordinator -p medfed-node -p medfed-certs -p medfed-audit \
  -p medfed-bench
bin="${CARGO_TARGET_DIR:-target}/release"
work=${MEDFED_BENCH_DIR:-bench-run}
mkdir -p "$work"
"$bin/medfed-bench" --bin-dir "$bin" --work-dir "$work" "$@"
