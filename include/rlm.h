/*
 * rlm.h: the C API of rlm, a runtime for Recursive Language Models.
 *
 * Link with librlm_capi (shared: -lrlm_capi; static: librlm_capi.a plus
 * -lpthread -ldl -lm). docs/embedding.md is the full guide; in short:
 *
 *   lifecycle   rlm_builder_new (JSON config, the keys of rlm.toml)
 *               -> rlm_builder_on_event / _model / _function (optional)
 *               -> rlm_builder_build (consumes the builder) -> rlm_runner
 *               rlm_context_open / rlm_context_from_buffer -> rlm_context
 *               rlm_run (blocking) -> result JSON; rlm_runner_free,
 *               rlm_context_free.
 *   ownership   every char* this library returns, and every *err it
 *               sets, is the caller's: free it with rlm_string_free.
 *               Every handle has its own _free. Strings passed in are
 *               copied; the library keeps no pointer to them after the
 *               call returns. Strings passed to callbacks are valid only
 *               during the call.
 *   errors      a function that fails returns NULL (handles, strings) or
 *               -1 (int), and, when err is not NULL, sets *err to a
 *               message. A panic inside the library is caught and
 *               returned the same way; nothing unwinds into C.
 *   threading   every function is thread-safe, except that one builder
 *               must not be configured from two threads at once. A runner
 *               and a context may be shared by threads, and rlm_run
 *               called on several at once. rlm_cancel_trigger may be
 *               called from any thread.
 *               Callbacks run on the library's threads (see each typedef).
 *
 * All strings are UTF-8 and NUL-terminated.
 */
#ifndef RLM_H
#define RLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque handles. */
typedef struct rlm_builder rlm_builder; /* a runner being configured */
typedef struct rlm_runner rlm_runner;   /* a configured runtime for runs */
typedef struct rlm_context rlm_context; /* the input a run is asked about */
typedef struct rlm_cancel rlm_cancel;   /* stops a runner's runs */
typedef struct rlm_reply rlm_reply;     /* a callback's answer slot */

/*
 * Receives each run event as one JSON object, exactly a line of the JSONL
 * trace (docs/trace.md): "event", "run", "depth", "t" and its fields.
 * Called from the library's threads, never two at once for one runner.
 * event_json is valid only during the call.
 */
typedef void (*rlm_event_fn)(void *user, const char *event_json);

/*
 * Answers one model call. call_json is
 *   {"model": "...", "kind": "root"|"sub", "depth": 0, "cell": null|N,
 *    "system": null|"...", "messages": [{"role": "user", "content": "..."}],
 *    "max_tokens": null|N, "temperature": null|x}
 * Answer with rlm_reply_text (or rlm_reply_error) on reply, which is
 * valid only during the call. Called from the library's threads, possibly
 * several at once (llm_batch), so the callback must be thread-safe.
 */
typedef void (*rlm_model_fn)(void *user, const char *call_json, rlm_reply *reply);

/*
 * A script function of the host. args_json is a JSON array of the
 * arguments, checked against the declared parameters. Answer with
 * rlm_reply_json (or rlm_reply_error) on reply, valid only during the
 * call. Called on the thread running the script's cell; several runs may
 * call it at once.
 */
typedef void (*rlm_function_fn)(void *user, const char *args_json, rlm_reply *reply);

/* The library's version, e.g. "0.1.0". Static: do not free. */
const char *rlm_version(void);

/* Frees a string the library returned or set in *err. NULL is ignored. */
void rlm_string_free(char *s);

/* ---- contexts ---- */

/*
 * Opens files, directories or globs (as `rlm run` does): files are
 * memory-mapped. NULL with *err set when a path cannot be read.
 */
rlm_context *rlm_context_open(const char *const *paths, size_t count, char **err);

/* A context of one document named name, copied from data[0..len). */
rlm_context *rlm_context_from_buffer(const char *name, const uint8_t *data, size_t len,
                                     char **err);

/* Frees a context. No rlm_run using it may be in progress. */
void rlm_context_free(rlm_context *context);

/* ---- building a runner ---- */

/*
 * A builder from a JSON object with the keys of rlm.toml (docs/config.md),
 * e.g. {"model": "gpt-5", "base_url": "http://127.0.0.1:8000/v1",
 * "budgets": {"max_calls": 50}}. NULL or "" means the defaults. API keys
 * come from the environment, as for the rlm binary.
 */
rlm_builder *rlm_builder_new(const char *config_json, char **err);

/* Sends every run event to callback. At most one per builder. */
int rlm_builder_on_event(rlm_builder *builder, rlm_event_fn callback, void *user, char **err);

/*
 * Answers calls to the model called name (as the config's "model" or
 * "sub_model" names it) with callback, through the run's budgets, retries
 * and events like any provider: no network is used for it.
 */
int rlm_builder_model(rlm_builder *builder, const char *name, rlm_model_fn callback, void *user,
                      char **err);

/*
 * Adds a script function name to every session of the runs. spec_json
 * (may be NULL) declares it for the model's quick reference and argument
 * checks: {"params": [["id", "int"], ["query", "string"]],
 * "returns": "map", "doc": "..."}, types being any, bool, int, float,
 * string, array, map.
 */
int rlm_builder_function(rlm_builder *builder, const char *name, const char *spec_json,
                         rlm_function_fn callback, void *user, char **err);

/*
 * Builds the runner. The builder is consumed, even on failure: do not use
 * or free it afterwards.
 */
rlm_runner *rlm_builder_build(rlm_builder *builder, char **err);

/* Frees a builder that was not built. */
void rlm_builder_free(rlm_builder *builder);

/* ---- running ---- */

/*
 * Answers query about context, blocking the calling thread, and returns
 * the result as JSON (what `rlm run --output json` prints: "answer",
 * "answer_text", "status", "iterations", "usage", "cost_usd", "error",
 * ...). A run that fails or is cancelled still returns a result, with its
 * "status"; NULL (and *err) is for bad arguments and internal errors.
 * Must not be called from inside one of this library's callbacks (nor
 * from a thread of a tokio runtime): it then returns NULL and an error.
 */
char *rlm_run(rlm_runner *runner, const rlm_context *context, const char *query, char **err);

/*
 * A handle that cancels runner's runs from any thread. It stays valid
 * after the runner is freed (it then does nothing). Free with
 * rlm_cancel_free.
 */
rlm_cancel *rlm_runner_cancel_handle(rlm_runner *runner);

/*
 * Stops the runner's runs in progress (their results say "interrupted"),
 * and a run that starts before those end. NULL is ignored.
 */
void rlm_cancel_trigger(const rlm_cancel *cancel);

void rlm_cancel_free(rlm_cancel *cancel);

/* Frees a runner. No run of it may be in progress. */
void rlm_runner_free(rlm_runner *runner);

/* ---- answering callbacks ---- */

/*
 * A model's answer: its text and the tokens to count for it. The text is
 * copied. Returns -1 when reply or text is NULL or text is not UTF-8.
 */
int rlm_reply_text(rlm_reply *reply, const char *text, uint64_t input_tokens,
                   uint64_t output_tokens);

/*
 * A host function's result, as JSON ("42", "\"text\"", "{\"a\": 1}").
 * Returns -1, and the call fails, when it is not valid JSON.
 */
int rlm_reply_json(rlm_reply *reply, const char *json);

/*
 * The call failed with message; the script sees an error naming the
 * function, or the model call fails (and is not retried).
 */
int rlm_reply_error(rlm_reply *reply, const char *message);

#ifdef __cplusplus
}
#endif

#endif /* RLM_H */
