#!/usr/bin/env bash
# Builds rlm as one static x86_64 Linux binary and proves it works inside an
# empty chroot that holds nothing but the binary, /etc/hosts, /etc/resolv.conf
# and a CA file: no libc, no NSS modules, no /proc.
#
#   dist/build-static.sh                # glibc, statically linked (default)
#   dist/build-static.sh --musl         # musl + mimalloc, where rustup has the target
#   dist/build-static.sh --check BIN    # only the checks, on a binary built before
#
# The default route needs nothing but the toolchain that builds rlm:
# `-C target-feature=+crt-static` on x86_64-unknown-linux-gnu. A static glibc
# cannot load NSS modules, so rlm must never call getaddrinfo: reqwest's
# `hickory-dns` feature resolves names in-process, from /etc/hosts and then
# the servers in /etc/resolv.conf, as a `FROM scratch` container's runtime
# provides them. glibc's malloc is linked in, so no other allocator is needed
# (musl's is, hence mimalloc on that route; benches/allocators.sh measures).
#
# The checks, each under a timeout so the script never hangs:
#   1. the README quick start's replayed run (no network),
#   2. a live run against a loopback model server by IP (HTTP),
#   3. the same by a host name found only in the chroot's /etc/hosts,
#   4. HTTPS by that name, trusting a CA generated here (SSL_CERT_FILE).
# They need root (or an unprivileged user namespace), chroot, python3 and
# openssl; without root they are skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '5,7s/^# *//p' "$0"; }
route=glibc
binary=
while [ $# -gt 0 ]; do
    case $1 in
    --musl) route=musl ;;
    --check)
        [ $# -ge 2 ] || { usage >&2; exit 2; }
        binary=$2
        shift
        ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
target_dir=${CARGO_TARGET_DIR:-target}

build_glibc() {
    local target=x86_64-unknown-linux-gnu
    # With --target, RUSTFLAGS reach only the target's crates, not build
    # scripts and proc macros, which stay dynamic and run on the host.
    # getrandom finds glibc's getrandom() with dlsym, which a static binary
    # cannot do, and then falls back to /dev/urandom, which an empty root
    # lacks (hickory's query ids panicked): call the syscall directly.
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"" \
        cargo build --profile dist --target "$target" --bin rlm
    binary="$target_dir/$target/dist/rlm"
}

build_musl() {
    local target=x86_64-unknown-linux-musl
    if ! command -v rustup >/dev/null || ! rustup target list --installed | grep -qx "$target"; then
        echo "the musl target is not installed: 'rustup target add $target' where it can be" >&2
        echo "fetched, or use the default route (no flag), which needs nothing more" >&2
        exit 1
    fi
    if ! command -v musl-gcc >/dev/null; then
        # aws-lc, rustls's crypto, is C and builds with musl-gcc.
        echo "musl-gcc is missing: install musl-tools (Debian/Ubuntu) or musl-gcc" >&2
        exit 1
    fi
    cargo build --profile dist --target "$target" --bin rlm
    binary="$target_dir/$target/dist/rlm"
}

# Waits up to 10 s for a server to write its port; prints the port.
wait_for_port() {
    for _ in $(seq 100); do
        [ -s "$1" ] && { cat "$1"; return; }
        sleep 0.1
    done
    echo "the loopback model server did not start within 10 s" >&2
    return 1
}

# Runs the binary in the chroot with an empty environment plus "$@"'s
# NAME=VALUE words, killed after 30 s: a lookup or connection that waits
# fails the check instead of hanging it.
in_chroot() {
    local env=()
    while [ $# -gt 0 ] && [[ $1 == *=* ]]; do env+=("$1"); shift; done
    timeout 30 env -i "${env[@]}" "${chroot_cmd[@]}" "$root" /rlm "$@" || {
        local status=$?
        if [ $status = 124 ]; then
            echo "timed out after 30 s in the chroot: rlm $*" >&2
        else
            echo "failed with status $status in the chroot: rlm $*" >&2
        fi
        return $status
    }
}

expect() { # NAME EXPECTED ACTUAL
    [ "$3" = "$2" ] || { echo "$1 in the chroot answered '$3', not '$2'" >&2; exit 1; }
    echo "ok: $1"
}

check() {
    if ! ldd "$binary" 2>&1 | grep -Eq 'statically linked|not a dynamic executable'; then
        echo "not static:" >&2
        ldd "$binary" >&2
        exit 1
    fi
    if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
        chroot_cmd=("$(command -v chroot)")
    elif command -v unshare >/dev/null && command -v chroot >/dev/null && unshare -r true 2>/dev/null; then
        chroot_cmd=("$(command -v unshare)" -r "$(command -v chroot)")
    else
        echo "(not root and no user namespaces: skipped the empty-chroot checks)"
        return
    fi
    for tool in python3 openssl timeout; do
        command -v "$tool" >/dev/null || { echo "$tool is needed for the chroot checks" >&2; exit 1; }
    done

    root=$(mktemp -d)
    work=$(mktemp -d)
    pids=()
    trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$root" "$work"' EXIT
    mkdir "$root/etc"
    cp "$binary" "$root/rlm"
    cp examples/data/deliveries.log examples/traces/missed_deliveries.jsonl "$root/"
    # Both families: rlm asks for A and AAAA at once, and a family missing
    # here would go to the name server below and wait out its timeout.
    printf '127.0.0.1 localhost model.rlm.test\n::1 localhost model.rlm.test\n' >"$root/etc/hosts"
    # Names not in /etc/hosts go to loopback, where nothing answers: no
    # query from these checks can leave the machine.
    printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n' >"$root/etc/resolv.conf"

    answer=$(in_chroot run --quiet --model replay:/missed_deliveries.jsonl \
        --context /deliveries.log --query "Which vendors missed a delivery in 2025?")
    expect "1. replay of the quick-start trace" '["Cobalt Parts","Fjord Metals","Helix Plastics"]' "$answer"

    python3 dist/loopback_model.py "$work/http.port" &
    pids+=($!)
    port=$(wait_for_port "$work/http.port")
    live=(--quiet --model gpt-5 --request-timeout 10 --max-retries 0 --context /deliveries.log --query "How many lines?")
    answer=$(in_chroot OPENAI_API_KEY=sk-dummy run --base-url "http://127.0.0.1:$port/v1" "${live[@]}")
    expect "2. live run by IP (http://127.0.0.1)" 2400 "$answer"
    answer=$(in_chroot OPENAI_API_KEY=sk-dummy run --base-url "http://model.rlm.test:$port/v1" "${live[@]}")
    expect "3. live run by name from /etc/hosts (http://model.rlm.test)" 2400 "$answer"

    # A CA and a server certificate for model.rlm.test, valid for a day.
    timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=rlm check CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
        -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
    timeout 60 openssl req -newkey rsa:2048 -nodes -subj "/CN=model.rlm.test" \
        -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:model.rlm.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext"
    timeout 60 openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -CAcreateserial -days 1 -extfile "$work/ext" -out "$work/server.pem" 2>/dev/null
    cp "$work/ca.pem" "$root/ca.pem"
    python3 dist/loopback_model.py "$work/https.port" "$work/server.pem" "$work/server.key" &
    pids+=($!)
    port=$(wait_for_port "$work/https.port")
    answer=$(in_chroot OPENAI_API_KEY=sk-dummy SSL_CERT_FILE=/ca.pem \
        run --base-url "https://model.rlm.test:$port/v1" "${live[@]}")
    expect "4. HTTPS by name, trusting SSL_CERT_FILE (https://model.rlm.test)" 2400 "$answer"
    echo "ran in an empty chroot: ${chroot_cmd[*]} $root"
}

if [ -z "$binary" ]; then
    "build_$route"
fi
[ -x "$binary" ] || { echo "no executable at $binary" >&2; exit 1; }
check
size=$(stat -c %s "$binary")
echo "$binary: static, $((size / 1024)) KiB ($size bytes)"
