"""Drives `rlm serve` with the official OpenAI Python client, as code
written against the OpenAI SDK would.

Started by tests/serve_openai.rs with RLM_SERVE_URL (the server's /v1 URL)
and RLM_SERVE_TOKEN (its bearer token) in the environment. The scripted
model's root counts the lines with "FAIL:" in the context and asks the
sub-model once, so the right answer to a message with k such lines is
"k failures, sub says 4". Every check raises on failure; the last line
printed is a JSON summary the Rust side checks too.
"""

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request

import openai

URL = os.environ["RLM_SERVE_URL"]
TOKEN = os.environ["RLM_SERVE_TOKEN"]
MODEL = "rlm/gpt-5"


def check(condition, what, value=None):
    if not condition:
        raise AssertionError(f"{what}: {value!r}")


def message(k, tag):
    lines = [f"Request {tag}: how many failures are there?"]
    for i in range(12):
        lines.append(f"FAIL: case {i}" if i < k else f"ok: case {i}")
    return "\n".join(lines) + "\n"


def raw(path, body, token=TOKEN, content_type="application/json"):
    """A request the client library would not send: status and JSON body."""
    req = urllib.request.Request(URL + path, data=body, method="POST")
    req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def error_body(status, body, expected, what):
    check(status == expected, f"{what}: status", (status, body))
    err = body.get("error")
    check(isinstance(err, dict), f"{what}: an OpenAI error body", body)
    check(set(err) == {"message", "type", "param", "code"}, f"{what}: error fields", err)
    check(err["message"], f"{what}: a message", err)
    return err


