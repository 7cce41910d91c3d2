"""Runs rlm and the official RLM side by side against one loopback server
and prints the table. run.sh prepares everything and calls this; see
README.md for what is compared and how.

    python3 bench.py --rlm BIN --official-python VENV_PYTHON \
        --haystack FILE --records FILE --work DIR [--runs 3] [--py-runs 2]

Every case runs as a fresh process, measured from spawn to exit: wall
time, peak RSS from GNU `time` (%M, the "Maximum resident set size" of
`time -v`), and the peak RssAnon / RssFile sampled from /proc every 10 ms.
The best wall time of the runs is kept, with that run's memory.
Standard library only.
"""

import argparse
import json
import os
import subprocess
import threading
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

NEEDLE_QUERY = "What is the special magic number for {key} mentioned in the text?"
BATCH_QUERY = (
    "For every record in the context, have a sub-model read back its id, "
    "and report how many came back right."
)


GNU_TIME = "/usr/bin/time"
STATUS_FIELDS = ("RssAnon", "RssFile", "VmHWM")


def status_kb(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in STATUS_FIELDS:
                    out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def child_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except (OSError, ValueError):
        return None


def measure(cmd, cwd, env, work):
    """Runs cmd; returns (measurement, stdout, stderr).

    Peak RSS comes from GNU time (%M, ru_maxrss), which forks a tiny child
    to exec the command. ru_maxrss of a child spawned straight from this
    script would include this script's own RSS: Linux carries the pre-exec
    address space's high-water mark into the exec'd process. Without GNU
    time, the last VmHWM sampled from /proc stands in.
    """
    timed = os.path.exists(GNU_TIME)
    time_file = os.path.join(work, "time.out")
    if timed:
        cmd = [GNU_TIME, "-f", "%M", "-o", time_file, *cmd]
    peak = dict.fromkeys(STATUS_FIELDS, 0)
    started = time.perf_counter()
    child = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    chunks = {"out": [], "err": []}

    # Drain the pipes on threads so a chatty child never blocks on them.
    def drain(stream, key):
        for piece in iter(lambda: stream.read(65536), b""):
            chunks[key].append(piece)

    threads = [
        threading.Thread(target=drain, args=(child.stdout, "out"), daemon=True),
        threading.Thread(target=drain, args=(child.stderr, "err"), daemon=True),
    ]
    for t in threads:
        t.start()
    target = None
    while child.poll() is None:
        if target is None:
            target = child_of(child.pid) if timed else child.pid
        if target is not None:
            for k, v in status_kb(target).items():
                peak[k] = max(peak[k], v)
        time.sleep(0.01)
    wall = time.perf_counter() - started
    for t in threads:
        t.join()
    rss = peak["VmHWM"]
    if timed:
        with open(time_file) as f:
            rss = int(f.read().split()[-1])
    return (
        {
            "wall_s": round(wall, 3),
            "exit": child.returncode,
            "peak_rss_kb": rss,
            "peak_rss_from": "GNU time %M" if timed else "sampled VmHWM",
            "peak_anon_kb": peak["RssAnon"],
            "peak_file_kb": peak["RssFile"],
        },
        b"".join(chunks["out"]).decode(errors="replace"),
        b"".join(chunks["err"]).decode(errors="replace"),
    )


class Server:
    def __init__(self, work, latency_ms):
        self.port_file = os.path.join(work, "server.port")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        self.log = open(os.path.join(work, "server.log"), "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                os.path.join(HERE, "server.py"),
                "--port-file",
                self.port_file,
                "--sub-latency-ms",
                str(latency_ms),
            ],
            stderr=self.log,
        )
        deadline = time.time() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                sys.exit(f"bench: the loopback server did not start; see {self.log.name}")
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.url = f"http://127.0.0.1:{f.read().strip()}"

    def call(self, method, path):
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


