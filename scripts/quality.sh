#!/usr/bin/env bash
# Quality benchmark on the bundled heart sites: the federated model (a real
# federation on 127.0.0.1 over mutual TLS) against the same model fitted on
# all sites' rows pooled in one process. Runs the demo task (federated
# Newton) and the same task with FedAvg, then a linear task (closed form).
# Extra arguments replace the defaults: --task FILE --site NAME=CSV ...
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --workspace --quiet
run() { cargo run --release --locked --quiet --example quality -- "$@"; }
if [ "$#" -gt 0 ]; then
  run "$@"
  exit
fi
sites=()
for site in cleveland hungarian switzerland va; do sites+=(--site "$site=data/heart/$site.csv"); done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run --task examples/heart/task.toml "${sites[@]}"
sed 's/^algorithm = "auto"/algorithm = "fedavg"/' examples/heart/task.toml > "$work/fedavg.toml"
run --task "$work/fedavg.toml" "${sites[@]}"
run --task examples/heart/linear.toml "${sites[@]}"