def main():
    summary = {}
    client = openai.OpenAI(base_url=URL, api_key=TOKEN, max_retries=0, timeout=120)

    models = client.models.list()
    ids = [m.id for m in models.data]
    check(MODEL in ids and "rlm/other-root" in ids, "the model pairs are listed", ids)
    check(all(m.object == "model" and m.owned_by == "rlm" for m in models.data), "model entries", models.data)
    summary["models"] = ids

    # Plain: the message is the context.
    done = client.chat.completions.create(model=MODEL, messages=[
        {"role": "system", "content": "You answer questions."},
        {"role": "user", "content": message(3, "plain")},
    ])
    check(done.object == "chat.completion", "object", done.object)
    check(done.choices[0].message.role == "assistant", "role", done.choices[0].message)
    check(done.choices[0].message.content == "3 failures, sub says 4", "the answer", done.choices[0].message.content)
    check(done.choices[0].finish_reason == "stop", "finish_reason", done.choices[0].finish_reason)
    check(done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0, "usage", done.usage)
    check(done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens, "total", done.usage)
    rlm = done.model_extra["rlm"]
    check(rlm["status"] == "submitted" and rlm["iterations"] == 2, "the run report", rlm)
    summary["plain_usage"] = done.usage.model_dump()

    # Files under the root, named in the extension field.
    files = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "How many failures are in the log?"}],
        extra_body={"rlm": {"paths": ["logs/run.log"]}},
    )
    check(files.choices[0].message.content == "5 failures, sub says 4", "the files' answer", files.choices[0].message.content)
    for path, status in [("../secret.txt", 403), ("leak.txt", 403), ("missing.txt", 404)]:
        try:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "what?"}],
                                           extra_body={"rlm": {"paths": [path]}})
            raise AssertionError(f"{path} was read")
        except openai.APIStatusError as e:
            check(e.status_code == status, f"{path} is refused", (e.status_code, e.body))
            check("TOP-SECRET" not in json.dumps(e.body), f"{path} reveals nothing", e.body)

    # A per-request budget stops the run, and says so.
    try:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": message(2, "budget")}],
                                       extra_body={"rlm": {"max_llm_calls": 1}})
        raise AssertionError("a one-call budget answered")
    except openai.UnprocessableEntityError as e:
        check(e.body["code"] == "rlm_max_llm_calls", "the budget names itself", e.body)
        summary["budget_error"] = e.body["message"]

    # Streaming: progress, then the answer, then usage, as chunks.
    chunks = list(client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": message(7, "stream")}],
        stream=True,
        stream_options={"include_usage": True},
    ))
    check(all(c.object == "chat.completion.chunk" for c in chunks), "chunk objects", chunks)
    check(chunks[0].choices[0].delta.role == "assistant", "the first chunk gives the role", chunks[0])
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(content == "7 failures, sub says 4", "the streamed answer", content)
    progress = [c.choices[0].delta.model_extra.get("reasoning_content") for c in chunks if c.choices]
    progress = [p for p in progress if p]
    check(any("turn 1" in p for p in progress), "progress chunks", progress)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    check(finishes == ["stop"], "one finish_reason", finishes)
    check(chunks[-1].usage is not None and chunks[-1].choices == [], "a last usage chunk", chunks[-1])
    check(chunks[-1].usage.total_tokens > 0, "streamed usage", chunks[-1].usage)
    check(len({c.id for c in chunks}) == 1, "one id for the stream", {c.id for c in chunks})
    summary["stream_chunks"] = len(chunks)
    summary["stream_progress"] = progress

    # Fifty at once, each with its own context and answer.
    async def many():
        aclient = openai.AsyncOpenAI(base_url=URL, api_key=TOKEN, max_retries=0, timeout=300)
        async def one(i):
            k = i % 11
            r = await aclient.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": message(k, f"c{i}")}])
            return r.choices[0].message.content == f"{k} failures, sub says 4"
        results = await asyncio.gather(*(one(i) for i in range(50)))
        await aclient.close()
        return results
    right = asyncio.run(many())
    check(all(right), "all fifty concurrent answers are right", right.count(False))
    summary["concurrent_right"] = sum(right)

    # Auth: no token, a wrong one.
    for key in ["wrong-token"]:
        try:
            openai.OpenAI(base_url=URL, api_key=key, max_retries=0).models.list()
            raise AssertionError("a wrong token was let in")
        except openai.AuthenticationError as e:
            check(e.status_code == 401, "401 for a wrong token", e.status_code)
    status, body = raw("/chat/completions", b'{"model": "rlm/gpt-5", "messages": []}', token=None)
    error_body(status, body, 401, "no token")
    summary["auth"] = body["error"]["code"]

    # Bad requests: 4xx with an OpenAI error body, and the server goes on.
    status, body = raw("/chat/completions", b'{"model": "rlm/gpt-5", "messages": [')
    err = error_body(status, body, 400, "malformed JSON")
    check(err["type"] == "invalid_request_error", "malformed JSON type", err)
    status, body = raw("/chat/completions", b'{"model": "rlm/gpt-5"}')
    err = error_body(status, body, 400, "missing messages")
    check("messages" in err["message"], "the missing field is named", err)
    status, body = raw("/chat/completions", json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode())
    err = error_body(status, body, 400, "missing model")
    check("model" in err["message"], "the missing model is named", err)
    status, body = raw("/chat/completions", json.dumps({"model": MODEL, "messages": [{"role": "system", "content": "x"}]}).encode())
    error_body(status, body, 400, "no user message")
    big = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x" * 200_000}]}).encode()
    status, body = raw("/chat/completions", big)
    err = error_body(status, body, 413, "an oversized body")
    check(err["code"] == "request_too_large", "oversized code", err)
    try:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("an unknown model answered")
    except openai.NotFoundError as e:
        check(e.body["code"] == "model_not_found" and e.body["param"] == "model", "unknown model", e.body)
    status, body = raw("/nowhere", b"{}")
    error_body(status, body, 404, "an unknown path")

    still = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": message(1, "after")}])
    check(still.choices[0].message.content == "1 failures, sub says 4", "the server keeps serving", still.choices[0].message.content)
    print(json.dumps(summary))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
