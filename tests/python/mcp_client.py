"""Drives `rlm mcp` with the official MCP Python SDK, as an editor would.

Started by tests/serve_mcp.rs, which passes in the environment:
RLM_BIN (the binary), RLM_ROOT (the --root directory), RLM_MODEL_URL (the
scripted loopback model), RLM_OUTSIDE (a file outside the root) and
RLM_TRACES (the --trace-dir). Every check raises on failure; the last line
printed is a JSON summary the Rust side checks too.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters, stdio_client

TOOLS = {"rlm_answer", "context_open", "rhai_run", "context_search", "context_close"}


def check(condition, what, value=None):
    if not condition:
        raise AssertionError(f"{what}: {value!r}")


def body(result):
    """The structured result of a tool call (also sent as its text)."""
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


async def main():
    root = os.environ["RLM_ROOT"]
    outside = os.environ["RLM_OUTSIDE"]
    params = StdioServerParameters(
        command=os.environ["RLM_BIN"],
        args=[
            "mcp",
            "--root", root,
            "--model", "gpt-5",
            "--sub-model", "gpt-5-mini",
            "--base-url", os.environ["RLM_MODEL_URL"],
            "--trace-dir", os.environ["RLM_TRACES"],
            "--cell-timeout", "20",
            "--max-operations", "5000000",
            "--session-memory", "64M",
        ],
        cwd=root,
    )
    summary = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check(init.server_info.name == "rlm", "server name", init.server_info)
            check("rhai_run" in (init.instructions or ""), "instructions name the tools", init.instructions)

            # The tools, with schemas a client model can follow.
            tools = {t.name: t for t in (await session.list_tools()).tools}
            check(set(tools) == TOOLS, "tool names", sorted(tools))
            for name, tool in tools.items():
                check(len(tool.description or "") > 40, f"{name} has a description", tool.description)
                check(tool.input_schema.get("type") == "object", f"{name} schema", tool.input_schema)
            check(set(tools["rlm_answer"].input_schema["required"]) == {"question", "paths"},
                  "rlm_answer requires question and paths", tools["rlm_answer"].input_schema)
            check(set(tools["rhai_run"].input_schema["required"]) == {"id", "code"},
                  "rhai_run requires id and code", tools["rhai_run"].input_schema)
            props = tools["rlm_answer"].input_schema["properties"]
            check("description" in props["question"], "fields are described", props)
            summary["tools"] = sorted(tools)

            # rlm_answer: a whole run, with progress on the way.
            progress = []

            async def on_progress(value, total, message):
                progress.append((value, message))

            result = await session.call_tool(
                "rlm_answer",
                {"question": "How many errors, and what is 2 + 2?", "paths": ["notes.txt", "sub"]},
                progress_callback=on_progress,
            )
            answer = body(result)
            check(not result.is_error, "rlm_answer succeeded", answer)
            check(answer["answer"] == "errors: 3, sub: 4", "the run's answer", answer)
            check(answer["status"] == "submitted", "status", answer)
            check(answer["iterations"] == 2, "two root turns", answer)
            check(answer["totals"]["calls"] == 3, "two root calls and one sub-call", answer)
            check(set(answer["usage"]) == {"gpt-5", "gpt-5-mini"}, "usage by model", answer["usage"])
            check("cost_usd" in answer, "cost is reported", answer)
            check(answer["trace"] and os.path.isfile(answer["trace"]), "the trace exists", answer["trace"])
            check(len(progress) >= 4, "progress notifications arrived", progress)
            values = [v for v, _ in progress]
            check(values == sorted(values) and len(set(values)) == len(values), "progress increases", values)
            messages = [m for _, m in progress]
            check(any("turn 1" in m for m in messages), "progress names the turns", messages)
            check(any("answer is ready" in m for m in messages), "progress ends with the answer", messages)
            summary["progress"] = messages
            summary["trace"] = answer["trace"]

            # The aleph pattern: the client's model drives a session.
            opened = await session.call_tool("context_open", {"paths": ["notes.txt", "sub"]})
            info = body(opened)
            check(not opened.is_error, "context_open", info)
            cid = info["id"]
            check(info["summary"]["documents"] == 2, "two documents", info)
            names = sorted(d["name"] for d in info["summary"]["listed"])
            check(any(n.endswith("notes.txt") for n in names), "documents are named", names)
            check(info["limits"]["max_memory_bytes"] == 64 << 20, "limits are reported", info["limits"])

            ran = body(await session.call_tool("rhai_run", {"id": cid, "code": 'let n = context.grep("ERROR").len(); print(n);'}))
            check(ran["output"] == "3\n" and ran["error"] is None, "a cell runs", ran)
            ran = body(await session.call_tool("rhai_run", {"id": cid, "code": "print(n + 1);"}))
            check(ran["output"] == "4\n", "variables persist between calls", ran)

            # Errors carry position and a hint in Rhai terms, as in rlm run.
            bad = await session.call_tool("rhai_run", {"id": cid, "code": "for i in range(3):\n    print(i)"})
            err = body(bad)
            check(bad.is_error and err["error"], "a Python-like cell fails", err)
            check("line 1" in err["error"] or "1:" in err["error"], "the error has a position", err["error"])
            summary["python_like_error"] = err["error"]

            found = await session.call_tool("context_search", {"id": cid, "pattern": "error", "options": {"case_insensitive": True, "before": 1}})
            hits = body(found)
            check(not found.is_error and hits["count"] == 4, "search finds every error line", hits)
            first = hits["hits"][0]
            check(first["document"].endswith("notes.txt") and "context" in first, "hits name their document", first)
            line = body(await session.call_tool("rhai_run", {"id": cid, "code": f"print(context.line({first['line']}));"}))
            check(line["output"].strip() == first["text"], "a hit's line is the script's line", (line, first))
            bad_regex = await session.call_tool("context_search", {"id": cid, "pattern": "("})
            check(bad_regex.is_error, "a bad regex is a tool error", body(bad_regex))

            # Hostile scripts stop at their limits and the session lives on.
            loop = await session.call_tool("rhai_run", {"id": cid, "code": "let i = 0; loop { i += 1; }"})
            check(loop.is_error, "an infinite loop is stopped", body(loop))
            summary["loop_error"] = body(loop)["error"]
            bomb = await session.call_tool("rhai_run", {"id": cid, "code": 'let s = "xxxxxxxxxxxxxxxx"; loop { s += s; }'})
            check(bomb.is_error, "a doubling string is stopped", body(bomb))
            summary["string_bomb_error"] = body(bomb)["error"]
            arrays = await session.call_tool("rhai_run", {"id": cid, "code": 'let a = []; let s = "y"; s.pad(60000, "y"); loop { a.push(s + a.len()); }'})
            check(arrays.is_error, "an array of large strings is stopped", body(arrays))
            summary["memory_bomb_error"] = body(arrays)["error"]
            after = body(await session.call_tool("rhai_run", {"id": cid, "code": "print(n);"}))
            check(after["output"] == "3\n", "the session survives its hostile cells", after)

            # Paths out of the root are refused, whatever the spelling.
            refusals = {}
            for label, path in [
                ("parent", "../secret.txt"),
                ("nested_parent", "sub/../../secret.txt"),
                ("absolute", outside),
                ("symlink", "leak.txt"),
                ("symlinked_dir", "up/secret.txt"),
                ("system", "/etc/passwd"),
            ]:
                for tool, args in [
                    ("context_open", {"paths": [path]}),
                    ("rlm_answer", {"question": "What is in it?", "paths": [path]}),
                ]:
                    r = await session.call_tool(tool, args)
                    text = json.dumps(body(r))
                    check(r.is_error, f"{tool} refuses {label} {path}", text)
                    check("TOP-SECRET" not in text, f"{tool} reveals nothing of {label}", text)
                    refusals[f"{tool}:{label}"] = body(r)["error"]
            summary["refusals"] = refusals

            closed = body(await session.call_tool("context_close", {"id": cid}))
            check(closed["closed"] is True, "context_close", closed)
            gone = await session.call_tool("rhai_run", {"id": cid, "code": "print(1);"})
            check(gone.is_error and "context_open" in body(gone)["error"], "a closed id is refused", body(gone))
            again = body(await session.call_tool("context_close", {"id": cid}))
            check(again["closed"] is False, "closing twice says so", again)
    print(json.dumps(summary))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
