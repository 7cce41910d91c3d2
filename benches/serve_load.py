"""Load figures for `rlm serve`: N concurrent chat completions against a
loopback model that takes 100 ms per call.

    .ci/venv/bin/python benches/serve_load.py [--rlm target/debug/rlm] [--requests 200]

Starts a loopback OpenAI-compatible model (each call sleeps --latency-ms,
then answers: a root turn submits the context's line count and the
sub-model's answer, a sub-call answers "4"), starts `rlm serve` on a free
port against it, fires all requests at once with the official OpenAI
client, checks every answer, and prints failures, p50, p99 and the
server's peak RSS (VmHWM of /proc/PID/status). Each request is one root
turn and one sub-call: two model calls, 200 ms of model time.
"""

import argparse
import asyncio
import http.server
import json
import os
import re
import socketserver
import subprocess
import sys
import threading
import time

import openai

ROOT_REPLY = "```rhai\nsubmit(`${context.line_count()} lines, sub says ${llm_query(\"2 + 2?\")}`);\n```"


def model_server(latency_s):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
            if isinstance(system, list):
                system = "".join(b.get("text", "") for b in system)
            root = system.startswith("You are the root of a Recursive Language Model")
            time.sleep(latency_s)
            reply = json.dumps({
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": ROOT_REPLY if root else "4"}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        request_queue_size = 1024

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def cpu_seconds(pid):
    """User and system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


async def fire(url, n):
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)

    async def one(i):
        lines = 3 + i % 17
        content = "\n".join(f"line {j} of request {i}" for j in range(lines)) + "\n"
        started = time.perf_counter()
        try:
            r = await client.chat.completions.create(
                model="rlm/gpt-5", messages=[{"role": "user", "content": content}])
            ok = r.choices[0].message.content == f"{lines} lines, sub says 4"
            error = None if ok else f"wrong answer: {r.choices[0].message.content!r}"
        except Exception as e:  # every failure counts, whatever it is
            error = repr(e)
        return time.perf_counter() - started, error

    results = await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    return results


def percentile(sorted_values, p):
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--rlm", default=os.path.join(here, "..", "target", "debug", "rlm"))
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--latency-ms", type=float, default=100)
    ap.add_argument("--concurrency", default="256", help="rlm serve --concurrency (model calls in flight)")
    ap.add_argument("--max-runs", default="256", help="rlm serve --max-runs (runs at once)")
    args = ap.parse_args()

    model = model_server(args.latency_ms / 1000)
    model_url = f"http://127.0.0.1:{model.server_address[1]}/v1"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_"))}
    serve = subprocess.Popen(
        [args.rlm, "serve", "--listen", "127.0.0.1:0", "--model", "gpt-5", "--sub-model", "gpt-5-mini",
         "--base-url", model_url, "--concurrency", args.concurrency, "--max-runs", args.max_runs],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        url = None
        for line in serve.stderr:
            m = re.search(r"listening on (\S+)", line)
            if m:
                url = m.group(1)
                break
        if url is None:
            sys.exit("rlm serve did not start")
        threading.Thread(target=lambda: [None for _ in serve.stderr], daemon=True).start()
        started = time.perf_counter()
        results = asyncio.run(fire(url, args.requests))
        wall = time.perf_counter() - started
        hwm = vm_hwm_kib(serve.pid)
        cpu = cpu_seconds(serve.pid)
    finally:
        serve.terminate()
        serve.wait()
        model.shutdown()
    latencies = sorted(t for t, _ in results)
    failures = [e for _, e in results if e]
    print(f"requests: {args.requests} at once, model latency {args.latency_ms:.0f} ms per call, 2 calls per request")
    print(f"rlm serve --concurrency {args.concurrency} --max-runs {args.max_runs} ({os.path.relpath(args.rlm)})")
    print(f"failures: {len(failures)}")
    for e in failures[:5]:
        print(f"  {e}")
    print(f"p50: {percentile(latencies, 50) * 1000:.0f} ms")
    print(f"p99: {percentile(latencies, 99) * 1000:.0f} ms")
    print(f"max: {latencies[-1] * 1000:.0f} ms; wall: {wall:.2f} s")
    print(f"peak RSS (VmHWM): {hwm / 1024:.1f} MiB")
    print(f"server CPU: {cpu:.2f} s over {wall:.2f} s of wall time ({os.cpu_count()} cores, shared with this client and the model)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
