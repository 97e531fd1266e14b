#!/usr/bin/env bash
# A complete federation of the four UCI heart-disease hospitals on this machine:
# provision certificates, import each site's CSV into its own encrypted vault,
# start one coordinator and four nodes on 127.0.0.1 over mutual TLS, train,
# and print the comparison table. Everything lands in ./demo-run (or $MEDFED_DEMO_DIR).
# With MEDFED_DEMO_MEASURE=1, every process runs under `/usr/bin/time -v` and its
# resource report (peak RSS, CPU time) lands in demo-run/measure/<process>.txt.
# MEDFED_DEMO_AUDIT_SYNC_EVERY=N makes the coordinator flush its exchange log every N
# entries instead of after each one (to measure what the per-entry fsync costs).
# Each hospital's node runs from a node file, demo-run/<site>/node.toml (every key is
# explained in examples/heart/node.toml), checked with `node config check` first.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p medfed-coordinator -p medfed-node -p medfed-certs -p medfed-audit
bin=${CARGO_TARGET_DIR:-target}/release
work=${MEDFED_DEMO_DIR:-demo-run}
sites=(cleveland hungarian switzerland va)

rm -rf "$work"
mkdir -p "$work/run"
# `measured NAME CMD...` runs CMD in place of the background subshell it is
# started in (so $! is CMD itself), under /usr/bin/time when measuring.
if [ "${MEDFED_DEMO_MEASURE:-0}" = 1 ]; then
  mkdir -p "$work/measure"
  measured() { local name=$1; shift; exec /usr/bin/time -v -o "$work/measure/$name.txt" "$@"; }
else
  measured() { shift; exec "$@"; }
fi
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== provisioning: consortium CA, coordinator certificate, one key + CSR + certificate per hospital"
members=()
for site in "${sites[@]}"; do members+=(--member "$site"); done
"$bin/medfed-certs" demo --out "$work/pki" "${members[@]}" --san 127.0.0.1 --san localhost

echo "== each hospital imports its records into an encrypted vault"
for site in "${sites[@]}"; do
  "$bin/node" import --csv "data/heart/$site.csv" --vault "$work/$site/$site.vault" \
    --vault-key-file "$work/$site/vault.key" --create-key --target target
done

echo "== audit keys: one for the consortium's auditor, one for each hospital's privacy officer"
"$bin/medfed-audit" keygen --audit-key-file "$work/run/audit.key"
for site in "${sites[@]}"; do
  "$bin/medfed-audit" keygen --audit-key-file "$work/$site/audit.key"
done

echo "== the operator checks the task file"
"$bin/coordinator" config check examples/heart/task.toml

echo "== the coordinator starts; the hospitals connect out to it"
pki="$work/pki"
measured coordinator "$bin/coordinator" run --task examples/heart/task.toml --listen 127.0.0.1:0 \
  --ca "$pki/coordinator/ca.pem" --cert "$pki/coordinator/coordinator.pem" \
  --key "$pki/coordinator/coordinator.key" --out "$work/run" \
  --signing-key "$pki/coordinator/coordinator.sign.key" --audit-key-file "$work/run/audit.key" \
  ${MEDFED_DEMO_AUDIT_SYNC_EVERY:+--audit-sync-every "$MEDFED_DEMO_AUDIT_SYNC_EVERY"} \
  --ready-file "$work/run/ready.json" 2> "$work/run/coordinator.log" &
coordinator=$!
pids+=("$coordinator")
for _ in $(seq 1 300); do
  [ -s "$work/run/ready.json" ] && break
  kill -0 "$coordinator" 2>/dev/null || { cat "$work/run/coordinator.log"; exit 1; }
  sleep 0.1
done
address=$(sed -n 's/.*"address": *"\([^"]*\)".*/\1/p' "$work/run/ready.json")

# Each hospital's node file; its relative paths are relative to the file's folder. Each pins
# the coordinator's certificate and the members it agreed to federate with.
coordinator_sha256=$("$bin/medfed-certs" fingerprint --cert "$pki/coordinator/coordinator.pem")
for site in "${sites[@]}"; do
  cat > "$work/$site/node.toml" <<EOF
# $site's node file, written by scripts/demo.sh (every key: examples/heart/node.toml).
[coordinator]
address = "https://$address"
server_name = "localhost"
task_id = "heart-disease-demo"
connect_timeout_seconds = 60

[vault]
path = "$site.vault"
key_file = "vault.key"

[tls]
ca = "../pki/$site/ca.pem"
cert = "../pki/$site/$site.pem"
key = "../pki/$site/$site.key"
signing_key = "../pki/$site/$site.sign.key"

[audit]
log = "exchange.log"
key_file = "audit.key"

[policy]
coordinator = "$coordinator_sha256"
members = [$(printf '"%s", ' "${sites[@]}" | sed 's/, $//')]
require_pinning = true
EOF
  "$bin/node" config check "$work/$site/node.toml" > "$work/$site/config-check.txt" \
    || { cat "$work/$site/config-check.txt"; exit 3; }
  tail -n 1 "$work/$site/config-check.txt"
done
for site in "${sites[@]}"; do
  measured "node-$site" "$bin/node" run --config "$work/$site/node.toml" \
    > "$work/$site/node.log" 2>&1 &
  pids+=("$!")
done

status=0
wait "$coordinator" || status=$?
for pid in "${pids[@]:1}"; do wait "$pid" || status=$?; done
trap - EXIT
if [ "$status" -ne 0 ]; then
  echo "demo failed; logs are in $work/run/coordinator.log and $work/<site>/node.log" >&2
  exit "$status"
fi
echo
if [ "${MEDFED_DEMO_MEASURE:-0}" = 1 ]; then
  echo "peak resident memory (from /usr/bin/time -v):"
  for report in "$work"/measure/*.txt; do
    kib=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$report")
    awk -v name="$(basename "$report" .txt)" -v kib="$kib" 'BEGIN { printf "  %-22s %6.1f MiB\n", name, kib / 1024 }'
  done
fi
echo "== the auditor checks the exchange logs"
"$bin/medfed-audit" verify "$work/run/exchange.log" --audit-key-file "$work/run/audit.key"
for site in "${sites[@]}"; do
  "$bin/medfed-audit" verify "$work/$site/exchange.log" --audit-key-file "$work/$site/audit.key"
  "$bin/medfed-audit" cross-check --node "$work/$site/exchange.log" --coordinator "$work/run/exchange.log" \
    | tail -n 1
done
echo
echo "What each hospital sent is listed in $work/<site>/node.log and, signed, in $work/<site>/exchange.log;"
echo "the model is $work/run/model.json."
