#!/bin/sh
# Merges the part files of a sharded rlm batch into one results file:
#
#   sh merge.sh DIR SHARDS RESULTS     # DIR/part-0.jsonl .. part-(SHARDS-1).jsonl
#
# Each task keeps its latest line (a part killed before it compacted can
# still hold a superseded one). Nothing is written, and the exit status is
# 1, when a part is missing, a line is torn (a shard killed mid-write and
# not resumed) or not an rlm result, or one task is in two parts (the
# parts come from different SHARDS). Otherwise RESULTS is replaced
# atomically; the exit status is 0 when every task's latest line is
# "submitted" and 3 when some task's is not, as for rlm batch.
set -u

if [ $# -ne 3 ]; then
    echo "usage: merge.sh DIR SHARDS RESULTS" >&2
    exit 2
fi
dir=$1
shards=$2
results=$3
case $shards in
'' | *[!0-9]* | 0)
    echo "merge: SHARDS is '$shards': give the number of shards, e.g. 8" >&2
    exit 2
    ;;
esac

i=0
parts=
while [ "$i" -lt "$shards" ]; do
    part=$dir/part-$i.jsonl
    if [ ! -f "$part" ]; then
        echo "merge: $part is missing: shard $i has not run; resubmit it (sbatch --array=$i ...)" >&2
        exit 1
    fi
    # $(...) drops one trailing newline, so anything left is an
    # unterminated last line.
    if [ -n "$(tail -c 1 "$part")" ]; then
        echo "merge: $part ends in a torn line (shard $i was killed mid-write): resubmit shard $i, which drops it and re-runs that task" >&2
        exit 1
    fi
    i=$((i + 1))
done

set --
i=0
while [ "$i" -lt "$shards" ]; do
    set -- "$@" "$dir/part-$i.jsonl"
    i=$((i + 1))
done
tmp=$(mktemp "$results.merge-XXXXXX") || exit 1
# mktemp makes it 0600; the results get the mode a new file would.
chmod "$(printf %o $((0666 & ~$(umask))))" "$tmp"

awk -v results="$results" -v nparts="$shards" '
# A result line as rlm writes it: one JSON object whose first key is the
# id, ending in "}". Ids are compared as written (escapes included).
function fail(msg) {
    print "merge: " FILENAME ":" FNR ": " msg >"/dev/stderr"
    failed = 1
    exit 1
}
/^[ \t\r]*$/ { next }
{
    if (!match($0, /^\{"id":"([^"\\]|\\.)*",/) || substr($0, length($0)) != "}") {
        if ($0 ~ /^\{"id":/)
            fail("a torn or malformed result line; resubmit that shard, which drops it")
        fail("not an rlm result line: " substr($0, 1, 80))
    }
    id = substr($0, 8, RLENGTH - 9)
    # The status is the last "status":"...","answer_kind": in the line:
    # an answer (which comes first) may hold anything, but nothing after
    # the status can end a string there.
    status = ""
    rest = $0
    while (match(rest, /"status":"[a-z_]*","answer_kind":/)) {
        status = substr(rest, RSTART + 10, RLENGTH - 10 - 16)
        rest = substr(rest, RSTART + RLENGTH)
    }
    if (status == "")
        fail("a result line with no status: " substr($0, 1, 80))
    if (id in part) {
        if (part[id] != FILENAME)
            fail("task \"" id "\" is also in " part[id] ": the parts come from different shard counts")
    } else {
        part[id] = FILENAME
        order[++n] = id
    }
    line[id] = $0
    state[id] = status
}
END {
    if (failed)
        exit 1
    for (k = 1; k <= n; k++) {
        print line[order[k]]
        count[state[order[k]]]++
    }
    summary = ""
    for (s in count)
        summary = summary (summary == "" ? ": " : ", ") count[s] " " s
    print "merge: " n " tasks from " nparts " parts into " results summary >"/dev/stderr"
    exit (count["submitted"] == n ? 0 : 3)
}
' "$@" >"$tmp"
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    rm -f "$tmp"
    exit 1
fi
mv -f "$tmp" "$results" || {
    rm -f "$tmp"
    exit 1
}
exit "$rc"
