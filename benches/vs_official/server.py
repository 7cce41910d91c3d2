"""A scripted OpenAI-compatible model server on loopback, for run.sh.

One server plays both sides:

- Root turns. The root model's name says whose loop is asking:
  `official-root` gets Python in ```repl blocks (the official `rlms`
  package), `rlm-root` gets Rhai in ```rhai blocks (this crate). The
  scenario comes from the question in the user messages: "special magic
  number" is the needle case, "every record" the batch case. Turn 1 is the
  script; a later turn only happens if turn 1 failed, so it is logged to
  stderr (the cell output says why) and answered with a give-up submission.
- Sub-calls (any other model) are answered by rule: the last integer in the
  prompt, after --sub-latency-ms.

GET /stats gives, per model, the requests seen and the most in flight at
once; POST /reset clears them. Standard library only; asyncio, so hundreds
of keep-alive connections cost nothing.

    python3 server.py --port-file PORT_FILE [--sub-latency-ms 100]
"""

import argparse
import asyncio
import json
import os
import re
import sys

ROOT_TURNS = {
    ("official-root", "needle"): """I'll search the context with a regex, then have a sub-model read the line.
```repl
import re
m = re.search(r"The special magic number for \\S+ is: \\d+", context)
print(m.group(0))
n = llm_query("What is the special magic number in this line? Reply with the number only.\\n" + m.group(0))
answer["content"] = n.strip()
answer["ready"] = True
```""",
    ("rlm-root", "needle"): """I'll search the context natively, then have a sub-model read the line.
```rhai
let hits = context.grep(`The special magic number for \\S+ is: \\d+`);
print(hits[0].text);
let n = llm_query(`What is the special magic number in this line? Reply with the number only.\n${hits[0].text}`);
submit(n.trim());
```""",
    ("official-root", "batch"): """One sub-call per record, all in one batch.
```repl
records = context.splitlines()
prompts = [f"Read back the id of this record, digits only.\\n{r}" for r in records]
replies = llm_query_batched(prompts)
ok = sum(1 for i, r in enumerate(replies) if r.strip() == str(i))
print(f"{len(replies)} replies, {ok} correct")
answer["content"] = f"{ok}/{len(replies)}"
answer["ready"] = True
```""",
    ("rlm-root", "batch"): """One sub-call per record, all in one batch.
```rhai
let records = context.lines();
let prompts = records.map(|r| `Read back the id of this record, digits only.\n${r}`);
let replies = llm_batch(prompts);
let ok = 0;
for (r, i) in replies { if r.trim() == `${i}` { ok += 1; } }
print(`${replies.len()} replies, ${ok} correct`);
submit(`${ok}/${replies.len()}`);
```""",
}

GIVE_UP = {
    "official-root": '```repl\nanswer["content"] = "NO ANSWER (see the server log)"\nanswer["ready"] = True\n```',
    "rlm-root": '```rhai\nsubmit("NO ANSWER (see the server log)");\n```',
}

LAST_INT = re.compile(r"(\d+)\D*$")


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.models = {}

    def enter(self, model):
        s = self.models.setdefault(model, {"requests": 0, "in_flight": 0, "peak_in_flight": 0})
        s["requests"] += 1
        s["in_flight"] += 1
        s["peak_in_flight"] = max(s["peak_in_flight"], s["in_flight"])

    def leave(self, model):
        if model in self.models:
            self.models[model]["in_flight"] -= 1


def text_of(message):
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def scenario(messages):
    users = " ".join(text_of(m) for m in messages if m.get("role") == "user")
    if "special magic number" in users:
        return "needle"
    if "every record" in users:
        return "batch"
    return None


def completion(text, prompt_tokens, completion_tokens):
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 0,
        "model": "loopback",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


async def answer(body, args):
    """The reply to one chat completion request, after its latency."""
    model = body.get("model", "")
    messages = body.get("messages") or []
    if model in GIVE_UP:
        turn = 1 + sum(1 for m in messages if m.get("role") == "assistant")
        case = scenario(messages)
        text = ROOT_TURNS.get((model, case)) if turn == 1 else None
        if text is None:
            last = text_of(messages[-1]) if messages else ""
            print(
                f"server: {model} turn {turn}, scenario {case}: giving up; last message:\n{last[:2000]}",
                file=sys.stderr,
                flush=True,
            )
            text = GIVE_UP[model]
        if args.root_latency_ms:
            await asyncio.sleep(args.root_latency_ms / 1000)
        return completion(text, 2000, 150)
    prompt = text_of(messages[-1]) if messages else ""
    m = LAST_INT.search(prompt)
    await asyncio.sleep(args.sub_latency_ms / 1000)
    return completion(m.group(1) if m else "ok", len(prompt) // 4 + 1, 2)


async def read_request(reader):
    """(method, path, headers, body), or None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0") or 0)
    try:
        body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return method, path, headers, body


def respond(writer, status, payload, keep_alive):
    data = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Status")
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(data)}\r\nconnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    writer.write(head.encode() + data)


async def serve(reader, writer, args, stats):
    try:
        while True:
            request = await read_request(reader)
            if request is None:
                return
            method, path, headers, body = request
            keep_alive = headers.get("connection", "").lower() != "close"
            if method == "GET" and path.endswith("/stats"):
                respond(writer, 200, stats.models, keep_alive)
            elif method == "POST" and path.endswith("/reset"):
                stats.reset()
                respond(writer, 200, {"reset": True}, keep_alive)
            elif method == "POST" and path.endswith("/chat/completions"):
                try:
                    payload = json.loads(body)
                except ValueError:
                    respond(writer, 400, {"error": {"message": "body is not JSON"}}, keep_alive)
                else:
                    model = payload.get("model", "")
                    stats.enter(model)
                    try:
                        reply = await answer(payload, args)
                    finally:
                        stats.leave(model)
                    respond(writer, 200, reply, keep_alive)
            else:
                respond(writer, 404, {"error": {"message": f"no route {method} {path}"}}, keep_alive)
            await writer.drain()
            if not keep_alive:
                return
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--sub-latency-ms", type=float, default=100.0)
    parser.add_argument("--root-latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    stats = Stats()
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, args, stats), "127.0.0.1", args.port, backlog=1024, limit=1 << 26
    )
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".partial", "w") as f:
            f.write(str(port))
        os.replace(args.port_file + ".partial", args.port_file)
    print(f"server: listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
