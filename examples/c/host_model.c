/*
 * host_model: a run whose model is this program's own callback, with no
 * network at all, and a host function the model's script calls.
 *
 *   cc -std=c99 -Wall -I include examples/c/host_model.c -L target/debug -lrlm_capi \
 *      -Wl,-rpath,target/debug -o host_model
 *   ./host_model
 *
 * The "model" plays both parts: on a root turn it writes a script that
 * calls the host function price_of() and a sub-model through llm_query();
 * on a sub-call it answers "4". A host would call its own HTTP stack or a
 * local model here. capi/tests/examples.rs runs it, also under valgrind.
 */
#include <stdio.h>
#include <string.h>

#include "rlm.h"

static const char *ROOT_TURN =
    "```rhai\n"
    "let price = price_of(\"apple\");\n"
    "let sum = llm_query(\"What is 2 + 2? Answer with the number.\");\n"
    "submit(#{price: price, sum: sum.trim(), lines: context.line_count()});\n"
    "```";

/* Called from rlm's threads, maybe several at once: it keeps no state. */
static void my_model(void *user, const char *call_json, rlm_reply *reply) {
    (void)user;
    if (strstr(call_json, "\"kind\":\"root\"")) {
        rlm_reply_text(reply, ROOT_TURN, 120, 40);
    } else {
        rlm_reply_text(reply, "4", 12, 1);
    }
}

/* price_of(item: string) -> int; args_json is a JSON array such as ["apple"]. */
static void price_of(void *user, const char *args_json, rlm_reply *reply) {
    (void)user;
    if (strstr(args_json, "\"apple\"")) {
        rlm_reply_json(reply, "3");
    } else {
        rlm_reply_error(reply, "no price for that item");
    }
}

static void print_event(void *user, const char *event_json) {
    (void)user;
    printf("event %s\n", event_json);
}

static int check(int ok, const char *what, char *err) {
    if (!ok) {
        fprintf(stderr, "host_model: %s: %s\n", what, err ? err : "(no message)");
        rlm_string_free(err);
    }
    return ok;
}

int main(void) {
    char *err = NULL;
    const char text[] = "apples 3\npears 5\n";
    rlm_context *context = rlm_context_from_buffer("prices.txt", (const uint8_t *)text,
                                                   strlen(text), &err);
    if (!check(context != NULL, "making the context", err)) return 2;

    /* "in-house" is not a provider rlm knows: the callback answers it. */
    rlm_builder *builder = rlm_builder_new("{\"model\": \"in-house\"}", &err);
    if (!check(builder != NULL, "reading the config", err)) {
        rlm_context_free(context);
        return 2;
    }
    int ok = check(rlm_builder_model(builder, "in-house", my_model, NULL, &err) == 0,
                   "registering the model", err) &&
             check(rlm_builder_function(builder, "price_of",
                                        "{\"params\": [[\"item\", \"string\"]], \"returns\": "
                                        "\"int\", \"doc\": \"The price of an item, in cents.\"}",
                                        price_of, NULL, &err) == 0,
                   "registering price_of", err) &&
             check(rlm_builder_on_event(builder, print_event, NULL, &err) == 0,
                   "setting the event callback", err);
    if (!ok) {
        rlm_builder_free(builder);
        rlm_context_free(context);
        return 2;
    }
    rlm_runner *runner = rlm_builder_build(builder, &err);
    if (!check(runner != NULL, "building the runner", err)) {
        rlm_context_free(context);
        return 2;
    }
    char *result = rlm_run(runner, context, "What does an apple cost, and what is 2 + 2?", &err);
    int code = 1;
    if (check(result != NULL, "running", err)) {
        printf("result %s\n", result);
        code = strstr(result, "\"status\":\"submitted\"") ? 0 : 1;
        rlm_string_free(result);
    }
    rlm_runner_free(runner);
    rlm_context_free(context);
    return code;
}
