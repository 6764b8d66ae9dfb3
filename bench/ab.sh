#!/usr/bin/env bash
# A/B comparison of two commits with `bench`, in one script: builds the bench
# binary at each commit (one shared target dir, so dependencies build once),
# then runs them alternately, ROUNDS times each, on the same machine, and prints
# sequential incr p50 and 64-caller incr throughput per run, their medians and
# the new/old ratio.
#
# Usage: bench/ab.sh OLD_COMMIT [NEW_COMMIT] [ROUNDS]   (defaults: HEAD, 5)
# Extra bench flags: AB_FLAGS="--ops 20000 --seconds 2 --trials 3"
# AB_CLIENTS=64 adds the separate-clients row (64 connections, one caller each,
# the default client) and Redis's with a connection per caller, and their ratio.
set -euo pipefail
old=${1:?usage: bench/ab.sh OLD_COMMIT [NEW_COMMIT] [ROUNDS]}
new=${2:-HEAD}
rounds=${3:-5}
flags=${AB_FLAGS:---ops 20000 --seconds 2 --trials 3}
clients=${AB_CLIENTS:-}
if [ -n "$clients" ]; then flags="$flags --clients $clients"; fi
top=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
target="$top/target/ab"
cleanup() {
  for side in old new; do
    git -C "$top" worktree remove --force "$work/$side" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

for side in old new; do
  commit=$([ "$side" = old ] && echo "$old" || echo "$new")
  git -C "$top" worktree add --detach -q "$work/$side" "$commit"
  echo "building bench at $side = $(git -C "$top" rev-parse --short "$commit") ..." >&2
  (cd "$work/$side" && CARGO_TARGET_DIR="$target" cargo build --release -q -p crucial-bench --bin bench)
  cp "$target/release/bench" "$work/bench-$side"
done

# The first crucial number of a table row whose first cell is $1, after the
# heading that contains $2.
pick() {
  awk -v row="$1" -v heading="$2" -F'|' '
    index($0, heading) { inside = 1 }
    { cell = $2; gsub(/^ +| +$/, "", cell) }
    inside && cell == row { gsub(/ /, "", $3); print $3; exit }'
}

# The ratio cell (crucial default / redis) of the separate-clients row.
pick_ratio() {
  awk -v row="$1" -F'|' '
    index($0, "Separate clients") { inside = 1 }
    { cell = $2; gsub(/^ +| +$/, "", cell) }
    inside && cell == row { gsub(/ /, "", $7); print $7; exit }'
}

echo "| round | side | incr p50 (us) | incr 64 callers (ops/s) | $clients separate clients (ops/s) | vs redis |"
echo "|---|---|---|---|---|---|"
declare -a p50_old p50_new tput_old tput_new sep_old sep_new
for round in $(seq 1 "$rounds"); do
  for side in old new; do
    out=$("$work/bench-$side" $flags)
    p50=$(echo "$out" | pick "incr (fetch_add / INCR)" "Sequential latency")
    tput=$(echo "$out" | pick "incr" "Throughput, 64 concurrent callers")
    sep=-; vs=-
    if [ -n "$clients" ]; then
      sep=$(echo "$out" | pick "$clients" "Separate clients")
      vs=$(echo "$out" | pick_ratio "$clients")
    fi
    echo "| $round | $side | $p50 | $tput | $sep | $vs |"
    if [ "$side" = old ]; then p50_old+=("$p50"); tput_old+=("$tput"); sep_old+=("$sep"); else p50_new+=("$p50"); tput_new+=("$tput"); sep_new+=("$sep"); fi
  done
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
mp_old=$(median "${p50_old[@]}"); mp_new=$(median "${p50_new[@]}")
mt_old=$(median "${tput_old[@]}"); mt_new=$(median "${tput_new[@]}")
echo
echo "| metric | old median (range) | new median (range) | new/old |"
echo "|---|---|---|---|"
echo "| incr p50 (us) | $mp_old ($(spread "${p50_old[@]}")) | $mp_new ($(spread "${p50_new[@]}")) | $(awk -v a="$mp_new" -v b="$mp_old" 'BEGIN { printf "%.2f", a / b }') |"
echo "| incr 64 callers (ops/s) | $mt_old ($(spread "${tput_old[@]}")) | $mt_new ($(spread "${tput_new[@]}")) | $(awk -v a="$mt_new" -v b="$mt_old" 'BEGIN { printf "%.2f", a / b }') |"
if [ -n "$clients" ]; then
  ms_old=$(median "${sep_old[@]}"); ms_new=$(median "${sep_new[@]}")
  echo "| $clients separate clients (ops/s) | $ms_old ($(spread "${sep_old[@]}")) | $ms_new ($(spread "${sep_new[@]}")) | $(awk -v a="$ms_new" -v b="$ms_old" 'BEGIN { printf "%.2f", a / b }') |"
fi
