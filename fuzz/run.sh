#!/usr/bin/env bash
# Fuzzes every target (or the ones named) for SECONDS each:
#   fuzz/run.sh 60                  # all targets, one minute each
#   fuzz/run.sh 300 script text_ops # two targets, five minutes each
#
# Needs cargo-fuzz (installed here if missing) and a nightly toolchain; with
# only stable, RUSTC_BOOTSTRAP=1 lets it accept the sanitizer flags.
# The growing corpus lives in fuzz/corpus/ (not committed). fuzz/seeds/ holds
# hand-written seeds plus a minimized corpus (`cargo +nightly fuzz cmin`,
# copied in); `cargo test` replays all of it. A crash leaves its input in
# fuzz/artifacts/TARGET/: once fixed, copy it to fuzz/regressions/TARGET/,
# where `cargo test` replays it too.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(fences provider_response scrub text_ops script)
fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds}s"
    # -timeout: one input running this long is a hang (scripts stop at 2 s).
    # -rss_limit_mb: a memory blow-up is a crash.
    if ! "${fuzz[@]}" run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 2>&1 | tail -n 25; then
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crashes in ${targets[*]}"
