"""rlm from Python through the standard library's ctypes alone: the
header (include/rlm.h) is all a language with a C FFI needs.

    python3 examples/c/ctypes_demo.py target/debug/librlm_capi.so

The model is a Python callback (no network): on a root turn it writes a
script that calls the host function shout() and submits; every event of
the run is collected. Prints the answer and the events' names.
"""

import ctypes
import json
import sys

lib = ctypes.CDLL(sys.argv[1] if len(sys.argv) > 1 else "librlm_capi.so")

# Opaque handles are void pointers; char* the library returns is kept as
# c_void_p (not c_char_p, which would copy it and lose the pointer to free).
P = ctypes.c_void_p
ERR = ctypes.POINTER(ctypes.c_void_p)
EVENT_FN = ctypes.CFUNCTYPE(None, P, ctypes.c_char_p)
REPLY_FN = ctypes.CFUNCTYPE(None, P, ctypes.c_char_p, P)

for name, res, args in [
    ("rlm_version", ctypes.c_char_p, []),
    ("rlm_string_free", None, [P]),
    ("rlm_context_from_buffer", P, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ERR]),
    ("rlm_context_free", None, [P]),
    ("rlm_builder_new", P, [ctypes.c_char_p, ERR]),
    ("rlm_builder_on_event", ctypes.c_int, [P, EVENT_FN, P, ERR]),
    ("rlm_builder_model", ctypes.c_int, [P, ctypes.c_char_p, REPLY_FN, P, ERR]),
    ("rlm_builder_function", ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_char_p, REPLY_FN, P, ERR]),
    ("rlm_builder_build", P, [P, ERR]),
    ("rlm_run", P, [P, P, ctypes.c_char_p, ERR]),
    ("rlm_runner_free", None, [P]),
    ("rlm_reply_text", ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_uint64, ctypes.c_uint64]),
    ("rlm_reply_json", ctypes.c_int, [P, ctypes.c_char_p]),
]:
    f = getattr(lib, name)
    f.restype, f.argtypes = res, args


class RlmError(Exception):
    pass


def take_string(ptr):
    """A char* the library returned, as str, freed."""
    try:
        return ctypes.string_at(ptr).decode()
    finally:
        lib.rlm_string_free(ptr)


def checked(value, err, failed):
    if value == failed:
        raise RlmError(take_string(err.value) if err.value else "unknown error")
    return value


events = []


@EVENT_FN
def on_event(user, event_json):
    events.append(json.loads(event_json))


@REPLY_FN
def model(user, call_json, reply):
    call = json.loads(call_json)
    if call["kind"] == "root":
        text = "```rhai\nsubmit(shout(context.lines()[0]));\n```"
    else:
        text = "unused"
    lib.rlm_reply_text(reply, text.encode(), 50, 10)


@REPLY_FN
def shout(user, args_json, reply):
    (line,) = json.loads(args_json)
    lib.rlm_reply_json(reply, json.dumps(line.upper() + "!").encode())


def main():
    err = ctypes.c_void_p()
    data = b"hello from python\nsecond line\n"
    ctx = checked(lib.rlm_context_from_buffer(b"greeting.txt", data, len(data), ctypes.byref(err)), err, None)
    builder = checked(lib.rlm_builder_new(b'{"model": "py-model"}', ctypes.byref(err)), err, None)
    checked(lib.rlm_builder_model(builder, b"py-model", model, None, ctypes.byref(err)), err, -1)
    spec = json.dumps({"params": [["text", "string"]], "returns": "string", "doc": "The text, loud."})
    checked(lib.rlm_builder_function(builder, b"shout", spec.encode(), shout, None, ctypes.byref(err)), err, -1)
    checked(lib.rlm_builder_on_event(builder, on_event, None, ctypes.byref(err)), err, -1)
    runner = checked(lib.rlm_builder_build(builder, ctypes.byref(err)), err, None)
    try:
        result = json.loads(take_string(checked(
            lib.rlm_run(runner, ctx, b"Shout the first line.", ctypes.byref(err)), err, None)))
    finally:
        lib.rlm_runner_free(runner)
        lib.rlm_context_free(ctx)
    print("rlm", lib.rlm_version().decode())
    print("status", result["status"])
    print("answer", result["answer"])
    print("events", " ".join(e["event"] for e in events))
    return 0 if result["status"] == "submitted" else 1


if __name__ == "__main__":
    sys.exit(main())
