/*
 * weights/qrz.c - writes and maps .qrz files (layout: docs/FORMAT.md).
 */
#include "weights/qrz.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    HEADER_BYTES = 128, /* fixed part */
    ENTRY_BYTES = 32,   /* one tensor table entry */
    ALIGN = 64,         /* every tensor and every array inside one starts on 64 bytes */
    STORE_BYTES = STORE_R4 + 1, /* table storage 3: raw bytes (the tokenizer) */
    TEMPLATE_BYTES = 16,        /* the chat template's name, NUL-padded */
    MAX_TOKENIZER_BYTES = 64 << 20,
};

static uint64_t align_up(uint64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

static int little_endian_host(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* ------------------------------------------------------------------ the tensor list */

/* What the header says besides the tensor table (docs/FORMAT.md, "Header"). */
typedef struct {
    ModelConfig cfg;
    QuantConfig quant;
    int shared;         /* the classifier is the float32 embedding: no classifier tensor */
    int embedding_int8; /* the embedding is stored as INT8 rows */
    int bos_id, eos_id;
    char chat_template[TEMPLATE_BYTES];
    const void *tokenizer;
    uint32_t tokenizer_size; /* 0: no tokenizer tensor */
    int32_t stop_ids[MODEL_MAX_STOP];
    int n_stop; /* 0: no stop-ids tensor */
} FileInfo;

/* One tensor of the file: what it is, how it is stored, and (when writing from memory)
 * its data. */
typedef struct {
    uint32_t role;
    int storage; /* a Storage, or STORE_BYTES */
    QuantKind kind;
    int rows, cols;
    uint64_t offset, bytes;
    const float *f32; /* STORE_F32 */
    Linear lin;       /* STORE_INT, STORE_R4 */
    const void *raw;  /* STORE_BYTES */
} Tensor;

/* Sizes of the arrays a stored matrix is made of, in file order; returns how many. */
static int tensor_parts(const Tensor *t, int group, uint64_t part[3]) {
    if (t->storage == STORE_F32 || t->storage == STORE_BYTES) {
        part[0] = (uint64_t)t->rows * (uint64_t)t->cols * (t->storage == STORE_F32 ? sizeof(float) : 1);
        return 1;
    }
    if (t->storage == STORE_INT) {
        part[0] = (uint64_t)t->rows * (uint64_t)t->cols; /* codes */
        part[1] = (uint64_t)t->rows * sizeof(float);    /* row scales */
        return 2;
    }
    R4Matrix shape;
    r4_matrix_shape(&shape, t->rows, t->cols, group);
    int n = 0;
    part[n++] = r4_code_bytes(&shape);
    if (t->kind == QUANT_SDR) part[n++] = r4_shift_bytes(&shape);
    part[n++] = r4_scale_bytes(&shape);
    return n;
}

static uint64_t tensor_bytes(const Tensor *t, int group) {
    uint64_t part[3], sum = 0;
    const int n = tensor_parts(t, group, part);
    for (int i = 0; i < n; i++) sum += align_up(part[i]);
    return sum;
}

/* A matrix tensor of this storage, kind and shape; lin holds its data (NULL: not known). */
static Tensor linear_tensor(uint32_t role, Storage st, QuantKind kind, int rows, int cols,
                            const Linear *lin) {
    Tensor t = {role, st, kind, rows, cols, 0, 0, lin ? lin->f32 : NULL, {0}, NULL};
    if (lin) t.lin = *lin;
    return t;
}

static Tensor float_tensor(uint32_t role, int rows, int cols, const float *data) {
    Tensor t = {role, STORE_F32, QUANT_F32, rows, cols, 0, 0, data, {0}, NULL};
    return t;
}

/* The embedding as a tensor: float32, or INT8 rows with a scale each (stage 1 alone). */
static Tensor embedding_tensor(const FileInfo *h, const ModelWeights *m) {
    const ModelConfig *c = &h->cfg;
    if (!h->embedding_int8) return float_tensor(QRZ_ROLE_EMBEDDING, c->vocab_size, c->dim, m ? m->token_embedding : NULL);
    const Linear lin = {STORE_INT, QUANT_INT, c->vocab_size, c->dim, NULL, m ? m->embedding_i8 : (I8Matrix){0}, {0}};
    return linear_tensor(QRZ_ROLE_EMBEDDING, STORE_INT, QUANT_INT, c->vocab_size, c->dim, &lin);
}

/* The tensors the header h implies, in file order, with their data when m holds them.
 * Returns how many (4 + 7 * n_layers, plus 1 unless the classifier is shared, plus 1 with
 * a tokenizer): at most max_tensors(). */
static int model_tensors(const FileInfo *h, const ModelWeights *m, Tensor *out) {
    int n = 0;
    const ModelConfig *c = &h->cfg;
    const QuantConfig *q = &h->quant;
    const int dim = c->dim, kv = config_kv_dim(c), hid = c->hidden_dim;
    out[n++] = embedding_tensor(h, m);
    out[n++] = float_tensor(QRZ_ROLE_RMS_ATT, c->n_layers, dim, m ? m->layers[0].rms_att : NULL);
    out[n++] = float_tensor(QRZ_ROLE_RMS_FFN, c->n_layers, dim, m ? m->layers[0].rms_ffn : NULL);
    out[n++] = float_tensor(QRZ_ROLE_RMS_FINAL, 1, dim, m ? m->rms_final : NULL);
    if (!h->shared)
        out[n++] = linear_tensor(QRZ_ROLE_CLASSIFIER, storage_for(q->cls, q->cls), q->cls,
                                 c->vocab_size, dim, m ? &m->cls : NULL);
    const Storage st = storage_for(q->weights, q->acts);
    const int rows[7] = {dim, kv, kv, dim, hid, dim, hid}, cols[7] = {dim, dim, dim, dim, dim, hid, dim};
    for (int l = 0; l < c->n_layers; l++) {
        const Linear *lins[7] = {NULL};
        if (m) {
            const LayerWeights *L = &m->layers[l];
            const Linear *all[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w2, &L->w3};
            memcpy(lins, all, sizeof lins);
        }
        for (int j = 0; j < 7; j++)
            out[n++] = linear_tensor((uint32_t)(QRZ_ROLE_LINEAR + 7 * l + j), st, q->weights, rows[j],
                                     cols[j], lins[j]);
    }
    if (h->tokenizer_size)
        out[n++] = (Tensor){QRZ_ROLE_TOKENIZER, STORE_BYTES, QUANT_F32, 1, (int)h->tokenizer_size, 0, 0, NULL, {0},
                            h->tokenizer};
    if (h->n_stop)
        out[n++] = (Tensor){QRZ_ROLE_STOP_IDS, STORE_BYTES, QUANT_F32, 1, 4 * h->n_stop, 0, 0, NULL, {0}, h->stop_ids};
    return n;
}

static size_t max_tensors(const ModelConfig *c) { return (size_t)c->n_layers * 7 + 7; }

/* ------------------------------------------------------------------ writing */

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Writes n bytes and zero padding up to the next 64-byte boundary. */
static int write_padded(FILE *f, const void *data, uint64_t n) {
    static const uint8_t zeros[ALIGN];
    if (n && fwrite(data, 1, n, f) != n) return -1;
    const uint64_t pad = align_up(n) - n;
    return pad && fwrite(zeros, 1, pad, f) != pad ? -1 : 0;
}

static int write_tensor(FILE *f, const Tensor *t) {
    if (t->storage == STORE_BYTES) return write_padded(f, t->raw, (uint64_t)t->cols);
    if (t->storage == STORE_F32) return write_padded(f, t->f32, (uint64_t)t->rows * t->cols * sizeof(float));
    if (t->storage == STORE_INT) {
        const I8Matrix *m = &t->lin.i8;
        return write_padded(f, m->q, (uint64_t)m->rows * m->cols) ||
               write_padded(f, m->scales, (uint64_t)m->rows * sizeof(float));
    }
    const R4Matrix *m = &t->lin.r4;
    return write_padded(f, m->codes, r4_code_bytes(m)) ||
           (m->shifts && write_padded(f, m->shifts, r4_shift_bytes(m))) ||
           write_padded(f, m->scales, r4_scale_bytes(m));
}

int qrz_check_destination(const char *path, char *err, size_t errlen) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0; /* a new file (its directory is checked by writing) */
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(err, errlen, "%s: is a symbolic link; give the path of the file itself", path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        const char *what = S_ISDIR(st.st_mode)                           ? "a directory"
                           : S_ISFIFO(st.st_mode)                        ? "a FIFO"
                           : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                         : "something else";
        snprintf(err, errlen, "%s: is %s, not a regular file: the .qrz goes to a new file or "
                 "replaces a regular one", path, what);
        return -1;
    }
    return 0;
}

/* The permissions the output gets: those of the file it replaces, or what creating a new
 * file gives (0666 less the umask). mkstemp creates its file 0600. */
static mode_t output_mode(const char *path) {
    struct stat st;
    if (lstat(path, &st) == 0) return st.st_mode & 0777;
    const mode_t mask = umask(0);
    umask(mask);
    return 0666 & ~mask;
}

/* ------------------------------------------------------------------ the temporary file */

/* The temporary a file is written to before it is renamed over path: path with
 * ".tmp-XXXXXX" appended (mkstemp fills the X's), its last component cut short when the
 * whole would pass NAME_MAX, the longest name a directory entry may have: a 250-character
 * OUT is legal, and so must its temporary be. malloc'd; NULL when out of memory. */
static char *temporary_name(const char *path) {
    static const char suffix[] = ".tmp-XXXXXX";
    const size_t suffix_len = sizeof suffix - 1, len = strlen(path);
    const char *slash = strrchr(path, '/');
    const size_t dir = slash ? (size_t)(slash + 1 - path) : 0, name = len - dir;
    const size_t keep = dir + (name + suffix_len > NAME_MAX ? NAME_MAX - suffix_len : name);
    char *tmp = malloc(keep + sizeof suffix);
    if (tmp) snprintf(tmp, keep + sizeof suffix, "%.*s%s", (int)keep, path, suffix);
    return tmp;
}

/*
 * While a temporary exists, the signals that end the program remove it first: SIGINT
 * (Ctrl-C), SIGTERM, SIGHUP and SIGQUIT, which users and their tools send; SIGBUS, which
 * a mapped input file truncated underneath the writer raises at the next read of a lost
 * page; SIGXFSZ, past the file size limit (ulimit -f). The handler removes the file, then
 * lets the signal take its default course (SA_RESETHAND restored it), so the exit status
 * still says which signal it was. A signal the program ignores (nohup's SIGHUP) stays
 * ignored. SIGKILL cannot be caught: it leaves the temporary (README, "Bad input").
 */
static const int fatal_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGBUS, SIGXFSZ};
enum { N_FATAL_SIGNALS = sizeof fatal_signals / sizeof fatal_signals[0] };
static struct sigaction saved_actions[N_FATAL_SIGNALS];
/* The handler may run on any thread (the thread pool's too; SIGBUS goes to whichever
 * thread read the lost page) while the main thread sets this, so it is a lock-free atomic:
 * the only kind of object besides volatile sig_atomic_t that C lets a handler read. */
