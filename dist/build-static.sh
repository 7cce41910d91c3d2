#!/usr/bin/env bash
# Builds rlm as one static x86_64 Linux binary (musl, mimalloc, rustls) and
# proves it: `ldd` must call it static, and, when run as root, it must work
# inside an empty chroot that holds nothing but the binary and its inputs.
#
#   dist/build-static.sh            # build, check, print the path and size
#
# Installs what it needs when missing: the Rust musl target (rustup) and
# musl-gcc (Debian's musl-tools), which aws-lc, rustls's crypto, builds with.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
if ! command -v musl-gcc >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq musl-tools
    else
        echo "musl-gcc is missing: install musl-tools (Debian/Ubuntu) or musl-gcc" >&2
        exit 1
    fi
fi

cargo build --profile dist --target "$target"
binary="target/$target/dist/rlm"

if ! ldd "$binary" 2>&1 | grep -Eq 'statically linked|not a dynamic executable'; then
    echo "not static:" >&2
    ldd "$binary" >&2
    exit 1
fi

if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
    root=$(mktemp -d)
    server_pid=
    trap 'rm -rf "$root"; [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true' EXIT
    cp "$binary" "$root/rlm"
    cp examples/data/deliveries.log examples/traces/missed_deliveries.jsonl "$root/"

    # 1. The quick start: a replayed run needs no network and no files but its inputs.
    answer=$(chroot "$root" /rlm run --quiet --model replay:/missed_deliveries.jsonl \
        --context /deliveries.log --query "Which vendors missed a delivery in 2025?")
    [ "$answer" = '["Cobalt Parts","Fjord Metals","Helix Plastics"]' ] ||
        { echo "replay in the chroot answered: $answer" >&2; exit 1; }

    # 2. A live run against a loopback OpenAI-compatible server, over HTTP.
    port_file="$root/port"
    python3 dist/loopback_model.py "$port_file" &
    server_pid=$!
    for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
    answer=$(OPENAI_API_KEY=sk-dummy chroot "$root" /rlm run --quiet --model gpt-5 \
        --base-url "http://127.0.0.1:$(cat "$port_file")/v1" \
        --context /deliveries.log --query "How many lines?")
    [ "$answer" = "2400" ] || { echo "live run in the chroot answered: $answer" >&2; exit 1; }
    echo "ran in an empty chroot: replay and a live loopback run"
else
    echo "(not root: skipped the empty-chroot check)"
fi

size=$(stat -c %s "$binary")
echo "$binary: static, $((size / 1024)) KiB"
