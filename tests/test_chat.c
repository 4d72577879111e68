/*
 * tests/test_chat.c - the chat templates to the character (tokenizer/chat.h), their
 * encoding (BOS, and "</s>" as the EOS id), and the program choosing them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/commands/generate.h"
#include "tests/test.h"
#include "tokenizer/chat.h"

#define ARGS(...) ((const char *const[]){"run", __VA_ARGS__, NULL})

/* The template's first turn with and without a system prompt, and a later turn, exactly. */
static void expect_renders(ChatTemplate t, const char *first, const char *plain, const char *later) {
    const char *const want[3] = {first, plain, later};
    char *got[3] = {chat_render_turn(t, "Be brief.", "Tell me a story.", 1), chat_render_turn(t, "", "Hello", 1),
                    chat_render_turn(t, "Be brief.", "Another one.", 0)};
    for (int i = 0; i < 3; i++) {
        CHECKF(got[i] && !strcmp(got[i], want[i]), "%s turn %d: got '%s', want '%s'", chat_template_name(t), i,
               got[i], want[i]);
        free(got[i]);
    }
}

/* Llama-2: Meta's reference code and llama2.c render it so. */
static void test_llama2_template(void) {
    expect_renders(CHAT_LLAMA2, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nTell me a story. [/INST]",
                   "[INST] Hello [/INST]", "[INST] Another one. [/INST]");
}

/* Zephyr, as TinyLlama-1.1B-Chat-v1.0's tokenizer_config.json renders it with
 * add_generation_prompt; a later turn first closes the answer the model ended with EOS. */
static void test_zephyr_template(void) {
    expect_renders(CHAT_ZEPHYR, "<|system|>\nBe brief.</s>\n<|user|>\nTell me a story.</s>\n<|assistant|>\n",
                   "<|user|>\nHello</s>\n<|assistant|>\n", "</s>\n<|user|>\nAnother one.</s>\n<|assistant|>\n");
}

static void test_chatml_template(void) {
    expect_renders(CHAT_CHATML,
                   "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nTell me a story.<|im_end|>\n"
                   "<|im_start|>assistant\n",
                   "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
                   "<|im_end|>\n<|im_start|>user\nAnother one.<|im_end|>\n<|im_start|>assistant\n");
}

static void test_template_names(void) {
    ChatTemplate t = CHAT_CHATML;
    const char *const names[] = {"llama2", "zephyr", "chatml"};
    for (int i = 0; i < 3; i++)
        CHECK(chat_template_parse(names[i], &t) == 0 && t == (ChatTemplate)i && !strcmp(chat_template_name(t), names[i]));
    CHECK(chat_template_parse("vicuna", &t) == -1 && chat_template_parse("", &t) == -1);
}

/* BOS starts Llama-2's every turn and the others' first; "</s>" becomes the EOS id given
 * (not the 4 characters), and the text between is what the tokenizer makes of it. */
static void test_chat_encode(void) {
    char err[256] = "";
    Tokenizer *tok = tokenizer_open("models/tok512.model", err, sizeof err);
    if (!CHECKF(tok != NULL, "%s", err)) return;
    int *ids = NULL, *plain = NULL;
    const int n = chat_encode(CHAT_ZEPHYR, tok, "<|user|>\nHi</s>\n<|assistant|>\n", 1, 77, &ids, err, sizeof err);
    const int n_user = tokenizer_encode(tok, "<|user|>\nHi", &plain, err, sizeof err);
    CHECKF(n > n_user && ids[0] == 1 && !memcmp(ids + 1, plain + 1, (size_t)(n_user - 1) * sizeof *ids) &&
           ids[n_user] == 77, "zephyr: %d ids, EOS at %d is %d", n, n_user, n > n_user ? ids[n_user] : -1);
    free(ids), free(plain);
    CHECK(chat_encode(CHAT_ZEPHYR, tok, "</s>\n<|user|>\nHi", 0, 2, &ids, err, sizeof err) > 1 && ids[0] == 2);
    free(ids);
    CHECK(chat_encode(CHAT_LLAMA2, tok, "[INST] Hi [/INST]", 0, 2, &ids, err, sizeof err) > 1 && ids[0] == 1);
    free(ids);
    CHECK(chat_encode(CHAT_CHATML, tok, "<|im_end|>\nHi", 0, 2, &ids, err, sizeof err) > 1 && ids[0] != 1);
    free(ids);
    tokenizer_free(tok);
}

/* The program encodes the chosen template's text: its prompt is as many tokens as
 * chat_encode gives for it. */
