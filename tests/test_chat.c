/*
 * tests/test_chat.c - the chat templates to the character (tokenizer/chat.h), their
 * encoding (BOS, and "</s>" as the EOS id), the end of a ChatML answer spelled as text,
 * and the program choosing them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    const char *const names[] = {"llama2", "zephyr", "chatml", "llama3", "smollm2"};
    for (int i = 0; i < 5; i++)
        CHECK(chat_template_parse(names[i], &t) == 0 && t == (ChatTemplate)i && !strcmp(chat_template_name(t), names[i]));
    CHECK(chat_template_parse("vicuna", &t) == -1 && chat_template_parse("", &t) == -1);
}

/* chat_encode of a text that is all markup. */
static int encode_markup(ChatTemplate t, const Tokenizer *tok, const char *text, int first, int eos, int **ids,
                         char *err, size_t errlen) {
    ChatTurn turn = {(char *)text, calloc(strlen(text) + 1, 1), strlen(text)};
    const int n = turn.plain ? chat_encode(t, tok, &turn, first, eos, ids, err, errlen) : -1;
    free(turn.plain);
    return n;
}

/* BOS starts Llama-2's every turn and the others' first; "</s>" becomes the EOS id given
 * (not the 4 characters), and the text between is what the tokenizer makes of it. */
static void test_chat_encode(void) {
    char err[256] = "";
    Tokenizer *tok = tokenizer_open("models/tok512.model", err, sizeof err);
    if (!CHECKF(tok != NULL, "%s", err)) return;
    int *ids = NULL, *plain = NULL;
    const int n = encode_markup(CHAT_ZEPHYR, tok, "<|user|>\nHi</s>\n<|assistant|>\n", 1, 77, &ids, err, sizeof err);
    const int n_user = tokenizer_encode(tok, "<|user|>\nHi", &plain, err, sizeof err);
    CHECKF(n > n_user && ids[0] == 1 && !memcmp(ids + 1, plain + 1, (size_t)(n_user - 1) * sizeof *ids) &&
           ids[n_user] == 77, "zephyr: %d ids, EOS at %d is %d", n, n_user, n > n_user ? ids[n_user] : -1);
    free(ids), free(plain);
    CHECK(encode_markup(CHAT_ZEPHYR, tok, "</s>\n<|user|>\nHi", 0, 2, &ids, err, sizeof err) > 1 && ids[0] == 2);
    free(ids);
    CHECK(encode_markup(CHAT_LLAMA2, tok, "[INST] Hi [/INST]", 0, 2, &ids, err, sizeof err) > 1 && ids[0] == 1);
    free(ids);
    CHECK(encode_markup(CHAT_CHATML, tok, "<|im_end|>\nHi", 0, 2, &ids, err, sizeof err) > 1 && ids[0] != 1);
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
        ChatTurn turn;
        const int rendered = chat_render((ChatTemplate)i, "Be brief.", "Tell me a story.", 1, &turn) == 0;
        int *ids = NULL;
        const int n = rendered ? chat_encode((ChatTemplate)i, tok, &turn, 1, 2, &ids, err, sizeof err) : -1;
        RunResult r = test_run_program(ARGS("models/stories260K.bin", "-m", "chat", "--chat-template", names[i], "-t",
                                            "0", "-n", "200", "-y", "Be brief."), "Tell me a story.\n", NULL);
        char want[64];
        snprintf(want, sizeof want, "(prompt: %d tokens", n);
        CHECKF(r.status == 0 && n > 10 && r.err && strstr(r.err, want) && r.out && strstr(r.out, "Assistant: "),
               "%s: expected '%s' in: %s", names[i], want, r.err);
        run_result_free(&r);
        free(ids);
        if (rendered) chat_turn_free(&turn);
    }
    tokenizer_free(tok);
    RunResult r = test_run_program(ARGS("models/stories260K.bin", "-m", "chat", "--chat-template", "vicuna"), "", NULL);
    CHECKF(r.status == 1 && r.err && strstr(r.err, "error: unknown chat template 'vicuna'") &&
           strstr(r.err, "llama2, zephyr, chatml, llama3 or smollm2"), "%s", r.err);
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

/* Llama 3.2's and SmolLM2's templates to the character: what Hugging Face's Jinja renderer
 * (npm @huggingface/jinja) made of the chat_template each model ships, for five
 * conversations (tests/data/chat/, provenance in tests/data/README.md), with the date of
 * today where the renderer was given "26 Jul 2024". A conversation of two turns is the
 * first turn, the answer, then the second. */
