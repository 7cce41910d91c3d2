"""Runs the official RLM (PyPI `rlms`) once, the way its README does, and
prints one JSON line: the answer, how long reading the file and the
completion took, and the sub-calls per model.

    python official_run.py --base-url URL --context FILE --query Q [--batch-concurrency N]

The context is read into one `str` and passed as the prompt, with the
question as `root_prompt`: `rlms` takes the context as a Python value (its
LocalREPL writes it to a temp file and reads it back into the REPL
namespace as `context`), and has no option to map or stream a file.

`llm_query_batched` runs its prompts under an asyncio semaphore of
`LMHandler.batch_max_concurrent`, which `RLM` never sets, so it is always
the default of 16. `--batch-concurrency` other than 16 patches that default
before the run; the result is marked as patched.
"""

import argparse
import json
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--context", required=True)
    p.add_argument("--query", required=True)
    p.add_argument("--batch-concurrency", type=int, default=16)
    args = p.parse_args()

    started = time.perf_counter()
    import rlm
    from rlm.core import lm_handler

    patched = False
    if args.batch_concurrency != 16:
        defaults = list(lm_handler.LMHandler.__init__.__defaults__)
        # (host, port, other_backend_client, batch_max_concurrent)
        defaults[-1] = args.batch_concurrency
        lm_handler.LMHandler.__init__.__defaults__ = tuple(defaults)
        patched = True
    imported = time.perf_counter()

    with open(args.context, encoding="utf-8") as f:
        context = f.read()
    read = time.perf_counter()

    backend = {"model_name": "official-root", "base_url": args.base_url, "api_key": "loopback"}
    sub = {"model_name": "official-sub", "base_url": args.base_url, "api_key": "loopback"}
    r = rlm.RLM(
        backend="openai",
        backend_kwargs=backend,
        other_backends=["openai"],
        other_backend_kwargs=[sub],
        environment="local",
        max_iterations=5,
    )
    result = r.completion(context, root_prompt=args.query)
    done = time.perf_counter()
    usage = {
        model: s.total_calls for model, s in result.usage_summary.model_usage_summaries.items()
    }
    print(
        json.dumps(
            {
                "answer": str(result.response).strip(),
                "import_s": round(imported - started, 3),
                "read_s": round(read - imported, 3),
                "completion_s": round(done - read, 3),
                "calls": usage,
                "batch_concurrency": lm_handler.LMHandler.__init__.__defaults__[-1],
                "patched": patched,
                "rlms_version": _version(),
            }
        )
    )


def _version():
    from importlib.metadata import version

    return version("rlms")


if __name__ == "__main__":
    main()