static _Atomic(const char *) pending_temporary;
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "the signal handler needs a lock-free pointer");

static void remove_temporary_and_die(int sig) {
    const char *tmp = atomic_load(&pending_temporary);
    if (tmp) unlink(tmp);
    if (sig == SIGBUS) { /* the shell would only say "Bus error" */
        static const char msg[] = "error: an input file was truncated while it was being read (SIGBUS); "
                                  "the partial output is removed\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) { /* nothing more to do */
        }
    }
    raise(sig);
}

static void watch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_temporary_and_die;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < N_FATAL_SIGNALS; i++) {
        sigaction(fatal_signals[i], NULL, &saved_actions[i]);
        if (saved_actions[i].sa_handler != SIG_IGN) sigaction(fatal_signals[i], &sa, NULL);
    }
}

static void unwatch_signals(void) {
    for (int i = 0; i < N_FATAL_SIGNALS; i++) sigaction(fatal_signals[i], &saved_actions[i], NULL);
}

/* Creates the temporary for path (its name in *tmp, malloc'd, or NULL when nothing was
 * created) and opens it for writing. Returns the stream, or NULL with errno set. */
static FILE *create_temporary(const char *path, char **tmp) {
    if (!(*tmp = temporary_name(path))) {
        errno = ENOMEM;
        return NULL;
    }
    /* Pending before the file exists: mkstemp writes each name it tries into the buffer
     * before it creates that file, and a signal may come at any moment, to any thread (the
     * thread pool's too), so no window is left in which the file exists unknown to the
     * handler. A signal before the file exists makes it unlink a name that is not there. */
    atomic_store(&pending_temporary, *tmp);
    const int fd = mkstemp(*tmp);
    if (fd < 0) {
        const int error = errno;
        atomic_store(&pending_temporary, NULL);
        free(*tmp);
        *tmp = NULL;
        errno = error;
        return NULL;
    }
    FILE *f = NULL;
    if (fchmod(fd, output_mode(path)) != 0 || !(f = fdopen(fd, "wb"))) {
        const int error = errno;
        close(fd);
        errno = error;
    }
    return f;
}

