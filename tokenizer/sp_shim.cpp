// tokenizer/sp_shim.cpp - the C API of sp_shim.h over sentencepiece::SentencePieceProcessor.
// The only C++ file of the project: it converts Status objects and exceptions into
// return codes and messages, and nothing more.
#include "tokenizer/sp_shim.h"

#include <sentencepiece_processor.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

struct SpModel {
    sentencepiece::SentencePieceProcessor sp;
};

extern "C" SpModel *sp_model_parse(const void *bytes, size_t size, char *err, size_t errlen) {
    try {
        std::unique_ptr<SpModel> m(new SpModel);
        const auto status =
            m->sp.LoadFromSerializedProto(std::string(static_cast<const char *>(bytes), size));
        if (!status.ok()) {
            std::snprintf(err, errlen, "%s", status.ToString().c_str());
            return nullptr;
        }
        return m.release();
    } catch (const std::exception &e) {
        std::snprintf(err, errlen, "sentencepiece: %s", e.what());
        return nullptr;
    }
}

extern "C" void sp_model_free(SpModel *m) { delete m; }

extern "C" int sp_model_vocab_size(const SpModel *m) { return m->sp.GetPieceSize(); }
extern "C" int sp_model_bos_id(const SpModel *m) { return m->sp.bos_id(); }
extern "C" int sp_model_eos_id(const SpModel *m) { return m->sp.eos_id(); }

// IdToPiece returns a reference into the model, so the pointer lives as long as the model.
extern "C" const char *sp_model_piece(const SpModel *m, int id) {
    return m->sp.IdToPiece(id).c_str();
}
extern "C" int sp_model_is_control(const SpModel *m, int id) { return m->sp.IsControl(id); }

extern "C" int sp_model_encode(const SpModel *m, const char *text, int **ids, char *err,
                               size_t errlen) {
    try {
        std::vector<int> out;
        const auto status = m->sp.Encode(text, &out);
        if (!status.ok()) {
            std::snprintf(err, errlen, "sentencepiece: %s", status.ToString().c_str());
            return -1;
        }
        if (out.size() > static_cast<size_t>(INT_MAX) - 1) {
            std::snprintf(err, errlen, "text encodes to too many tokens (%zu)", out.size());
            return -1;
        }
        *ids = static_cast<int *>(std::malloc((out.size() ? out.size() : 1) * sizeof(int)));
        if (*ids == nullptr) {
            std::snprintf(err, errlen, "out of memory for %zu token ids", out.size());
            return -1;
        }
        for (size_t i = 0; i < out.size(); i++) (*ids)[i] = out[i];
        return static_cast<int>(out.size());
    } catch (const std::exception &e) {
        std::snprintf(err, errlen, "sentencepiece: %s", e.what());
        return -1;
    }
}