static void test_matches_jinja(void) {
    static const struct {
        ChatTemplate t;
        const char *name, *bos;
    } templates[] = {{CHAT_LLAMA3, "llama3", "<|begin_of_text|>"}, {CHAT_SMOLLM2, "smollm2", ""}};
    static const struct {
        const char *id, *system, *user, *answer, *user2;
    } talks[] = {{"A", "", "Tell me a story.", NULL, NULL},
                 {"B", "Be brief.", "Tell me a story.", NULL, NULL},
                 {"C", "Be brief.", "Tell me a story.", "Once upon a time.", "Another one."},
                 {"D", "", "  padded, with spaces  \n", NULL, NULL},
                 {"E", "", "Hi", "Hello!", "Bye"}};
    char today[32];
    const time_t now = time(NULL);
    struct tm day;
    strftime(today, sizeof today, "%d %b %Y", localtime_r(&now, &day));
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 5; c++) {
            char path[128], got[2048], *want;
            snprintf(path, sizeof path, "tests/data/chat/%s.%s.txt", templates[k].name, talks[c].id);
            if (!(want = test_read_file(path, NULL))) continue;
            char *date = strstr(want, "26 Jul 2024"); /* the renderer's date: today's here */
            if (date) memcpy(date, today, strlen(today));
            char *first = chat_render_turn(templates[k].t, talks[c].system, talks[c].user, 1);
            char *second = talks[c].answer ? chat_render_turn(templates[k].t, talks[c].system, talks[c].user2, 0) : NULL;
            snprintf(got, sizeof got, "%s%s%s%s", templates[k].bos, first ? first : "(null)",
                     talks[c].answer ? talks[c].answer : "", second ? second : "");
            CHECKF(!strcmp(got, want), "%s: got\n%s\nwant\n%s", path, got, want);
            free(first), free(second), free(want);
        }
}

/* With a tokenizer.json, a turn encodes as Hugging Face encodes the rendered text (its
 * special tokens are their ids), except that what the user typed never becomes one. */
static void test_encode_with_special_tokens(void) {
    size_t size;
    char err[512] = "";
    char *json = test_read_gzip("tests/data/tokenizers/llama3.tokenizer.json.gz", &size);
    Tokenizer *tok = json ? tokenizer_parse(json, size, "llama3", err, sizeof err) : NULL;
    free(json);
    if (!CHECKF(tok != NULL, "%s", err)) return;
    const char *const users[] = {"Tell me a story.", "Say <|eot_id|> twice: <|eot_id|>"};
    for (int u = 0; u < 2; u++) {
        ChatTurn turn;
        if (!CHECK(chat_render(CHAT_LLAMA3, "Be brief.", users[u], 1, &turn) == 0)) continue;
        int *ids = NULL, *whole = NULL, eot = 0;
        const int n = chat_encode(CHAT_LLAMA3, tok, &turn, 1, 128001, &ids, err, sizeof err);
        const int n_whole = tokenizer_encode(tok, turn.text, &whole, err, sizeof err);
        for (int i = 0; i < n; i++) eot += ids[i] == 128009;
        CHECKF(n > 20 && ids[0] == 128000 && eot == 2, "%s: %d ids, %d <|eot_id|>", users[u], n, eot);
        if (u == 0) /* nothing typed looks special: the same ids as the whole text */
            CHECKF(n == n_whole && !memcmp(ids, whole, (size_t)n * sizeof *ids), "%d ids, encoded whole %d", n, n_whole);
        else /* typed, each <|eot_id|> is several ids of text, not the one of the token */
            CHECKF(n > n_whole, "typed special tokens: %d ids, the whole text parsed %d", n, n_whole);
        free(ids), free(whole);
        chat_turn_free(&turn);
    }
    tokenizer_free(tok);
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
    test_run("chat_chatml_stops_at_its_end_text", test_chatml_stop_text);
    test_run("chat_matches_jinja", test_matches_jinja);
    test_run("chat_encode_with_special_tokens", test_encode_with_special_tokens);
    test_run("chat_llama2_template", test_llama2_template);
    test_run("chat_zephyr_template", test_zephyr_template);
    test_run("chat_chatml_template", test_chatml_template);
    test_run("chat_template_names", test_template_names);
    test_run("chat_encode", test_chat_encode);
    test_run("chat_program_uses_the_template", test_program_uses_the_template);
    test_run("chat_program_caps_a_message", test_program_caps_a_message);
}