/* Renames the temporary over path (keep) or removes it; then it is no longer pending (a
 * signal in between unlinks a name that is already gone). Returns 0, or the errno of a
 * failed rename. */
static int finish_temporary(const char *tmp, const char *path, int keep) {
    const int error = keep && rename(tmp, path) != 0 ? errno : 0;
    if (!keep || error) unlink(tmp);
    atomic_store(&pending_temporary, NULL);
    return error;
}

static int check_mapping(ModelWeights *m, const uint8_t *b, size_t size, char *why, size_t len);

/* The loader's checks (qrz_open) on the file just written, as it is stored: 0, or -1 with
 * the reason in why. What was written is what the loader will read, so a model the
 * loader would refuse is never renamed over path (and never replaces a good file there). */
static int check_written(int fd, char *why, size_t len) {
    struct stat st;
    void *map = fstat(fd, &st) != 0 || st.st_size <= 0 ? MAP_FAILED
                : mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        snprintf(why, len, "cannot map the written file to check it: %s", strerror(errno));
        return -1;
    }
    ModelWeights m;
    memset(&m, 0, sizeof m);
    const int rc = check_mapping(&m, map, (size_t)st.st_size, why, len);
    free(m.layers);
    munmap(map, (size_t)st.st_size);
    return rc;
}

/* Writes the body of a file: 0, -1 on an I/O error (errno says which), or -2 with the
 * reason in why. */
typedef int (*BodyWriter)(FILE *f, void *ctx, char *why, size_t whylen);

/* Writes a new temporary file beside path, flushes it to disk, checks it as the loader
 * will, then renames it over path: a failed write or check leaves nothing behind, a file
 * being replaced (perhaps mapped by a running reader) is never truncated, and a crash
 * leaves either the old file or the whole new one (and, after SIGKILL or a power loss,
 * the temporary). mkstemp creates the temporary with O_EXCL under a random name, so
 * nothing planted in the directory (a symlink "OUT.tmp" to a victim, say) can redirect
 * the write. */
static int write_atomically(const char *path, BodyWriter body, void *ctx, char *err, size_t errlen) {
    if (qrz_check_destination(path, err, errlen) != 0) return -1;
    char *tmp = NULL, why[512] = "";
    watch_signals();
    FILE *f = create_temporary(path, &tmp);
    int error = f ? 0 : errno; /* the errno of the first failure */
    int refused = 0; /* 1: the body's own failure, 2: the check's; said in why */
    if (f) {
        errno = 0;
        const int rc = body(f, ctx, why, sizeof why);
        refused = rc == -2;
        if (rc == -1 || (!refused && (fflush(f) != 0 || fsync(fileno(f)) != 0))) error = errno ? errno : EIO;
        if (!error && !refused && check_written(fileno(f), why, sizeof why) != 0) refused = 2;
        if (fclose(f) != 0 && !error) error = errno ? errno : EIO;
    }
    if (tmp) {
        const int failed = finish_temporary(tmp, path, !error && !refused);
        if (!error) error = failed;
    }
    unwatch_signals();
    if (refused == 2) snprintf(err, errlen, "%s: not written: the model would not load: %s", path, why);
    else if (refused) snprintf(err, errlen, "%s", why);
    else if (error) snprintf(err, errlen, "%s: cannot write: %s", path, strerror(error));
    free(tmp);
    return error || refused ? -1 : 0;
}

/* The header and tensor table of h's file (tensors[0..n) get their offsets and sizes):
 * header_bytes of them, calloc'd. NULL when out of memory. */
static uint8_t *make_header(const FileInfo *h, Tensor *tensors, int n, uint64_t *header_bytes) {
    const ModelConfig *c = &h->cfg;
    const QuantConfig *q = &h->quant;
    *header_bytes = align_up(HEADER_BYTES + (uint64_t)ENTRY_BYTES * n);
    uint64_t at = *header_bytes;
    for (int i = 0; i < n; i++) {
        tensors[i].offset = at;
        tensors[i].bytes = tensor_bytes(&tensors[i], q->group);
        at += tensors[i].bytes;
    }
    uint8_t *header = calloc(1, *header_bytes); /* reserved bytes and padding stay 0 */
    if (!header) return NULL;
    memcpy(header, QRZ_MAGIC, 8);
    put_u32(header + 8, QRZ_VERSION);
    put_u32(header + 12, (uint32_t)*header_bytes);
    const int32_t cfg[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                            c->vocab_size, c->seq_len};
    memcpy(header + 16, cfg, sizeof cfg);
    header[44] = (uint8_t)q->weights;
    header[45] = (uint8_t)q->acts;
    header[46] = (uint8_t)q->keys; /* == values (checked by the callers) */
    header[47] = (uint8_t)q->probs;
    header[48] = (uint8_t)q->cls;
    header[49] = (uint8_t)q->rounding;
    header[50] = (uint8_t)h->shared;
    header[51] = (uint8_t)q->rotate;
    put_u32(header + 52, (uint32_t)q->group);
    put_u32(header + 56, (uint32_t)n);
    put_u64(header + 64, at);
    memcpy(header + 72, &c->rope_theta, 4);
    memcpy(header + 76, &c->norm_eps, 4);
    put_u32(header + 80, (uint32_t)h->bos_id);
    put_u32(header + 84, (uint32_t)h->eos_id);
    header[88] = (uint8_t)h->embedding_int8;
    header[89] = (uint8_t)h->n_stop;
    memcpy(header + 112, &c->rope_factor, 4);
    memcpy(header + 116, &c->rope_low_freq_factor, 4);
    memcpy(header + 120, &c->rope_high_freq_factor, 4);
    put_u32(header + 124, (uint32_t)c->rope_original_ctx);
    put_u32(header + 92, h->tokenizer_size);
    memcpy(header + 96, h->chat_template, TEMPLATE_BYTES);
    for (int i = 0; i < n; i++) {
        uint8_t *e = header + HEADER_BYTES + (size_t)ENTRY_BYTES * i;
        put_u32(e, tensors[i].role);
        put_u32(e + 4, (uint32_t)tensors[i].storage);
        put_u32(e + 8, (uint32_t)tensors[i].rows);
        put_u32(e + 12, (uint32_t)tensors[i].cols);
        put_u64(e + 16, tensors[i].offset);
        put_u64(e + 24, tensors[i].bytes);
    }
    return header;
}