static void test_program_uses_the_template(void) {
    char err[256] = "";
    Tokenizer *tok = tokenizer_open("models/tok512.model", err, sizeof err);
    if (!CHECKF(tok != NULL, "%s", err)) return;
    const char *const names[] = {"llama2", "zephyr", "chatml"};
    for (int i = 0; i < 3; i++) {
        char *text = chat_render_turn((ChatTemplate)i, "Be brief.", "Tell me a story.", 1);
        int *ids = NULL;
        const int n = text ? chat_encode((ChatTemplate)i, tok, text, 1, 2, &ids, err, sizeof err) : -1;
        RunResult r = test_run_program(ARGS("models/stories260K.bin", "-m", "chat", "--chat-template", names[i], "-t",
                                            "0", "-n", "200", "-y", "Be brief."), "Tell me a story.\n", NULL);
        char want[64];
        snprintf(want, sizeof want, "(prompt: %d tokens", n);
        CHECKF(r.status == 0 && n > 10 && r.err && strstr(r.err, want) && r.out && strstr(r.out, "Assistant: "),
               "%s: expected '%s' in: %s", names[i], want, r.err);
        run_result_free(&r);
        free(ids), free(text);
    }
    tokenizer_free(tok);
    RunResult r = test_run_program(ARGS("models/stories260K.bin", "-m", "chat", "--chat-template", "vicuna"), "", NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "error: unknown chat template 'vicuna'") &&
           strstr(r.err, "llama2, zephyr or chatml"), "%s", r.err);
    run_result_free(&r);
}

/* A message is one line of at most CHAT_MAX_MESSAGE bytes: a longer one is refused as it
 * is read (never held whole: a 10 MB line costs no memory) and the chat goes on; -y and -i
 * are held to the same. */
static void test_program_caps_a_message(void) {
    const size_t big = 10u << 20;
    char *input = malloc(big + 64);
    if (!CHECK(input != NULL)) return;
    memset(input, 'a', big);
    snprintf(input + big, 64, "\nTell me a story.\n");
    const char *const *argv = ARGS("models/stories260K.bin", "-m", "chat", "-t", "0", "-n", "200", "-y", "Be brief.");
    RunResult small = test_run_program(argv, input + big + 1, NULL), r = test_run_program(argv, input, NULL);
    const char *answer = r.out ? strstr(r.out, "Assistant: ") : NULL;
    CHECKF(r.status == 0 && strstr(r.err, "(not sent: a message is at most 64 KiB)") && answer &&
               !strstr(answer + 1, "Assistant: ") && r.max_rss_mb < small.max_rss_mb + 64,
           "exit %d, %.0f MiB (%.0f without the long line), stderr: %s", r.status, r.max_rss_mb, small.max_rss_mb,
           r.err);
    run_result_free(&r);
    run_result_free(&small);
    /* At the limit, a message is sent (and then too long for this context); a byte more is not. */
    for (int extra = 0; extra <= 1; extra++) {
        memset(input, 'a', CHAT_MAX_MESSAGE + extra);
        snprintf(input + CHAT_MAX_MESSAGE + extra, 64, "\n");
        r = test_run_program(ARGS("models/stories260K.bin", "-m", "chat", "-y", ""), input, NULL);
        CHECKF(r.status == 0 && (extra ? strstr(r.err, "(not sent") != NULL : strstr(r.err, "context limit") != NULL),
               "%d bytes: exit %d, %s", CHAT_MAX_MESSAGE + extra, r.status, r.err);
        run_result_free(&r);
    }
    memset(input, 'a', CHAT_MAX_MESSAGE + 1);
    input[CHAT_MAX_MESSAGE + 1] = '\0';
    r = test_run_program(ARGS("models/stories260K.bin", "-m", "chat", "-y", input), "", NULL);
    CHECKF(r.status == 1 && strstr(r.err, "error: the system prompt (-y) is 65537 bytes; a chat message is at most 64 KiB"),
           "exit %d, %s", r.status, r.err);
    run_result_free(&r);
    r = test_run_program(ARGS("models/stories260K.bin", "-m", "chat", "-i", input, "-y", ""), "", NULL);
    CHECKF(r.status == 1 && strstr(r.err, "error: the first message (-i) is 65537 bytes"), "exit %d, %s", r.status, r.err);
    run_result_free(&r);
    input[CHAT_MAX_MESSAGE + 1] = '\n';
    input[CHAT_MAX_MESSAGE + 2] = '\0';
    r = test_run_program(ARGS("models/stories260K.bin", "-m", "chat"), input, NULL);
    CHECKF(r.status == 1 && strstr(r.err, "error: the system prompt is longer than 64 KiB"), "exit %d, %s", r.status,
           r.err);
    run_result_free(&r);
    free(input);
}

void suite_chat(void) {
    test_run("chat_llama2_template", test_llama2_template);
    test_run("chat_zephyr_template", test_zephyr_template);
    test_run("chat_chatml_template", test_chatml_template);
    test_run("chat_template_names", test_template_names);
    test_run("chat_encode", test_chat_encode);
    test_run("chat_program_uses_the_template", test_program_uses_the_template);
    test_run("chat_program_caps_a_message", test_program_caps_a_message);
}
