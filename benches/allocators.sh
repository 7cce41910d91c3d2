#!/usr/bin/env bash
# Is the static build as fast as the ordinary one? Times allocation-heavy
# scripts with several builds of `rlm` in one run: glibc (the default
# target, dynamic), glibc-static (+crt-static, what dist/build-static.sh
# ships: glibc's own malloc, linked in), and, where rustup has the musl
# target, static musl with mimalloc and with musl's own allocator
# (--features system-allocator). Best of N whole-process wall times, runs
# interleaved so machine noise hits all builds alike; ratios are against
# glibc.
#
#   benches/allocators.sh                          # build, then time
#   benches/allocators.sh glibc=BIN static=BIN...  # time binaries built before
#
# The 64 MiB corpus is made once in $RLM_BENCH_DIR (/tmp/rlm-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${RLM_BENCH_DIR:-/tmp/rlm-bench}
N=${RLM_BENCH_RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-target}
GNU=x86_64-unknown-linux-gnu
MUSL=x86_64-unknown-linux-musl
mkdir -p "$DIR"

declare -A BIN=()
NAMES=()
add() { BIN[$1]=$2; NAMES+=("$1"); }

if [ $# -gt 0 ]; then
    for arg in "$@"; do
        [[ $arg == *=* ]] || { echo "expected NAME=BINARY, got $arg" >&2; exit 2; }
        add "${arg%%=*}" "${arg#*=}"
    done
else
    cargo build --release --quiet --bin rlm
    add glibc "$TARGET/release/rlm"
    RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"' \
        cargo build --release --quiet --bin rlm --target "$GNU"
    add glibc-static "$TARGET/$GNU/release/rlm"
    if command -v rustup >/dev/null && rustup target list --installed | grep -qx "$MUSL"; then
        cargo build --release --quiet --bin rlm --target "$MUSL" --features system-allocator
        cp "$TARGET/$MUSL/release/rlm" "$DIR/rlm-musl-system"
        cargo build --release --quiet --bin rlm --target "$MUSL"
        add musl+mimalloc "$TARGET/$MUSL/release/rlm"
        add musl-malloc "$DIR/rlm-musl-system"
    else
        echo "(no musl target installed: timing the glibc builds only)"
    fi
fi
BASE=${NAMES[0]}

FILE="$DIR/corpus-gen-67108864.txt"
if [ ! -f "$FILE" ]; then
    cargo build --release --quiet --example bench_search
    "$TARGET/release/examples/bench_search" gen 67108864 "$FILE" >/dev/null
fi
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
for name in "${NAMES[@]:1}"; do printf "%24s" "$name/$BASE"; done
printf '\n'
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
    for name in "${NAMES[@]:1}"; do
        printf "%23.2fx" "$(python3 -c "print(${best[$name]} / ${best[$BASE]})")"
    done
    printf '\n'
    unset best
done
