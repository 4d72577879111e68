/*
 * engine/commands/import.c - the import command (engine/commands/import.h).
 */
#include "engine/commands/import.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/commands/clock.h"
#include "engine/commands/command.h"
#include "tokenizer/tokenizer.h"
#include "weights/hf_import.h"
#include "weights/model.h"
#include "weights/qrz.h"

/* OUT may be new, or a .qrz file to replace; anything else it might be (a config.json, a
 * shard, a checkpoint: a slip of the arguments) is refused rather than overwritten. */
static int check_output(const char *path, char *err, size_t errlen) {
    if (qrz_check_destination(path, err, errlen) != 0) return -1;
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0 && !model_is_qrz(path)) {
        snprintf(err, errlen, "%s exists and is not a .qrz file; import writes a new file or replaces a .qrz", path);
        return -1;
    }
    return 0;
}

/* The tokenizer the file will carry must be one the engine reads, of the model's size. */
static int check_tokenizer(const HfModel *m, char *err, size_t errlen) {
    Tokenizer *t = tokenizer_open(m->tokenizer_path, err, errlen);
    if (!t) return -1;
    const int pieces = tokenizer_vocab_size(t), vocab = m->config.cfg.vocab_size;
    tokenizer_free(t);
    if (pieces == vocab) return 0;
    snprintf(err, errlen, "%s has %d pieces but config.json's vocab_size is %d", m->tokenizer_path, pieces, vocab);
    return -1;
}

/* "import: [#####.....] tensor 12 of 201, 311 of 640 MB", redrawn in place. */
static void show_progress(void *ctx, int i, int n, uint64_t bytes, uint64_t file_bytes) {
    (void)ctx;
    enum { WIDTH = 30 };
    const int filled = file_bytes ? (int)(WIDTH * bytes / file_bytes) : WIDTH;
    char bar[WIDTH + 1];
    for (int k = 0; k < WIDTH; k++) bar[k] = k < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\rimport: [%s] tensor %d of %d, %.1f of %.1f MB", bar, i < n ? i + 1 : n, n, bytes / 1e6,
            file_bytes / 1e6);
    if (i == n) fputc('\n', stderr);
}

static uint64_t input_bytes(const HfModel *m) {
    uint64_t sum = 0;
    for (int i = 0; i < m->st.n_files; i++) sum += m->st.files[i].size;
    return sum;
}

int import_command(const ImportOptions *o, char *err, size_t errlen) {
    if (check_output(o->out_path, err, errlen) != 0) return -1;
    const int replacing = access(o->out_path, F_OK) == 0;
    const double start = now_seconds();
    HfModel m;
    if (hf_model_open(&m, o->in_dir, err, errlen) != 0) return -1;
    char template_used[16] = "";
    const HfImportOptions options = {o->quant, o->chat_template,
                                     isatty(STDERR_FILENO) ? show_progress : NULL, NULL};
    int rc = check_tokenizer(&m, err, errlen);
    if (rc == 0) rc = hf_import(&m, o->in_dir, o->out_path, &options, template_used, err, errlen);
    if (rc == 0) {
        char name[64];
        quant_config_name(&o->quant, name, sizeof name);
        struct stat written;
        const long long bytes = stat(o->out_path, &written) == 0 ? (long long)written.st_size : -1;
        char shown[1024];
        fprintf(stderr, "wrote %s%s: %s, chat template %s, %lld bytes (from %llu bytes of safetensors) in %.2f s\n",
                printable(o->out_path, shown, sizeof shown), replacing ? " (replacing the file that was there)" : "", name, template_used[0] ? template_used : "unknown (llama2 in chat)",
                bytes, (unsigned long long)input_bytes(&m), now_seconds() - start);
    }
    hf_model_close(&m);
    return rc;
}