/* Checks what a writer is given against what the format can hold. */
static int check_file_info(const FileInfo *h, const char *path, char *err, size_t errlen) {
    const QuantConfig *q = &h->quant;
    const int qrazor = q->weights == QUANT_SDR && q->acts == QUANT_SDR;
    const char *why = NULL;
    if (!little_endian_host()) why = ".qrz files are little-endian; this host is not";
    else if (q->keys != q->values || (qrazor && q->keys != QUANT_SDR))
        why = "KV-cache types are chosen when a model runs (-ctk, -ctv), not stored";
    else if (h->chat_template[TEMPLATE_BYTES - 1] != '\0') why = "chat template name longer than 15 characters";
    else if (h->tokenizer_size > MAX_TOKENIZER_BYTES) why = "tokenizer larger than 64 MiB";
    else if (h->n_stop < 0 || h->n_stop > MODEL_MAX_STOP) why = "more end-of-text ids than the format holds (7 besides EOS)";
    if (why) snprintf(err, errlen, "%s: %s", path, why);
    return why ? -1 : 0;
}

/* A file's header, tensors and where they come from: the body writers' context. */
typedef struct {
    const FileInfo *info;
    Tensor *tensors;
    int n;
    const uint8_t *header;
    uint64_t header_bytes;
    const QrzSource *source; /* NULL: the tensors' data is in memory */
} FilePlan;

