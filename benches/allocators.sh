#!/usr/bin/env bash
# Is the static build as fast as the ordinary one, and does it need
# mimalloc? Times allocation-heavy scripts with three builds of `rlm`, in one
# run: glibc (the default target), static musl with mimalloc (what
# dist/build-static.sh ships), and static musl with musl's own allocator
# (--features system-allocator). Best of N whole-process wall times, runs
# interleaved so machine noise hits all three alike; ratios are against glibc.
#
#   benches/allocators.sh          # 64 MiB corpus in $RLM_BENCH_DIR (/tmp/rlm-bench)
#
# Needs the musl target and musl-gcc (dist/build-static.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${RLM_BENCH_DIR:-/tmp/rlm-bench}
N=${RLM_BENCH_RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-target}
MUSL=x86_64-unknown-linux-musl
mkdir -p "$DIR"

cargo build --release --quiet --bin rlm --example bench_search
cargo build --release --quiet --bin rlm --target "$MUSL" --features system-allocator
cp "$TARGET/$MUSL/release/rlm" "$DIR/rlm-musl-system"
cargo build --release --quiet --bin rlm --target "$MUSL"
declare -A BIN=(
    [glibc]="$TARGET/release/rlm"
    [musl+mimalloc]="$TARGET/$MUSL/release/rlm"
    [musl-malloc]="$DIR/rlm-musl-system"
)
NAMES=(glibc musl+mimalloc musl-malloc)

FILE="$DIR/corpus-gen-67108864.txt"
[ -f "$FILE" ] || "$TARGET/release/examples/bench_search" gen 67108864 "$FILE" >/dev/null
cat "$FILE" >/dev/null # warm the page cache

SCRIPTS=$(mktemp -d)
trap 'rm -rf "$SCRIPTS"' EXIT
# Parallel search that allocates a result per hit.
printf 'print(context.matches("the", 400000).len());\n' >"$SCRIPTS/matches-400k.rhai"
printf 'print(context.matches(`(\\w+)ing\\b`, 1000000).len());\n' >"$SCRIPTS/matches-with-groups.rhai"
printf 'print(context.grep("the", #{max: 100000}).len());\n' >"$SCRIPTS/grep-100k-hits.rhai"
# Rhai itself: a view per line, then strings and a map per word.
printf 'let n = 0;\nfor l in context.head(16000000).lines() { n += l.len(); }\nprint(n);\n' >"$SCRIPTS/line-views-16MB.rhai"
printf 'let words = context.head(2000000).split_on(`\\s+`).map(|w| w.to_string());\nprint(top(counts(words), 3));\n' >"$SCRIPTS/word-counts-2MB.rhai"

now() { date +%s.%N; }
printf '%-22s' "script"
for name in "${NAMES[@]}"; do printf '%16s' "$name"; done
printf '%16s%14s\n' "mimalloc/glibc" "malloc/glibc"
for script in "$SCRIPTS"/*.rhai; do
    declare -A best=()
    expected=
    for _ in $(seq "$N"); do
        for name in "${NAMES[@]}"; do
            t0=$(now)
            out=$("${BIN[$name]}" exec "$script" --context "$FILE")
            t1=$(now)
            [ -z "$expected" ] && expected=$out
            [ "$out" = "$expected" ] || { echo "$name printed $out, not $expected" >&2; exit 1; }
            t=$(python3 -c "print($t1 - $t0)")
            if [ -z "${best[$name]:-}" ] || python3 -c "import sys; sys.exit(not $t < ${best[$name]})"; then
                best[$name]=$t
            fi
        done
    done
    printf '%-22s' "$(basename "$script" .rhai)"
    for name in "${NAMES[@]}"; do printf '%15.3fs' "${best[$name]}"; done
    printf '%13.2fx%13.2fx\n' \
        "$(python3 -c "print(${best[musl+mimalloc]} / ${best[glibc]})")" \
        "$(python3 -c "print(${best[musl-malloc]} / ${best[glibc]})")"
    unset best
done
