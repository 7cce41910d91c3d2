#!/usr/bin/env bash
# Times rlm's search against ripgrep and Python's `re` on the same file, in
# one run, and prints the ratios.
#
#   benches/compare.sh            # 1 GiB corpus, best of 3
#
# Environment:
#   RLM_BENCH_DIR    where the corpus files are cached   (/tmp/rlm-bench)
#   RLM_BENCH_SIZE   corpus size in bytes                (1073741824)
#   RLM_BENCH_RUNS   runs per command; the best is kept  (3)
#   RLM_BENCH_PY_RUNS  runs per Python command           (2)
#   RLM_BENCH_BIN    a bench_search binary to use instead of building one
#   RLM_BENCH_ONLY   `crossing` runs only the second part (below)
#   CARGO_TARGET_DIR as for cargo
#
# Every time is the best-of-N wall time of a whole process (start, open,
# search, print, exit), measured the same way for every tool with the page
# cache warm. Ours runs on all cores through rayon and also pinned to one
# thread (RAYON_NUM_THREADS=1). ripgrep searches a single file on one thread
# whatever -j says; its -j1 column is there to show that. Python reads the
# file into memory and then searches it, as a script would.
#
# Some hosts page out idle page cache within a minute (DAMON reclaim on
# this kind of VM, for one), so each case re-reads its file before timing.
#
# The second part times the patterns that can match a newline (issue 14),
# on the 1 GiB file and on the same text cut into 1,000 files, against
# `rg -U` (multi-line mode: the same semantics as ours) and Python's `re`
# (file load included, matches counted with finditer). Its times are
# medians of RLM_BENCH_RUNS runs; `peak anon` is the largest RssAnon our
# process had (sampled every millisecond): the memory the search
# allocated beyond the mapped files. In the directory, our context puts a
# header line before each file and searches the printed text, so a
# pattern that can run from one file through a header into the next can
# count differently from tools that search file by file; such differences
# are marked, not hidden.
#
# The corpus comes from `bench_search gen` (benches/support/corpus.rs): it is
# deterministic, so a cached file is reused. Delete it after changing the
# generator.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${RLM_BENCH_DIR:-/tmp/rlm-bench}
SIZE=${RLM_BENCH_SIZE:-1073741824}
RUNS=${RLM_BENCH_RUNS:-3}
PY_RUNS=${RLM_BENCH_PY_RUNS:-2}
TRAP_SIZE=$((64 << 20))
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${RLM_BENCH_BIN:-$TARGET/release/examples/bench_search}
RG=${RG:-rg}
PYTHON=${PYTHON:-python3}

# The markers in the corpus (see benches/support/corpus.rs).
RARE_LITERAL='Mrs. Hudson'
LAST_LITERAL='Professor Moriarty'
RARE_REGEX='ZQX[0-9]+'
FREQUENT_REGEX='\bthe\b'
ING_REGEX='\w+ing\b'

for tool in "$RG" "$PYTHON" /usr/bin/time awk; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool not found" >&2; exit 1; }
done
mkdir -p "$DIR"
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

if [[ -z ${RLM_BENCH_BIN:-} ]]; then
    echo "== building bench_search"
    (cd "$ROOT" && nice -n 10 cargo build --quiet --release --example bench_search)
fi

# corpus SIZE FLAVOUR: path of a cached corpus file, generated on first use.
corpus() {
    local size=$1 flavour=$2 file
    file=$DIR/corpus-$flavour-$size.txt
    if [[ ! -f $file ]]; then
        echo "== generating $file" >&2
        local started=$SECONDS
        "$BIN" "$flavour" "$size" "$file.partial"
        mv "$file.partial" "$file"
        echo "   $((SECONDS - started)) s" >&2
    fi
    echo "$file"
}

FILE=$(corpus "$SIZE" gen)
TRAP_FILE=$(corpus "$TRAP_SIZE" gen_non_ascii)

# warm FILE...: reads files into the page cache.
warm() { cat "$@" >/dev/null; }

