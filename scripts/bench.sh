#!/usr/bin/env bash
# Runs every bench/*.bench.ts (each races our code against a baseline or the physical
# limit in the same run and prints a markdown section with the ratio) and writes the
# sections to docs/benchmarks.md. One script: SUBMETER_BENCH=bench/x.bench.ts scripts/bench.sh
# The scale soak (bench/scale.bench.ts) runs N = 10,000 and 100,000 meters for 90 s each by
# default (about 6 minutes with the settlement site); SCALE_N and SCALE_SECONDS change it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks.md
tmp=$(mktemp)
{
  echo "# Benchmarks"
  echo
  echo "Measured by \`make bench\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(node --version), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')."
  echo "Each figure is a ratio measured in one run against a baseline or a physical limit; absolute numbers move with the machine."
  echo
} >"$tmp"
for f in ${SUBMETER_BENCH:-bench/*.bench.ts}; do
  echo "[bench] $f" >&2
  if ! npx tsx "$f" >>"$tmp"; then echo "[bench] $f failed" >&2; echo -e "\n_$f failed in this run._\n" >>"$tmp"; fi
  echo >>"$tmp"
done
mv "$tmp" "$out"
echo "[bench] wrote $out" >&2
