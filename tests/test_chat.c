/*
 * tests/test_chat.c - the chat templates to the character (tokenizer/chat.h), their
 * encoding (BOS, and "</s>" as the EOS id), the end of a ChatML answer spelled as text,
 * and the program choosing them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* What chat_stop_feed shows, collected. */
static char shown[256];
static size_t n_shown;

static void collect(const char *s, size_t n) {
    if (CHECK(n > 0 && n_shown + n < sizeof shown)) memcpy(shown + n_shown, s, n), n_shown += n;
    shown[n_shown] = '\0';
}

/* Feeds pieces (a NULL-terminated list) of tokens at positions 10, 11, ... to a new answer;
 * the answer ends without a stop (piece NULL) unless one is found. Checks what is shown and
 * the position returned (-1: no stop). */
static void expect_answer(ChatTemplate t, const char *const *pieces, const char *want_shown, int want_pos) {
    ChatStop s;
    chat_stop_start(&s, t);
    n_shown = 0, shown[0] = '\0';
    int got = -1, k = 0;
    for (; pieces[k] && got < 0; k++) got = chat_stop_feed(&s, pieces[k], strlen(pieces[k]), 10 + k, collect);
    if (got < 0) chat_stop_feed(&s, NULL, 0, 10 + k, collect);
    CHECKF(!strcmp(shown, want_shown) && got == want_pos, "%s, pieces from '%s': shown '%s' (want '%s'), stop at %d "
           "(want %d)", chat_template_name(t), pieces[0], shown, want_shown, got, want_pos);
}

#define PIECES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A ChatML answer ends at the text "<|im_end|>" however the tokenizer cuts it, which is not
 * shown; the position returned is that of the token it began in. Text that only begins
 * like it is shown in full, also when the answer ends there. Other templates end with EOS. */
static void test_chatml_stop_text(void) {
    expect_answer(CHAT_CHATML, PIECES("Hi", " there", "<", "|", "im", "_", "end", "|", ">", "never"), "Hi there", 12);
    expect_answer(CHAT_CHATML, PIECES("Hi", "<|im_end|>"), "Hi", 11);      /* one piece: a special token's text */
    expect_answer(CHAT_CHATML, PIECES("a<", "|im_end|>b"), "a", 10);      /* begins inside a piece */
    expect_answer(CHAT_CHATML, PIECES("x", "<<|im", "_end|>"), "x<", 11); /* a '<' that is not it */
    expect_answer(CHAT_CHATML, PIECES("<|", "im", "x", " ok"), "<|imx ok", -1);
    expect_answer(CHAT_CHATML, PIECES("so", " <|im_end"), "so <|im_end", -1); /* the answer ended first */
    expect_answer(CHAT_CHATML, PIECES("<|im_end|", "<|im_end|>"), "<|im_end|", 11);
    expect_answer(CHAT_ZEPHYR, PIECES("Hi", "<|im_end|>", "!"), "Hi<|im_end|>!", -1);
    expect_answer(CHAT_LLAMA2, PIECES("<|im_end|>"), "<|im_end|>", -1);
}

void suite_chat(void) {
    test_run("chat_chatml_stops_at_its_end_text", test_chatml_stop_text);
    test_run("chat_llama2_template", test_llama2_template);
    test_run("chat_zephyr_template", test_zephyr_template);
    test_run("chat_chatml_template", test_chatml_template);
    test_run("chat_template_names", test_template_names);
    test_run("chat_encode", test_chat_encode);
    test_run("chat_program_uses_the_template", test_program_uses_the_template);
}
