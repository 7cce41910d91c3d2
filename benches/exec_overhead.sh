#!/usr/bin/env bash
# Does going through Rhai cost native speed? On the same 1 GiB file, in one
# run: `context.count_matches(...)` via `rlm exec` against the same call from
# Rust (examples/bench_search.rs), session creation on 1 GiB, and a Rhai loop
# over 1M chunk views. Best of N wall times, runs interleaved so machine
# noise hits both sides alike.
#
#   benches/exec_overhead.sh            # uses/creates $RLM_BENCH_DIR/corpus-gen-1073741824.txt
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${RLM_BENCH_DIR:-/tmp/rlm-bench}
N=${RLM_BENCH_RUNS:-5}
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p "$DIR"
cargo build --release --quiet --bin rlm --example bench_search
RLM="$TARGET/release/rlm"
NATIVE="$TARGET/release/examples/bench_search"
FILE="$DIR/corpus-gen-1073741824.txt"
[ -f "$FILE" ] || "$NATIVE" gen 1073741824 "$FILE" >/dev/null
cat "$FILE" > /dev/null   # warm the page cache

now() { date +%s.%N; }
best() { sort -g | head -1; }
calc() { python3 -c "print($1)"; }
SCRIPT=$(mktemp --suffix=.rhai); LOOP=$(mktemp --suffix=.rhai); EMPTY=$(mktemp --suffix=.rhai)
trap 'rm -f "$SCRIPT" "$LOOP" "$EMPTY"' EXIT
printf 'print(context.count_matches(`\\bthe\\b`));\n' > "$SCRIPT"
printf 'let n = 0;\nfor c in context.chunks(1074) { n += c.len(); }\nprint(n);\n' > "$LOOP"
printf 'print(context.len());\n' > "$EMPTY"

exec_times=(); native_times=()
for _ in $(seq "$N"); do
  t0=$(now); a=$("$RLM" exec "$SCRIPT" --context "$FILE"); t1=$(now)
  exec_times+=("$(calc "$t1 - $t0")")
  t0=$(now); b=$("$NATIVE" count_matches '\bthe\b' "$FILE"); t1=$(now)
  native_times+=("$(calc "$t1 - $t0")")
done
nb=$(echo "$b" | sed -n 's/.*result=\([0-9]*\).*/\1/p')
[ "$a" = "$nb" ] || { echo "results differ: exec=$a native=$nb" >&2; exit 1; }
e=$(printf '%s\n' "${exec_times[@]}" | best); n=$(printf '%s\n' "${native_times[@]}" | best)
printf 'count_matches(\\bthe\\b) on 1 GiB: %s matches\n' "$a"
printf '  rlm exec (process, open, session, Rhai call)  %.3f s\n' "$e"
printf '  Rust (process, open, call)                    %.3f s\n' "$n"
printf '  ratio exec/native                             %.3fx  (target <= 1.1x)\n' "$(calc "$e / $n")"

sess=()
for _ in $(seq "$N"); do
  sess+=("$("$RLM" exec "$EMPTY" --context "$FILE" --output json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["timing"]["load_s"] + d["timing"]["run_s"])')")
done
printf 'open 1 GiB + create session + one cell: %.1f ms (best of %s)\n' "$(calc "$(printf '%s\n' "${sess[@]}" | best) * 1000")" "$N"

t0=$(now); c=$("$RLM" exec "$LOOP" --context "$FILE"); t1=$(now)
chunks=$(( $(stat -c %s "$FILE") / 1074 + 1 ))
printf 'Rhai loop over ~%s chunk views (1074 B each): %.2f s, sum of lengths %s\n' "$chunks" "$(calc "$t1 - $t0")" "$c"