/* Plans h's file: its tensors (with m's data, if m) and header. Returns 0, or -1 with err set. */
static int plan_file(FilePlan *p, const FileInfo *h, const ModelWeights *m, const char *path, char *err,
                     size_t errlen) {
    memset(p, 0, sizeof *p);
    p->info = h;
    if (check_file_info(h, path, err, errlen) != 0) return -1;
    if ((p->tensors = malloc(max_tensors(&h->cfg) * sizeof *p->tensors))) {
        p->n = model_tensors(h, m, p->tensors);
        p->header = make_header(h, p->tensors, p->n, &p->header_bytes);
    }
    if (!p->header) {
        free(p->tensors);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static void plan_free(FilePlan *p) {
    free((void *)p->header);
    free(p->tensors);
}

static int write_from_memory(FILE *f, void *ctx, char *why, size_t whylen) {
    (void)why, (void)whylen;
    const FilePlan *p = ctx;
    if (fwrite(p->header, 1, p->header_bytes, f) != p->header_bytes) return -1;
    for (int i = 0; i < p->n; i++)
        if (write_tensor(f, &p->tensors[i]) != 0) return -1;
    return 0;
}

int qrz_write(const ModelWeights *m, const char *path, char *err, size_t errlen) {
    FileInfo h = {m->cfg, m->quant, m->quant.cls == QUANT_F32 && m->cls.f32 && m->cls.f32 == m->token_embedding,
                  m->token_embedding == NULL, m->bos_id, m->eos_id, "", m->tokenizer, (uint32_t)m->tokenizer_size,
                  {0}, 0};
    memcpy(h.chat_template, m->chat_template, TEMPLATE_BYTES);
    if (m->tokenizer_size > MAX_TOKENIZER_BYTES) h.tokenizer_size = UINT32_MAX; /* refused by the check */
    h.n_stop = m->n_stop;
    for (int k = 0; k < m->n_stop && k < MODEL_MAX_STOP; k++) h.stop_ids[k] = m->stop_ids[k];
    FilePlan p;
    if (plan_file(&p, &h, m, path, err, errlen) != 0) return -1;
    const int rc = write_atomically(path, write_from_memory, &p, err, errlen);
    plan_free(&p);
    return rc;
}

/* ------------------------------------------------------------------ writing from rows */

/* Rows of a float32 tensor, straight from the source to the file, 64 rows at a time. */
static int stream_floats(FILE *f, const QrzSource *s, const Tensor *t, char *why, size_t whylen) {
    enum { STEP = 64 };
    const size_t cols = (size_t)t->cols;
    float *rows = malloc(STEP * cols * sizeof *rows);
    if (!rows) return snprintf(why, whylen, "out of memory"), -2;
    int rc = 0;
    for (int r = 0; r < t->rows && !rc; r += STEP) {
        const int n = t->rows - r < STEP ? t->rows - r : STEP;
        if (s->read_rows(s->ctx, (int)t->role, r, n, rows, why, whylen) != 0) rc = -2;
        else if (fwrite(rows, sizeof *rows, (size_t)n * cols, f) != (size_t)n * cols) rc = -1;
    }
    free(rows);
    const uint64_t bytes = (uint64_t)t->rows * cols * sizeof(float);
    static const uint8_t zeros[ALIGN];
    const size_t pad = (size_t)(align_up(bytes) - bytes);
    return rc ? rc : pad && fwrite(zeros, 1, pad, f) != pad ? -1 : 0;
}

/* A quantized matrix: allocated, filled from the source a 16-row block at a time (the rows
 * that share shift bytes), written whole, freed. */
static int stream_quantized(FILE *f, const QrzSource *s, Tensor *t, char *why, size_t whylen) {
    Linear *l = &t->lin;
    *l = (Linear){(Storage)t->storage, t->kind, t->rows, t->cols, NULL, {0}, {0}};
    const int group = s->quant.group;
    float *rows = malloc((size_t)QR_BLOCK_ROWS * t->cols * sizeof *rows);
    const int alloc = t->storage == STORE_INT ? i8_matrix_alloc(&l->i8, t->rows, t->cols)
                                              : r4_matrix_alloc(&l->r4, t->rows, t->cols, group, t->kind == QUANT_SDR);
    int rc = 0;
    if (!rows || alloc != 0) rc = (snprintf(why, whylen, "out of memory for a %dx%d matrix", t->rows, t->cols), -2);
    for (int r = 0; r < t->rows && !rc; r += QR_BLOCK_ROWS) {
        const int n = t->rows - r < QR_BLOCK_ROWS ? t->rows - r : QR_BLOCK_ROWS;
        if (s->read_rows(s->ctx, (int)t->role, r, n, rows, why, whylen) != 0) rc = -2;
        for (int k = 0; k < n && !rc; k++)
            linear_quantize_row(l, r + k, rows + (size_t)k * t->cols, group, s->quant.rounding);
    }
    if (!rc && write_tensor(f, t) != 0) rc = -1;
    free(rows);
    if (alloc == 0 && t->storage == STORE_INT) i8_matrix_free(&l->i8);
    if (alloc == 0 && t->storage == STORE_R4) r4_matrix_free(&l->r4);
    return rc;
}

static int write_from_source(FILE *f, void *ctx, char *why, size_t whylen) {
    FilePlan *p = ctx;
    const QrzSource *s = p->source;
    if (fwrite(p->header, 1, p->header_bytes, f) != p->header_bytes) return -1;
    for (int i = 0; i < p->n; i++) {
        Tensor *t = &p->tensors[i];
        if (s->progress) s->progress(s->ctx, i, p->n, t->offset, get_u64(p->header + 64));
        const int rc = t->storage == STORE_BYTES ? write_tensor(f, t)
                       : t->storage == STORE_F32 ? stream_floats(f, s, t, why, whylen)
                                                 : stream_quantized(f, s, t, why, whylen);
        if (rc) return rc;
    }
    if (s->progress) s->progress(s->ctx, p->n, p->n, get_u64(p->header + 64), get_u64(p->header + 64));
    return 0;
}

int qrz_write_source(const QrzSource *s, const char *path, char *err, size_t errlen) {
    const char *name = s->chat_template ? s->chat_template : "";
    const int int8 = s->quant.embedding == QUANT_INT;
    FileInfo h = {s->cfg, s->quant, s->tied && s->quant.cls == QUANT_F32 && !int8, int8,
                  s->bos_id, s->eos_id, "", s->tokenizer,
                  s->tokenizer_size > MAX_TOKENIZER_BYTES ? UINT32_MAX : (uint32_t)s->tokenizer_size, {0}, 0};
    if (strlen(name) >= TEMPLATE_BYTES) h.chat_template[TEMPLATE_BYTES - 1] = 'x'; /* refused by the check */
    else memcpy(h.chat_template, name, strlen(name));
    h.n_stop = s->n_stop;
    for (int k = 0; k < s->n_stop && k < MODEL_MAX_STOP; k++) h.stop_ids[k] = s->stop_ids[k];
    FilePlan p;
    if (plan_file(&p, &h, NULL, path, err, errlen) != 0) return -1;
    p.source = s;
    const int rc = write_atomically(path, write_from_source, &p, err, errlen);
    plan_free(&p);
    return rc;
}

/* Points a Linear at its arrays inside the mapping. The mapping is read-only: the engine
 * never writes weights, and a write would fault rather than corrupt the file. */
static void map_linear(Linear *l, const Tensor *t, const uint8_t *base, int group) {
    uint64_t part[3];
    tensor_parts(t, group, part);
    const uint8_t *p = base + t->offset;
    l->storage = t->storage;
    l->kind = t->kind;
    l->rows = t->rows;
    l->cols = t->cols;
    if (t->storage == STORE_F32) {
        l->f32 = (const float *)p;
    } else if (t->storage == STORE_INT) {
        l->i8 = (I8Matrix){t->rows, t->cols, (int8_t *)p, (float *)(p + align_up(part[0]))};
    } else {
        r4_matrix_shape(&l->r4, t->rows, t->cols, group);
        l->r4.codes = (uint8_t *)p;
        p += align_up(part[0]);
        if (t->kind == QUANT_SDR) {
            l->r4.shifts = (uint8_t *)p;
            p += align_up(part[1]);
        }
        l->r4.scales = (float *)p;
    }
}

static int fail(char *err, size_t errlen, const char *path, const char *what) {
    snprintf(err, errlen, "%s: %s", path, what);
    return -1;
}

/* Index of the first byte of p[0..n) holding a zero nibble, or -1. Eight bytes at a time:
 * OR-ing each nibble's bits down into its lowest bit leaves that bit 0 only for a zero
 * nibble. Code arrays are whole 64-byte steps, so n is a multiple of 8. */
static int64_t first_zero_nibble(const uint8_t *p, uint64_t n) {
    enum { BLOCK = 4096 };
    const uint64_t low_bits = 0x1111111111111111u;
    for (uint64_t start = 0; start < n; start += BLOCK) {
        const uint64_t end = n - start < BLOCK ? n : start + BLOCK;
        uint64_t zero = 0;
        for (uint64_t i = start; i + 8 <= end; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, sizeof w);
            w |= w >> 1;
            w |= w >> 2;
            zero |= ~w & low_bits;
        }
        if (!zero) continue;
        for (uint64_t i = start; i < end; i++)
            if ((p[i] & 0x0f) == 0 || (p[i] & 0xf0) == 0) return (int64_t)i;
    }
    return -1;
}

/* The largest magnitude among n stored floats (float32 tensors: any value but NaN and
 * infinity), or -1 with the reason in why. */
static int check_floats(const float *x, uint64_t n, double *max, char *why, size_t len) {
    uint64_t at = 0;
    const float m = float_abs_max(x, n, &at);
    if (m < 0) {
        snprintf(why, len, "holds %s at element %llu", isnan(x[at]) ? "NaN" : "infinity",
                 (unsigned long long)at);
        return -1;
    }
    *max = m;
    return 0;
}

/* Checks the values of a mapped matrix (docs/FORMAT.md, "Values") and gives the largest
 * magnitude its entries can stand for: float32 finite; row scales finite and not
 * negative; 4-bit codes in -7..7 and weight shifts at most 4, so that an entry is at most
 * 7 << 4 = 112 times its row scale (7 times for RTN4, 128 for any INT8 code). */
static int check_linear(const Linear *l, double *max, char *why, size_t len) {
    if (l->storage == STORE_F32)
        return check_floats(l->f32, (uint64_t)l->rows * (uint64_t)l->cols, max, why, len);
    const float *scales = l->storage == STORE_INT ? l->i8.scales : l->r4.scales;
    const uint64_t n_scales = l->storage == STORE_INT ? (uint64_t)l->rows : (uint64_t)l->r4.n_blocks * QR_BLOCK_ROWS;
    uint64_t at = 0;
    const float m = scale_max(scales, n_scales, &at);
    if (m < 0) {
        snprintf(why, len, "has a scale of %g at row %llu (scales are finite, not negative)",
                 scales[at], (unsigned long long)at);
        return -1;
    }
    if (l->storage == STORE_INT) {
        *max = 128.0 * m;
        return 0;
    }
    const R4Matrix *r = &l->r4;
    /* In excess-8 (kernels/qformat.h) the nibble 0 would be the code -8, which is not a
     * 4-bit sign-magnitude code and which no writer produces (padding is the code 0, the
     * nibble 8). */
    const int64_t zero = first_zero_nibble(r->codes, r4_code_bytes(r));
    if (zero >= 0) {
        snprintf(why, len, "has a code of -8 (a nibble 0 in code byte %lld), outside -7..7",
                 (long long)zero);
        return -1;
    }
    const size_t n_shifts = r->shifts ? r4_shift_bytes(r) : 0; /* 1/16 of the codes */
    for (size_t k = 0; k < n_shifts; k++) {
        if ((r->shifts[k] & 15) > 4 || r->shifts[k] >> 4 > 4) {
            snprintf(why, len, "has a shift of %d, but INT8 weights razor at most 4 bits",
                     (r->shifts[k] & 15) > 4 ? r->shifts[k] & 15 : r->shifts[k] >> 4);
            return -1;
        }
    }
    *max = (r->shifts ? 7 << 4 : 7) * (double)m;
    return 0;
}

/* Checks every stored value of a mapped model, and that their magnitudes cannot overflow
 * the forward pass. Returns 0, or -1 with the reason in why. */
static int check_values(const ModelWeights *m, int shared, char *why, size_t len) {
    const ModelConfig *c = &m->cfg;
    WeightMagnitudes mag = {0};
    mag.layers = calloc((size_t)c->n_layers, sizeof *mag.layers);
    if (!mag.layers) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    char reason[160];
    const char *what = NULL;
    int layer = -1;
    const Linear emb_i8 = {STORE_INT, QUANT_INT, c->vocab_size, c->dim, NULL, m->embedding_i8, {0}};
    if (m->token_embedding ? check_floats(m->token_embedding, (uint64_t)c->vocab_size * c->dim, &mag.embedding,
                                          reason, sizeof reason)
                           : check_linear(&emb_i8, &mag.embedding, reason, sizeof reason))
        what = "token_embedding";
    else if (check_floats(m->rms_final, (uint64_t)c->dim, &mag.rms_final, reason, sizeof reason))
        what = "rms_final";
    mag.cls = mag.embedding;
    if (!what && !shared && check_linear(&m->cls, &mag.cls, reason, sizeof reason)) what = "classifier";
    for (int l = 0; l < c->n_layers && !what; l++) {
        const LayerWeights *L = &m->layers[l];
        LayerMagnitudes *g = &mag.layers[l];
        const struct {
            const char *name;
            const Linear *lin;
            double *max;
        } lins[] = {{"wq", &L->wq, &g->wq}, {"wk", &L->wk, &g->wk}, {"wv", &L->wv, &g->wv},
                    {"wo", &L->wo, &g->wo}, {"w1", &L->w1, &g->w1}, {"w2", &L->w2, &g->w2},
                    {"w3", &L->w3, &g->w3}};
        layer = l;
        if (check_floats(L->rms_att, (uint64_t)c->dim, &g->rms_att, reason, sizeof reason))
            what = "rms_att";
        else if (check_floats(L->rms_ffn, (uint64_t)c->dim, &g->rms_ffn, reason, sizeof reason))
            what = "rms_ffn";
        for (size_t j = 0; j < sizeof lins / sizeof lins[0] && !what; j++)
            if (check_linear(lins[j].lin, lins[j].max, reason, sizeof reason)) what = lins[j].name;
    }
    int rc = 0;
    if (what) {
        if (layer >= 0)
            snprintf(why, len, "layer %d %s %s", layer, what, reason);
        else
            snprintf(why, len, "%s %s", what, reason);
        rc = -1;
    } else {
        rc = magnitudes_check(c, &mag, why, len);
    }
    free(mag.layers);
    return rc;
}

/* The fields format 3 adds: RoPE scaling and the number of more end-of-text ids. */
static int read_v3_fields(const uint8_t *b, FileInfo *h, char *why, size_t len) {
    ModelConfig *c = &h->cfg;
    memcpy(&c->rope_factor, b + 112, 4);
    memcpy(&c->rope_low_freq_factor, b + 116, 4);
    memcpy(&c->rope_high_freq_factor, b + 120, 4);
    c->rope_original_ctx = (int32_t)get_u32(b + 124);
    h->n_stop = b[89];
    if (h->n_stop > MODEL_MAX_STOP) {
        snprintf(why, len, "%d more end-of-text ids (at most %d)", h->n_stop, MODEL_MAX_STOP);
        return -1;
    }
    return config_validate_rope_scaling(c, why, len);
}

/* The fields format 2 adds (docs/FORMAT.md, "Header"), checked; format 1 has Llama 2's. */
static int read_v2_fields(const uint8_t *b, FileInfo *h, char *why, size_t len) {
    ModelConfig *c = &h->cfg;
    memcpy(&c->rope_theta, b + 72, 4);
    memcpy(&c->norm_eps, b + 76, 4);
    h->bos_id = (int32_t)get_u32(b + 80);
    h->eos_id = (int32_t)get_u32(b + 84);
    h->embedding_int8 = b[88];
    h->tokenizer_size = get_u32(b + 92);
    memcpy(h->chat_template, b + 96, TEMPLATE_BYTES);
    if (!rope_theta_valid(c->rope_theta)) {
        snprintf(why, len, "rope_theta is %.9g, outside (%g, %g]", c->rope_theta, MODEL_MIN_ROPE_THETA,
                 MODEL_MAX_ROPE_THETA);
        return -1;
    }
    if (!norm_eps_valid(c->norm_eps)) {
        snprintf(why, len, "norm_eps is %.9g, outside (0, %g]", c->norm_eps, MODEL_MAX_NORM_EPS);
        return -1;
    }
    for (int k = 0; k < 2; k++) {
        const int id = k ? h->eos_id : h->bos_id;
        if (id < 0 || id >= c->vocab_size) {
            snprintf(why, len, "%s id %d is not a token of the vocabulary (0..%d)", k ? "EOS" : "BOS", id,
                     c->vocab_size - 1);
            return -1;
        }
    }
    if (h->embedding_int8 > 1 || (h->embedding_int8 && h->shared)) {
        snprintf(why, len, "embedding storage %u is not 0 (float32) or 1 (INT8, with a classifier of its own)",
                 b[88]);
        return -1;
    }
    if (h->tokenizer_size > MAX_TOKENIZER_BYTES) {
        snprintf(why, len, "a tokenizer of %u bytes (at most 64 MiB)", h->tokenizer_size);
        return -1;
    }
    size_t k = 0; /* the template name: [a-z0-9-], then NULs */
    while (k < TEMPLATE_BYTES && (islower(b[96 + k]) || isdigit(b[96 + k]) || b[96 + k] == '-')) k++;
    while (k < TEMPLATE_BYTES && b[96 + k] == 0) k++;
    if (k < TEMPLATE_BYTES || h->chat_template[TEMPLATE_BYTES - 1]) {
        snprintf(why, len, "the chat template name (bytes 96-111) is not [a-z0-9-] padded with NULs");
        return -1;
    }
    return 0;
}

/* Reads and checks the fixed header into h. Returns 0, or -1 with the reason in why. */
static int read_header(const uint8_t *b, size_t size, FileInfo *h, char *why, size_t len) {
#define REJECT(...) return snprintf(why, len, __VA_ARGS__), -1
    memset(h, 0, sizeof *h);
    if (size < HEADER_BYTES) REJECT("truncated: %zu bytes, the header alone is %d", size, HEADER_BYTES);
    if (memcmp(b, QRZ_MAGIC, 8) != 0) REJECT("not a .qrz file (bad magic)");
    const uint32_t version = get_u32(b + 8);
    if (version < 1 || version > QRZ_VERSION)
        REJECT("format version %u, but this build reads versions 1 to %d", version, QRZ_VERSION);
    /* Reserved bytes are 0, so that a later version can give them a meaning. */
    static const int reserved[3][4][2] = {{{51, 52}, {60, 64}, {72, HEADER_BYTES}, {0, 0}},
                                          {{60, 64}, {89, 92}, {112, HEADER_BYTES}, {0, 0}},
                                          {{60, 64}, {90, 92}, {0, 0}, {0, 0}}};
    for (int r = 0; r < 4; r++)
        for (int i = reserved[version - 1][r][0]; i < reserved[version - 1][r][1]; i++)
            if (b[i] != 0) REJECT("reserved header byte %d is %u, not 0", i, b[i]);
    int32_t cfg[7];
    memcpy(cfg, b + 16, sizeof cfg);
    h->cfg = (ModelConfig){cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[5], cfg[6], LLAMA2_ROPE_THETA, LLAMA2_NORM_EPS,
                           0, 0, 0, 0}; /* no RoPE scaling before format 3 */
    if (config_validate(&h->cfg, why, len) != 0) return -1;
    for (int i = 44; i <= 48; i++)
        if (b[i] > QUANT_RTN4) REJECT("unknown quantization kind %u at byte %d", b[i], i);
    /* Byte 46 is the KV cache's base kind; qrazor's cache types (r5, i8) are chosen at run
     * time, not stored. */
    h->quant = (QuantConfig){(QuantKind)b[44], (QuantKind)b[45], (QuantKind)b[46], (QuantKind)b[46], (QuantKind)b[47],
                             (QuantKind)b[48], (int)get_u32(b + 52), b[49], QUANT_F32, b[51]};
    h->shared = b[50];
    if (b[49] > 1 || h->shared > 1 || b[51] > 1)
        REJECT("corrupt flags (rounding %u, shared classifier %u, rotated %u)", b[49], b[50], b[51]);
    if (quant_config_check(&h->quant, why, len) != 0) return -1;
    if (h->shared && h->quant.cls != QUANT_F32) REJECT("a shared classifier must be float32");
    if (get_u64(b + 64) != size)
        REJECT("file is %zu bytes but its header says %llu (truncated or appended to)", size,
               (unsigned long long)get_u64(b + 64));
    h->bos_id = 1, h->eos_id = 2; /* Llama 2's, as in llama2.c */
    if (version >= 2 && read_v2_fields(b, h, why, len) != 0) return -1;
    if (version >= 3 && read_v3_fields(b, h, why, len) != 0) return -1;
    h->quant.embedding = h->embedding_int8 ? QUANT_INT : QUANT_F32;
    return 0;
}

/* Checks the tensor table against the n tensors the header implies (in tensors[], which
 * get their offsets). Returns 0, or -1 with the reason in why. */
static int read_table(const uint8_t *b, size_t size, const FileInfo *h, Tensor *tensors, int n, char *why,
                      size_t len) {
    const int group = h->quant.group;
    const uint64_t header_bytes = align_up(HEADER_BYTES + (uint64_t)ENTRY_BYTES * n);
    if (get_u32(b + 56) != (uint32_t)n) REJECT("tensor table has %u entries, the model needs %d", get_u32(b + 56), n);
    if (get_u32(b + 12) != header_bytes || header_bytes > size)
        REJECT("header size %u is not the %llu its table needs", get_u32(b + 12), (unsigned long long)header_bytes);
    for (uint64_t i = HEADER_BYTES + (uint64_t)ENTRY_BYTES * n; i < header_bytes; i++)
        if (b[i] != 0) REJECT("byte %llu, padding after the tensor table, is %u, not 0", (unsigned long long)i, b[i]);
    uint64_t end = header_bytes;
    for (int i = 0; i < n; i++) {
        const uint8_t *e = b + HEADER_BYTES + (size_t)ENTRY_BYTES * i;
        Tensor *t = &tensors[i];
        if (get_u32(e) != t->role || get_u32(e + 4) != (uint32_t)t->storage ||
            (int32_t)get_u32(e + 8) != t->rows || (int32_t)get_u32(e + 12) != t->cols)
            REJECT("tensor %d is role %u storage %u shape %dx%d, expected role %u storage %u "
                   "shape %dx%d", i, get_u32(e), get_u32(e + 4), (int32_t)get_u32(e + 8),
                   (int32_t)get_u32(e + 12), t->role, t->storage, t->rows, t->cols);
        t->offset = get_u64(e + 16);
        t->bytes = get_u64(e + 24);
        if (t->bytes != tensor_bytes(t, group))
            REJECT("tensor %d has %llu bytes, its shape needs %llu", i, (unsigned long long)t->bytes,
                   (unsigned long long)tensor_bytes(t, group));
        if (t->offset % ALIGN != 0 || t->offset < end || t->offset > size || t->bytes > size - t->offset)
            REJECT("tensor %d at offset %llu (+%llu) is misaligned, overlaps or runs past the end",
                   i, (unsigned long long)t->offset, (unsigned long long)t->bytes);
        end = t->offset + t->bytes;
    }
    if (end != size) REJECT("%llu bytes after the last tensor", (unsigned long long)(size - end));
    return 0;
#undef REJECT
}

/* Points m at the tensors of the mapping at b. Returns 0, or -1 when out of memory. */
static int map_model(ModelWeights *m, const FileInfo *h, const Tensor *t, const uint8_t *b) {
    const ModelConfig *c = &h->cfg;
    if (!(m->layers = calloc((size_t)c->n_layers, sizeof *m->layers))) return -1;
    m->cfg = *c;
    m->quant = h->quant;
    m->bos_id = h->bos_id, m->eos_id = h->eos_id;
    memcpy(m->chat_template, h->chat_template, TEMPLATE_BYTES);
    if (h->embedding_int8) {
        Linear emb;
        map_linear(&emb, t, b, h->quant.group);
        m->embedding_i8 = emb.i8;
    } else {
        m->token_embedding = (const float *)(b + t[0].offset);
    }
    const float *rms_att = (const float *)(b + t[1].offset), *rms_ffn = (const float *)(b + t[2].offset);
    m->rms_final = (const float *)(b + t[3].offset);
    t += 4;
    if (h->shared) {
        m->cls = (Linear){STORE_F32, QUANT_F32, c->vocab_size, c->dim, m->token_embedding, {0}, {0}};
    } else {
        map_linear(&m->cls, t++, b, h->quant.group);
    }
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        L->rms_att = rms_att + (size_t)l * c->dim;
        L->rms_ffn = rms_ffn + (size_t)l * c->dim;
        Linear *lins[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w2, &L->w3};
        for (int j = 0; j < 7; j++) map_linear(lins[j], t++, b, h->quant.group);
    }
    if (h->tokenizer_size) {
        m->tokenizer = b + t->offset;
        m->tokenizer_size = h->tokenizer_size;
        t++;
    }
    m->n_stop = h->n_stop;
    if (h->n_stop) memcpy(m->stop_ids, b + t->offset, 4 * (size_t)h->n_stop);
    return 0;
}

