#!/usr/bin/env bash
# Instruction counts of the Tandem server under callgrind, for a tandem-bench
# workload. Wall-clock CPU on this shared VM spreads ±10-15 % between runs;
# callgrind's counts do not move for the same binary and workload, so they
# measure changes smaller than that spread (kernel time is not counted: check
# those changes with tandem-bench too).
#
# Usage:  bench/callgrind.sh [tandem-bench options]
#         (default workload: 200 creates, 200 lookups, 100 group PATCHes and
#         200 logins per phase, concurrency 1, no 100k-user phase)
# Env:    TANDEM_BIN=target/release/tandem  BENCH_BIN=target/release/tandem-bench
#         OUT=bench/out/callgrind-<stamp>   TOP=40 (functions printed)
# Output: $OUT/callgrind.out (open with callgrind_annotate), $OUT/bench.log,
#         and the top inclusive functions on stdout. The server's start-up
#         (aws-lc seeding its DRBG: ~420 M instructions) is in the total;
#         compare handlers, not totals, across builds with other start-ups.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
TANDEM_BIN=$(readlink -f "${TANDEM_BIN:-target/release/tandem}")
BENCH_BIN=${BENCH_BIN:-target/release/tandem-bench}
[[ -x "$TANDEM_BIN" && -x "$BENCH_BIN" ]] || {
  echo "build first: cargo build --release -p tandem -p tandem-bench" >&2
  exit 1
}
OUT=${OUT:-bench/out/callgrind-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(readlink -f "$OUT")
TOP=${TOP:-40}

# tandem-bench starts the binary it is given; this one runs `serve` under
# callgrind and every other command (migrate, integration-key) as it is.
WRAPPER=$OUT/tandem-under-callgrind
cat >"$WRAPPER" <<EOF
#!/usr/bin/env bash
if [[ "\${1:-}" == serve ]]; then
  exec valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "$TANDEM_BIN" "\$@"
fi
exec "$TANDEM_BIN" "\$@"
EOF
chmod +x "$WRAPPER"

if [[ $# -eq 0 ]]; then
  set -- --scim-users 200 --scim-gets 200 --lookup-users 0 --group-patches 100 --logins 200 --concurrency 1
fi
echo "== tandem-bench $* (server under callgrind: ~50x slower, so throughput and latency mean nothing here)"
"$BENCH_BIN" --tandem-bin "$WRAPPER" --phase-timeout-secs 600 "$@" >"$OUT/bench.log" 2>&1 || {
  tail -20 "$OUT/bench.log" >&2
  exit 1
}
grep -E '^\s+[a-z_0-9]+ +[0-9]+/[0-9]+ ok' "$OUT/bench.log" | sed 's/, Tandem CPU.*//' || true
echo
echo "== $OUT/callgrind.out"
callgrind_annotate "$OUT/callgrind.out" | grep 'PROGRAM TOTALS'
echo
echo "== Tandem's own functions, by inclusive instructions (top $TOP)"
callgrind_annotate --inclusive=yes --threshold=100 "$OUT/callgrind.out" | grep -E '\?\?\?:<?tandem_(web|store|oidc|scim|core)::' |
  head -n "$TOP" | sed 's/ \[[^]]*\]$//' | cut -c1-180
echo
echo "== every function, by its own instructions (top $TOP)"
callgrind_annotate --threshold=100 "$OUT/callgrind.out" | sed -n '/^-* *$/,$p' | grep -E '^ *[0-9,]+ \(' |
  head -n "$TOP" | sed 's/ \[[^]]*\]$//' | cut -c1-180