def clean_env():
    """The environment minus anything that would point either tool elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "ANTHROPIC_", "RLM_", "PORTKEY_", "OPENROUTER_"))
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def parse_ours(stdout):
    r = json.loads(stdout)
    sub = sum(u.get("calls", 0) for m, u in r.get("usage", {}).items() if m != "rlm-root")
    return {
        "answer": r.get("answer_text"),
        "in_run_s": r.get("wall_s"),
        "sub_calls": sub,
        "status": r.get("status"),
        "error": r.get("error"),
    }


def parse_theirs(stdout):
    r = json.loads(stdout.strip().splitlines()[-1])
    return {
        "answer": r["answer"],
        "in_run_s": r["completion_s"],
        "read_s": r["read_s"],
        "sub_calls": r["calls"].get("official-sub", 0),
        "rlms_version": r["rlms_version"],
        "batch_concurrency": r["batch_concurrency"],
    }


def run_case(server, case, label, side, cmd, runs, warm_file, work, expected):
    best = None
    for i in range(runs):
        if warm_file:
            warm(warm_file)
        server.call("POST", "/reset")
        m, out, err = measure(cmd, work, clean_env(), work)
        stats = server.call("GET", "/stats")
        try:
            parsed = (parse_ours if side == "ours" else parse_theirs)(out)
        except (ValueError, KeyError, IndexError) as e:
            parsed = {"answer": None, "error": f"unreadable output ({e}): {out[-500:]!r} {err[-1500:]!r}"}
        sub_model = "rlm-sub" if side == "ours" else "official-sub"
        row = {
            "case": case,
            "label": label,
            "side": side,
            "run": i + 1,
            **m,
            **parsed,
            "peak_in_flight": stats.get(sub_model, {}).get("peak_in_flight", 0),
            "ok": parsed.get("answer") == expected,
            "stderr_tail": err[-1500:] if m["exit"] != 0 or parsed.get("answer") != expected else "",
        }
        flag = "ok" if row["ok"] else f"WRONG (got {row['answer']!r}, want {expected!r})"
        print(
            f"  {label:<40} run {i + 1}/{runs}: {m['wall_s']:7.2f} s, "
            f"{m['peak_rss_kb'] / 1024:7.0f} MiB peak RSS, {flag}",
            flush=True,
        )
        if not row["ok"]:
            print(f"    exit {m['exit']}; {row.get('error') or ''}\n    {row['stderr_tail']}", flush=True)
        if best is None or (row["ok"], -row["wall_s"]) > (best["ok"], -best["wall_s"]):
            best = row
    return best


def mib(kb):
    return f"{kb / 1024:,.0f} MiB"


def table(rows, needle_info, args):
    print()
    print(
        f"Needle: {needle_info['size'] / 2**30:.2f} GiB haystack, needle at depth {needle_info['depth']:.0%}. "
        f"Batch: {args.records_n} sub-calls, {args.latency_ms:g} ms each. Best of the runs; memory from that run."
    )
    head = ("case", "runner", "wall s", "in-run s", "peak RSS", "anon RSS", "file RSS", "sub-calls", "in flight", "answer")
    lines = [head]
    for r in rows:
        lines.append(
            (
                r["case"],
                r["label"],
                f"{r['wall_s']:.2f}",
                f"{r['in_run_s']:.2f}" if isinstance(r.get("in_run_s"), (int, float)) else "-",
                mib(r["peak_rss_kb"]),
                mib(r["peak_anon_kb"]),
                mib(r["peak_file_kb"]),
                str(r.get("sub_calls", "-")),
                str(r["peak_in_flight"]),
                "ok" if r["ok"] else "WRONG",
            )
        )
    widths = [max(len(l[i]) for l in lines) for i in range(len(head))]
    for n, l in enumerate(lines):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(l, widths))]
        print("| " + " | ".join(cells) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def ratios(by_label, size):
    if not any(label.startswith("official") for label in by_label):
        print("\nNo official runs, so no ratios (see the top of the output for why).")
        return
    print("\nRatios (theirs / ours; higher is better for rlm):")

    def ratio(theirs, ours, what, goal=None):
        t, o = by_label.get(theirs), by_label.get(ours)
        if not t or not o:
            return
        if not (t["ok"] and o["ok"]):
            print(f"  {what}: not comparable (a run gave a wrong answer)")
            return
        wall = t["wall_s"] / o["wall_s"]
        rss = t["peak_rss_kb"] / o["peak_rss_kb"]
        anon = t["peak_anon_kb"] / max(o["peak_anon_kb"], 1)
        verdict = ""
        if goal:
            verdict = f"  (goal >= {goal}x: {'met' if wall >= goal else 'NOT met'})"
        print(
            f"  {what}: wall {wall:.1f}x, peak RSS {rss:.1f}x, anonymous RSS {anon:.1f}x{verdict}"
        )

    ratio("official", "rlm", f"needle, {size / 2**30:.2g} GiB", goal=10)
    ratio("official (16 in flight)", "rlm --concurrency 16", "batch, both 16 in flight")
    ratio("official (16 in flight)", "rlm --concurrency 64", "batch, official 16 vs rlm 64", goal=5)
    ratio("official patched (64 in flight)", "rlm --concurrency 64", "batch, both 64 in flight (official patched)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rlm", required=True)
    p.add_argument("--official-python", help="the venv python with rlms; omit to run only rlm")
    p.add_argument("--haystack", required=True)
    p.add_argument("--records", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--py-runs", type=int, default=2)
    p.add_argument("--latency-ms", type=float, default=100)
    p.add_argument("--official-64", action="store_true", help="also run the official RLM patched to 64 in flight")
    args = p.parse_args()
    with open(args.haystack + ".json") as f:
        needle = json.load(f)
    with open(args.records) as f:
        args.records_n = sum(1 for _ in f)

    server = Server(args.work, args.latency_ms)
    base = server.url + "/v1"
    nq = NEEDLE_QUERY.format(key=needle["key"])

    def ours(context, query, concurrency):
        return [
            args.rlm, "run", "--context", context, "--query", query,
            "--model", "rlm-root", "--sub-model", "rlm-sub", "--base-url", base,
            "--concurrency", str(concurrency), "--max-iterations", "5",
            "--output", "json", "--quiet",
        ]

    def theirs(context, query, concurrency=16):
        return [
            args.official_python, os.path.join(HERE, "official_run.py"),
            "--base-url", base, "--context", context, "--query", query,
            "--batch-concurrency", str(concurrency),
        ]

    want_needle = str(needle["number"])
    want_batch = f"{args.records_n}/{args.records_n}"
    cases = [
        ("needle", "rlm", "ours", ours(args.haystack, nq, 16), args.runs, args.haystack, want_needle),
        ("batch", "rlm --concurrency 16", "ours", ours(args.records, BATCH_QUERY, 16), args.runs, None, want_batch),
        ("batch", "rlm --concurrency 64", "ours", ours(args.records, BATCH_QUERY, 64), args.runs, None, want_batch),
    ]
    if args.official_python:
        cases += [
            ("needle", "official", "theirs", theirs(args.haystack, nq), args.py_runs, args.haystack, want_needle),
            ("batch", "official (16 in flight)", "theirs", theirs(args.records, BATCH_QUERY), args.py_runs, None, want_batch),
        ]
        if args.official_64:
            cases.append(
                ("batch", "official patched (64 in flight)", "theirs", theirs(args.records, BATCH_QUERY, 64), args.py_runs, None, want_batch)
            )
    rows = []
    try:
        for case, label, side, cmd, runs, warm_file, expected in cases:
            rows.append(run_case(server, case, label, side, cmd, runs, warm_file, args.work, expected))
    finally:
        server.stop()
    rows.sort(key=lambda r: (r["case"] != "needle", r["side"] != "theirs", r["label"]))
    table(rows, needle, args)
    ratios({r["label"]: r for r in rows}, needle["size"])
    versions = {r.get("rlms_version") for r in rows if r.get("rlms_version")}
    if versions:
        print(f"\nofficial: rlms {', '.join(sorted(versions))} (PyPI)")
    out = os.path.join(args.work, "results.json")
    with open(out, "w") as f:
        json.dump({"needle": needle, "latency_ms": args.latency_ms, "rows": rows}, f, indent=1)
    print(f"raw results: {out}")
    if not all(r["ok"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
