/*
 * ask_file: answers a question about a file with rlm, printing each run
 * event as it happens and then the result.
 *
 *   cc -std=c99 -Wall -I include examples/c/ask_file.c -L target/debug -lrlm_capi \
 *      -Wl,-rpath,target/debug -o ask_file
 *   ./ask_file http://127.0.0.1:8000/v1 gpt-5 app.log "How many errors are logged?"
 *
 * The base URL is any OpenAI-compatible server (vLLM, llama.cpp, Ollama;
 * capi/tests/examples.rs runs it against a loopback one). Exits 0 when the
 * model submitted an answer, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "rlm.h"

static void print_event(void *user, const char *event_json) {
    int *events = user; /* called one at a time, so no lock is needed */
    ++*events;
    printf("event %s\n", event_json);
    fflush(stdout);
}

static int fail(const char *what, char *err) {
    fprintf(stderr, "ask_file: %s: %s\n", what, err ? err : "(no message)");
    rlm_string_free(err);
    return 2;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s BASE_URL MODEL FILE QUESTION\n", argv[0]);
        return 2;
    }
    char config[1024];
    /* The URL and model name are the caller's; a real program would escape them for JSON. */
    snprintf(config, sizeof config,
             "{\"model\": \"%s\", \"base_url\": \"%s\", \"budgets\": {\"max_calls\": 20}}",
             argv[2], argv[1]);

    char *err = NULL;
    const char *paths[] = {argv[3]};
    rlm_context *context = rlm_context_open(paths, 1, &err);
    if (!context) return fail("opening the file", err);

    rlm_builder *builder = rlm_builder_new(config, &err);
    if (!builder) {
        rlm_context_free(context);
        return fail("reading the config", err);
    }
    int events = 0;
    if (rlm_builder_on_event(builder, print_event, &events, &err) != 0) {
        rlm_builder_free(builder);
        rlm_context_free(context);
        return fail("setting the event callback", err);
    }
    rlm_runner *runner = rlm_builder_build(builder, &err); /* consumes builder */
    if (!runner) {
        rlm_context_free(context);
        return fail("building the runner", err);
    }

    char *result = rlm_run(runner, context, argv[4], &err);
    int code = 1;
    if (result) {
        printf("result %s\n", result);
        printf("events seen: %d\n", events);
        code = strstr(result, "\"status\":\"submitted\"") ? 0 : 1;
        rlm_string_free(result);
    } else {
        code = fail("running", err);
    }
    rlm_runner_free(runner);
    rlm_context_free(context);
    return code;
}
