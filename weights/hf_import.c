/*
 * weights/hf_import.c - a Hugging Face directory to a .qrz file (weights/hf_import.h).
 */
#include "weights/hf_import.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "weights/json.h"
#include "weights/qrz.h"
#include "weights/rotate.h"

const char *hf_chat_template_hint(const char *jinja) {
    if (strstr(jinja, "<|start_header_id|>")) return "llama3";
    if (strstr(jinja, "<|im_start|>") && strstr(jinja, "named SmolLM")) return "smollm2";
    if (strstr(jinja, "<|im_start|>")) return "chatml";
    if (strstr(jinja, "<|user|>") || strstr(jinja, "<|assistant|>")) return "zephyr";
    if (strstr(jinja, "[INST]")) return "llama2";
    return "";
}

/* chat_template is a string, or a list of {name, template} whose "default" counts. */
static const char *template_text(const JsonDoc *doc, const JsonValue *t) {
    if (t && t->type == JSON_STRING) return t->text;
    for (const JsonValue *e = t && t->type == JSON_ARRAY ? json_first(doc, t) : NULL; e; e = json_next(doc, e)) {
        const JsonValue *name = json_get(doc, e, "name"), *text = json_get(doc, e, "template");
        if (name && name->type == JSON_STRING && !strcmp(name->text, "default") && text && text->type == JSON_STRING)
            return text->text;
    }
    return NULL;
}

int hf_chat_template_of_dir(const char *dir, const char **name, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    *name = "";
    void *map;
    size_t size;
    if (access(path, F_OK) != 0) return 0; /* no hints: not an error */
    if (map_file(path, &map, &size, err, errlen) != 0) return -1;
    JsonDoc doc;
    char why[256];
    int rc = json_parse(&doc, map, size, JSON_MODEL_FILE_LIMITS, why, sizeof why);
    unmap_file(map, size);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    const char *text = template_text(&doc, json_get(&doc, &doc.values[0], "chat_template"));
    if (text) *name = hf_chat_template_hint(text); /* a static string: doc can go */
    json_free(&doc);
    return 0;
}

/* ------------------------------------------------------------------ the row source */

typedef struct {
    const HfModel *m;
    const HfImportOptions *o;
} Source;

/* The directory's tensor holding .qrz tensor `role`'s row `row`, and the row within it. */
static int locate(const HfModel *m, int role, int row, int *hf_row) {
    static const HfRole linears[7] = {HF_WQ, HF_WK, HF_WV, HF_WO, HF_W1, HF_W2, HF_W3};
    *hf_row = row;
    switch (role) {
    case QRZ_ROLE_EMBEDDING: return hf_model_find(m, HF_EMBEDDING, -1);
    case QRZ_ROLE_RMS_ATT: *hf_row = 0; return hf_model_find(m, HF_RMS_ATT, row); /* a row per layer */
    case QRZ_ROLE_RMS_FFN: *hf_row = 0; return hf_model_find(m, HF_RMS_FFN, row);
    case QRZ_ROLE_RMS_FINAL: return hf_model_find(m, HF_RMS_FINAL, -1);
    case QRZ_ROLE_CLASSIFIER: { /* a tied model's classifier is its embedding */
        const int i = hf_model_find(m, HF_CLASSIFIER, -1);
        return i >= 0 ? i : hf_model_find(m, HF_EMBEDDING, -1);
    }
    default: return hf_model_find(m, linears[(role - QRZ_ROLE_LINEAR) % 7], (role - QRZ_ROLE_LINEAR) / 7);
    }
}

static int read_rows(void *ctx, int role, int row0, int n, float *out, char *err, size_t errlen) {
    const HfModel *m = ((const Source *)ctx)->m;
    for (int k = 0; k < n;) {
        int hf_row;
        const int i = locate(m, role, row0 + k, &hf_row);
        const HfTensor *t = &m->tensors[i];
        const int take = role == QRZ_ROLE_RMS_ATT || role == QRZ_ROLE_RMS_FFN ? 1 : n - k;
        if (hf_model_read_rows(m, i, hf_row, take, out + (size_t)k * t->cols, err, errlen) != 0) return -1;
        if (hf_row + take == t->rows) hf_model_release(m, i); /* done with its pages */
        k += take;
    }
    return 0;
}

static void progress(void *ctx, int i, int n, uint64_t bytes, uint64_t file_bytes) {
    const HfImportOptions *o = ((const Source *)ctx)->o;
    o->progress(o->progress_ctx, i, n, bytes, file_bytes);
}

int hf_import(const HfModel *m, const char *dir, const char *out_path, const HfImportOptions *o,
              char *template_used, char *err, size_t errlen) {
    const char *name = o->chat_template;
    if (!name && hf_chat_template_of_dir(dir, &name, err, errlen) != 0) return -1;
    snprintf(template_used, 16, "%s", name);
    void *tokenizer;
    size_t tokenizer_size;
    if (map_file(m->tokenizer_path, &tokenizer, &tokenizer_size, err, errlen) != 0) return -1;
    Source src = {m, o};
    const QrzSource directory = {m->config.cfg, o->quant, m->config.tied, m->config.bos_id,
                                 m->config.eos_id, m->config.stop_ids, m->config.n_stop, name, tokenizer,
                                 tokenizer_size, read_rows, o->progress ? progress : NULL, &src};
    QrzSource s = directory;
    RotatedSource rotated; /* docs/SPEC.md section 7: the rows rotated as they are read */
    if (o->quant.rotate) rotated_source_init(&rotated, &directory, &s);
    const int rc = qrz_write_source(&s, out_path, err, errlen);
    if (o->quant.rotate) rotated_source_free(&rotated);
    unmap_file(tokenizer, tokenizer_size);
    return rc;
}