read -r load _ </proc/loadavg
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    echo "warning: load average is $load; other processes will make the numbers noisy" >&2
fi

declare -A TIME MEDIAN RSS OUT
# measure KEY RUNS CMD...: best and median wall time (ns) of CMD, its peak
# RSS (KiB) over all runs, and the output of the best run.
measure() {
    local key=$1 runs=$2 best='' rss=0 t0 t1 r i times=()
    shift 2
    for ((i = 0; i < runs; i++)); do
        t0=$(date +%s%N)
        /usr/bin/time -f %M -o "$SCRATCH/rss" "$@" >"$SCRATCH/out"
        t1=$(date +%s%N)
        times+=($((t1 - t0)))
        if [[ -z $best ]] || ((t1 - t0 < best)); then
            best=$((t1 - t0))
            cp "$SCRATCH/out" "$SCRATCH/best"
        fi
        r=$(tail -n 1 "$SCRATCH/rss")
        if ((r > rss)); then rss=$r; fi
    done
    TIME[$key]=$best
    MEDIAN[$key]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }')
    RSS[$key]=$rss
    OUT[$key]=$(cat "$SCRATCH/best")
}

# The answer in a tool's output: ours prints `result=N ...`, `rg -b -o`
# prints `OFFSET:match`, everything else prints a bare number.
answer() {
    local out=${OUT[$1]}
    case $out in
    result=*) out=${out#result=}; echo "${out%% *}" ;;
    *:*) echo "${out%%:*}" ;;
    *) echo "$out" ;;
    esac
}

# A field `name=value` of our output for KEY.
field() { tr ' ' '\n' <<<"${OUT[$1]}" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }

py_count='import sys; d = open(sys.argv[1], "rb").read(); print(d.count(sys.argv[2].encode()))'
py_find='import sys; d = open(sys.argv[1], "rb").read(); print(d.find(sys.argv[2].encode()))'
py_re='import re, sys; d = open(sys.argv[1], "rb").read(); print(len(re.findall(sys.argv[2].encode(), d)))'

# run_case NAME OUR_OP PATTERN RG_FLAGS PY_SCRIPT
run_case() {
    local name=$1 op=$2 pattern=$3 rg_flags=$4 py=$5
    echo "== $name: $pattern" >&2
    warm "$FILE"
    measure "$name:ours" "$RUNS" "$BIN" "$op" "$pattern" "$FILE"
    measure "$name:ours1" "$RUNS" env RAYON_NUM_THREADS=1 "$BIN" "$op" "$pattern" "$FILE"
    # shellcheck disable=SC2086 # rg_flags is a list of flags
    measure "$name:rg" "$RUNS" "$RG" $rg_flags -e "$pattern" "$FILE"
    # shellcheck disable=SC2086
    measure "$name:rgj1" "$RUNS" "$RG" -j1 $rg_flags -e "$pattern" "$FILE"
    measure "$name:py" "$PY_RUNS" "$PYTHON" -c "$py" "$FILE" "$pattern"
}

# crossing_case NAME PATTERN: the patterns that can match a newline, on
# the file and on the directory.
py_re_file='import re, sys; d = open(sys.argv[1], "rb").read(); print(sum(1 for _ in re.finditer(sys.argv[2].encode(), d)))'
py_re_dir='import os, re, sys
p = re.compile(sys.argv[2].encode())
n = 0
for f in sorted(os.listdir(sys.argv[1])):
    with open(os.path.join(sys.argv[1], f), "rb") as h:
        n += sum(1 for _ in p.finditer(h.read()))