/* Checks the file mapped at b[0..size), all of it, and points m at its tensors. Returns 0,
 * or -1 with the reason in why (and nothing in m to free). */
static int check_mapping(ModelWeights *m, const uint8_t *b, size_t size, char *why, size_t len) {
    FileInfo h;
    Tensor *tensors = NULL;
    int rc = read_header(b, size, &h, why, len);
    if (rc == 0 && !(tensors = malloc(max_tensors(&h.cfg) * sizeof *tensors)))
        rc = (snprintf(why, len, "out of memory"), -1);
    /* The tensor table must list exactly the tensors the header implies. */
    if (rc == 0) rc = read_table(b, size, &h, tensors, model_tensors(&h, NULL, tensors), why, len);
    /* The layout is sound: point the model at the mapping, then check the values. */
    if (rc == 0 && map_model(m, &h, tensors, b) != 0) rc = (snprintf(why, len, "out of memory"), -1);
    if (rc == 0) rc = check_values(m, h.shared, why, len);
    for (int k = 0; rc == 0 && k < m->n_stop; k++)
        if (m->stop_ids[k] < 0 || m->stop_ids[k] >= m->cfg.vocab_size)
            rc = (snprintf(why, len, "end-of-text id %d is not a token of the vocabulary (0..%d)", m->stop_ids[k],
                           m->cfg.vocab_size - 1), -1);
    free(tensors);
    if (rc != 0) {
        free(m->layers);
        memset(m, 0, sizeof *m);
    }
    return rc;
}

int qrz_open(ModelWeights *m, const char *path, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (!little_endian_host()) return fail(err, errlen, path, ".qrz files are little-endian; this host is not");
    void *map;
    size_t size;
    if (map_file(path, &map, &size, err, errlen) != 0) return -1;
    char why[400];
    if (check_mapping(m, map, size, why, sizeof why) != 0) {
        unmap_file(map, size);
        snprintf(err, errlen, "%s: not a valid .qrz file: %s", path, why);
        return -1;
    }
    m->qrz_map = map;
    m->qrz_size = size;
    return 0;
}
