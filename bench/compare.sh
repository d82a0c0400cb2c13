#!/usr/bin/env bash
# Tandem next to the Jackson peer on this machine, in one command: builds
# Tandem and tandem-bench (release), then per engine (SQLite, then
# PostgreSQL) runs the peer kit and tandem-bench with the same knobs, one
# after the other, and prints the combined table (ratios peer ÷ Tandem).
#
# Usage:  bench/compare.sh
# Knobs (env): SCIM_USERS=5000 SCIM_GETS=2000 LOGINS=500 PHASE_TIMEOUT_S=300
#              LOOKUP_USERS=100000 GROUP_PATCHES=2000 (Tandem-only phases)
#              ENGINES="sqlite postgres"  CARGO_JOBS=1  CARGO_TARGET_DIR=target
#              PEER_KIT=../shared/peers/jackson (relative to the repo root)
#              TANDEM_PG=postgres://postgres@127.0.0.1:5432 (trust auth; a fresh
#              database is created there and dropped afterwards)
# Output: bench/out/<stamp>/ (logs, tandem-<engine>.json, compare.txt); the peer
# kit keeps what it writes in its own folder (run/results-<engine>-tandem-cmp-<stamp>.json).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
ROOT=$PWD

PEER_KIT=${PEER_KIT:-../shared/peers/jackson}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CARGO_JOBS=${CARGO_JOBS:-1}
SCIM_USERS=${SCIM_USERS:-5000}
SCIM_GETS=${SCIM_GETS:-2000}
LOGINS=${LOGINS:-500}
CONC=8
PHASE_TIMEOUT_S=${PHASE_TIMEOUT_S:-300}
LOOKUP_USERS=${LOOKUP_USERS:-100000}
GROUP_PATCHES=${GROUP_PATCHES:-2000}
ENGINES=${ENGINES:-"sqlite postgres"}
TANDEM_PG=${TANDEM_PG:-postgres://postgres@127.0.0.1:5432}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/out/$STAMP
TAG=-tandem-cmp-$STAMP

[[ -x "$PEER_KIT/run-peer.sh" ]] || { echo "no peer kit at $PEER_KIT (set PEER_KIT)" >&2; exit 1; }
PEER_KIT=$(readlink -f "$PEER_KIT")
mkdir -p "$OUT"

PG_DB=""
drop_db() {
  if [[ -n "$PG_DB" ]]; then
    psql "$TANDEM_PG/postgres" -q -c "DROP DATABASE IF EXISTS $PG_DB" || echo "could not drop database $PG_DB" >&2
    PG_DB=""
  fi
}
trap drop_db EXIT

echo "== building Tandem and tandem-bench (release, target $CARGO_TARGET_DIR)"
cargo build --release -j "$CARGO_JOBS" -p tandem -p tandem-bench
BENCH=$CARGO_TARGET_DIR/release/tandem-bench
TANDEM=$CARGO_TARGET_DIR/release/tandem

PAIRS=()
for ENGINE in $ENGINES; do
  echo
  echo "================ peer (Jackson) on $ENGINE"
  ENGINES=$ENGINE SCIM_USERS=$SCIM_USERS SCIM_GETS=$SCIM_GETS LOGINS=$LOGINS CONC=$CONC \
    PHASE_TIMEOUT_S=$PHASE_TIMEOUT_S RESULTS_TAG=$TAG "$PEER_KIT/run-peer.sh" 2>&1 | tee "$OUT/peer-$ENGINE.log" ||
    echo "peer run on $ENGINE failed" >&2

  echo
  echo "================ Tandem on $ENGINE"
  DB_ARGS=()
  case "$ENGINE" in
    sqlite) ;;
    postgres)
      PG_DB=tandem_bench_${STAMP//-/_}
      psql "$TANDEM_PG/postgres" -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE $PG_DB"
      DB_ARGS=(--database-url "$TANDEM_PG/$PG_DB") ;;
    *) echo "unknown engine $ENGINE" >&2; exit 1 ;;
  esac
  "$BENCH" --tandem-bin "$TANDEM" "${DB_ARGS[@]}" --label "$ENGINE" \
    --scim-users "$SCIM_USERS" --scim-gets "$SCIM_GETS" --logins "$LOGINS" --concurrency "$CONC" \
    --lookup-users "$LOOKUP_USERS" --group-patches "$GROUP_PATCHES" --phase-timeout-secs "$PHASE_TIMEOUT_S" \
    --json "$OUT/tandem-$ENGINE.json" 2>&1 | tee "$OUT/tandem-$ENGINE.log" ||
    echo "tandem-bench on $ENGINE reported failures" >&2
  drop_db

  PEER_JSON=$PEER_KIT/run/results-$ENGINE$TAG.json
  if [[ -f "$PEER_JSON" && -f "$OUT/tandem-$ENGINE.json" ]]; then
    PAIRS+=("$PEER_JSON" "$OUT/tandem-$ENGINE.json")
  else
    echo "no results to compare for $ENGINE (peer: $PEER_JSON, tandem: $OUT/tandem-$ENGINE.json)" >&2
  fi
done

echo
echo "================ peer ÷ Tandem ($(nproc) CPUs; SCIM_USERS=$SCIM_USERS SCIM_GETS=$SCIM_GETS LOGINS=$LOGINS CONC=$CONC)"
if [[ ${#PAIRS[@]} -gt 0 ]]; then
  "$BENCH" compare "${PAIRS[@]}" | tee "$OUT/compare.txt"
fi
echo "results in $OUT"
