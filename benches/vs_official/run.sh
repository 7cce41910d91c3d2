#!/usr/bin/env bash
# Runs rlm and the official Python RLM (PyPI `rlms`) side by side on the
# same tasks, against one scripted loopback model server, and prints wall
# time, peak memory and the ratios. See README.md in this folder.
#
#   benches/vs_official/run.sh
#
# Environment:
#   RLM_VS_DIR        work dir: venv, inputs, logs, results  (${TMPDIR:-/tmp}/rlm-vs-official)
#   RLM_VS_SIZE       haystack size in bytes                 (1073741824)
#   RLM_VS_SEED       haystack seed                          (42)
#   RLM_VS_RECORDS    sub-calls in the batch case            (1000)
#   RLM_VS_LATENCY_MS latency of every sub-call              (100)
#   RLM_VS_RUNS       runs of each rlm case; the best is kept (3)
#   RLM_VS_PY_RUNS    runs of each official case             (2)
#   RLM_VS_OFFICIAL_64=0  skip the official run patched to 64 in flight
#   RLM_VS_FRESH=1    recreate the virtualenv
#   RLMS_SPEC         what pip installs                      (rlms)
#   RLM_BIN           use this rlm binary instead of building one
#   CARGO_TARGET_DIR  as for cargo
#   PYTHON            Python >= 3.11 for the virtualenv      (python3)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${RLM_VS_DIR:-${TMPDIR:-/tmp}/rlm-vs-official}
SIZE=${RLM_VS_SIZE:-1073741824}
SEED=${RLM_VS_SEED:-42}
RECORDS=${RLM_VS_RECORDS:-1000}
LATENCY_MS=${RLM_VS_LATENCY_MS:-100}
RUNS=${RLM_VS_RUNS:-3}
PY_RUNS=${RLM_VS_PY_RUNS:-2}
PYTHON=${PYTHON:-python3}
RLMS_SPEC=${RLMS_SPEC:-rlms}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=$WORK/venv
mkdir -p "$WORK"

read -r load _ </proc/loadavg
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    echo "warning: load average is $load; other processes will make the numbers noisy" >&2
fi

# 1. The official RLM, in a throwaway virtualenv. A failure to install is a
#    result: it is reported with pip's own words, and rlm runs alone.
OFFICIAL=()
echo "== official RLM: $RLMS_SPEC into $VENV"
if [[ ${RLM_VS_FRESH:-0} == 1 ]]; then rm -rf "$VENV"; fi
if [[ ! -x $VENV/bin/python ]] && ! "$PYTHON" -m venv "$VENV" >"$WORK/venv.log" 2>&1; then
    echo "   could not create the virtualenv:" >&2
    sed 's/^/   | /' "$WORK/venv.log" >&2
elif ! "$VENV/bin/pip" install --disable-pip-version-check -q "$RLMS_SPEC" >"$WORK/pip.log" 2>&1; then
    echo "   pip install $RLMS_SPEC failed; running rlm alone. pip said:" >&2
    tail -n 20 "$WORK/pip.log" | sed 's/^/   | /' >&2
elif ! "$VENV/bin/python" -c 'import rlm; rlm.RLM' >"$WORK/import.log" 2>&1; then
    echo "   rlms installed but does not import; running rlm alone:" >&2
    sed 's/^/   | /' "$WORK/import.log" >&2
else
    echo "   rlms $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("rlms"))')"
    OFFICIAL=(--official-python "$VENV/bin/python")
    if [[ ${RLM_VS_OFFICIAL_64:-1} == 1 ]]; then OFFICIAL+=(--official-64); fi
fi

# 2. rlm.
if [[ -n ${RLM_BIN:-} ]]; then
    BIN=$RLM_BIN
else
    echo "== building rlm (release) in $TARGET"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET nice -n 10 cargo build --quiet --release)
    BIN=$TARGET/release/rlm
fi
[[ -x $BIN ]] || { echo "run.sh: no rlm binary at $BIN" >&2; exit 1; }

# 3. Inputs, cached: the generator is deterministic in SIZE and SEED.
HAYSTACK=$WORK/haystack-$SIZE-$SEED.txt
if [[ ! -f $HAYSTACK || ! -f $HAYSTACK.json ]]; then
    echo "== generating $HAYSTACK"
    started=$SECONDS
    "$PYTHON" "$HERE/haystack.py" needle "$SIZE" "$SEED" "$HAYSTACK.partial"
    mv "$HAYSTACK.partial.json" "$HAYSTACK.json"
    mv "$HAYSTACK.partial" "$HAYSTACK"
    echo "   $((SECONDS - started)) s"
fi
RECORDS_FILE=$WORK/records-$RECORDS.txt
[[ -f $RECORDS_FILE ]] || "$PYTHON" "$HERE/haystack.py" records "$RECORDS" "$RECORDS_FILE"

# 4. Both runners, one loopback server, the table.
echo "== running (server log: $WORK/server.log)"
exec "$PYTHON" "$HERE/bench.py" --rlm "$BIN" "${OFFICIAL[@]}" \
    --haystack "$HAYSTACK" --records "$RECORDS_FILE" --work "$WORK" \
    --runs "$RUNS" --py-runs "$PY_RUNS" --latency-ms "$LATENCY_MS"