print(n)'
crossing_case() {
    local name=$1 pattern=$2
    echo "== crossing $name: $pattern" >&2
    warm "$FILE"
    measure "$name:file:ours" "$RUNS" "$BIN" count_matches "$pattern" "$FILE"
    measure "$name:file:rg" "$RUNS" "$RG" -U --count-matches -e "$pattern" "$FILE"
    measure "$name:file:py" "$PY_RUNS" "$PYTHON" -c "$py_re_file" "$FILE" "$pattern"
    warm "$CROSS_DIR"/*
    measure "$name:dir:ours" "$RUNS" "$BIN" count_matches "$pattern" "$CROSS_DIR"
    measure "$name:dir:rg" "$RUNS" bash -c '"$0" -U --count-matches --no-filename -e "$1" "$2" | awk "{ s += \$1 } END { print s + 0 }"' "$RG" "$pattern" "$CROSS_DIR"
    measure "$name:dir:py" "$PY_RUNS" "$PYTHON" -c "$py_re_dir" "$CROSS_DIR" "$pattern"
}

CROSS_DIR=$DIR/corpus-dir-$SIZE
if [[ ! -d $CROSS_DIR ]]; then
    echo "== generating $CROSS_DIR" >&2
    "$BIN" gen_dir "$SIZE" "$CROSS_DIR.partial"
    mv "$CROSS_DIR.partial" "$CROSS_DIR"
fi
CROSS_NAMES=(magic gentle user spaces commas blocks)
declare -A CROSS_PATTERN=(
    [magic]='magic number[^:]*: \d+'
    [gentle]='\s+gentle-river\s+is'
    [user]='User:\s*\d+'
    [spaces]='\s+'
    [commas]='[^,]+,'
    [blocks]='(?s)BEGIN.*?END'
)
for c in "${CROSS_NAMES[@]}"; do crossing_case "$c" "${CROSS_PATTERN[$c]}"; done

crossing_report() {
    echo
    echo "patterns that can match a newline: rlm count_matches vs rg -U --count-matches vs Python re (load included)"
    echo "file: $FILE; dir: $CROSS_DIR (1,000 files); medians of $RUNS (Python: $PY_RUNS); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "targets: ours/rg <= 1.20, py/ours >= 10, peak anon <= 64 MiB"
    echo
    printf '%-8s %-4s %8s %8s %8s %8s %8s %10s %12s  %s\n' \
        case on ours rg python ours/rg py/ours 'anon MiB' matches pattern
    local c on mine
    for c in "${CROSS_NAMES[@]}"; do
        for on in file dir; do
            mine=$(answer "$c:$on:ours")
            printf '%-8s %-4s %8s %8s %8s %8s %8s %10d %12s  %s\n' "$c" "$on" \
                "$(secs "${MEDIAN[$c:$on:ours]}")" "$(secs "${MEDIAN[$c:$on:rg]}")" \
                "$(secs "${MEDIAN[$c:$on:py]}")" \
                "$(awk -v a="${MEDIAN[$c:$on:ours]}" -v b="${MEDIAN[$c:$on:rg]}" 'BEGIN { printf "%.2f", a / b }')" \
                "$(ratio "${MEDIAN[$c:$on:py]}" "${MEDIAN[$c:$on:ours]}")" \
                $(($(field "$c:$on:ours" peak_anon_kib) / 1024)) "$mine" "${CROSS_PATTERN[$c]}"
            for tool in rg py; do
                if [[ $(answer "$c:$on:$tool") != "$mine" ]]; then
                    if [[ $on == dir ]]; then
                        echo "   differs: $tool counted $(answer "$c:$on:$tool") file by file (ours searches across the headers)"
                    else
                        echo "   MISMATCH: $tool answered $(answer "$c:$on:$tool")"
                    fi
                fi
            done
        done
    done
}
if [[ ${RLM_BENCH_ONLY:-} == crossing ]]; then
    crossing_report
    exit 0
fi

CASES=(rare_literal last_literal rare_regex frequent_regex)
run_case rare_literal count "$RARE_LITERAL" "--count-matches -F" "$py_count"
run_case last_literal find "$LAST_LITERAL" "-F -m1 -b -o" "$py_find"
run_case rare_regex count_matches "$RARE_REGEX" "--count-matches" "$py_re"
run_case frequent_regex count_matches "$FREQUENT_REGEX" "--count-matches" "$py_re"

echo "== open + len" >&2
measure open:ours "$RUNS" "$BIN" open "$FILE"

echo "== Unicode word boundaries on $TRAP_FILE" >&2
warm "$TRAP_FILE"
measure trap:ascii "$RUNS" "$BIN" count_matches "$ING_REGEX" "$TRAP_FILE"
measure trap:unicode "$RUNS" "$BIN" count_matches_unicode "$ING_REGEX" "$TRAP_FILE"
measure trap:rg "$RUNS" "$RG" --count-matches -e "$ING_REGEX" "$TRAP_FILE"
measure trap:rgascii "$RUNS" "$RG" --count-matches -e '(?-u:\b)\w+ing(?-u:\b)' "$TRAP_FILE"

echo
echo "rlm search vs ripgrep $("$RG" --version | head -n 1 | cut -d' ' -f2) and $("$PYTHON" --version)"
echo "file: $FILE ($SIZE bytes); best of $RUNS (Python: best of $PY_RUNS); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "times in seconds, whole process; ratios are how many times faster ours is (rg/1t: ours on one thread)"
echo
printf '%-16s %8s %8s %8s %8s %8s %8s %8s %8s  %s\n' \
    case ours ours-1t rg rg-j1 python rg/ours rg/1t py/ours answer
for c in "${CASES[@]}"; do
    printf '%-16s %8s %8s %8s %8s %8s %8s %8s %8s  %s\n' "$c" \
        "$(secs "${TIME[$c:ours]}")" "$(secs "${TIME[$c:ours1]}")" \
        "$(secs "${TIME[$c:rg]}")" "$(secs "${TIME[$c:rgj1]}")" "$(secs "${TIME[$c:py]}")" \
        "$(ratio "${TIME[$c:rg]}" "${TIME[$c:ours]}")" \
        "$(ratio "${TIME[$c:rg]}" "${TIME[$c:ours1]}")" \
        "$(ratio "${TIME[$c:py]}" "${TIME[$c:ours]}")" \
        "$(answer "$c:ours")"
    for tool in ours1 rg rgj1 py; do
        if [[ $(answer "$c:$tool") != "$(answer "$c:ours")" ]]; then
            echo "   MISMATCH: $tool answered $(answer "$c:$tool")"
        fi
    done
done

echo
echo "peak RSS in MiB (ours: of which anonymous; a mapped file's pages are page cache)"
printf '%-16s %14s %8s %8s\n' case ours rg python
for c in "${CASES[@]}"; do
    printf '%-16s %8d (%3d) %8d %8d\n' "$c" \
        $((RSS[$c:ours] / 1024)) $(($(field "$c:ours" rss_anon_kib) / 1024)) \
        $((RSS[$c:rg] / 1024)) $((RSS[$c:py] / 1024))
done

echo
echo "open + len: $(secs "${TIME[open:ours]}") s whole process, $(field open:ours open_s) s in Context::open"
echo "search time inside our process (excluding start-up and open):"
for c in "${CASES[@]}"; do
    s=$(field "$c:ours" search_s)
    printf '   %-16s %s s  (%s GB/s)\n' "$c" "$s" "$(awk -v b="$SIZE" -v s="$s" 'BEGIN { printf "%.1f", b / s / 1e9 }')"
done

echo
echo "Unicode \\b trap: $ING_REGEX on $TRAP_SIZE bytes with accented words"
printf '   %-34s %8s s  %s matches\n' \
    "ours, ASCII \\b (default)" "$(secs "${TIME[trap:ascii]}")" "$(answer trap:ascii)" \
    "ours, Unicode \\b" "$(secs "${TIME[trap:unicode]}")" "$(answer trap:unicode)" \
    "rg, Unicode \\b (its default)" "$(secs "${TIME[trap:rg]}")" "$(answer trap:rg)" \
    "rg, ASCII \\b" "$(secs "${TIME[trap:rgascii]}")" "$(answer trap:rgascii)"
echo "   Unicode / ASCII: $(ratio "${TIME[trap:unicode]}" "${TIME[trap:ascii]}") whole process," \
    "$(ratio "$(field trap:unicode search_s)" "$(field trap:ascii search_s)") search only"

crossing_report
