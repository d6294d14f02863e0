/* libFuzzer target: one pretraining JSON record (after a flags byte) turned
 * into an image-text sample and a region sample, as the loader's workers do:
 * base64 image decoding, captions (string or list), pre_caption or
 * pre-tokenized splitting, masking, elems with bb/caption/attributes, the
 * region crop, box mapping and image_atts. Also feeds the raw bytes to the
 * base64 decoder.
 * Flags byte: bit 0 tokenized, bit 1 careful_hflip, bits 2-3 max_regions - 1.
 * Properties: no crash, no sanitizer report, no leak; a sample that is
 * accepted satisfies the batch invariants (trapped otherwise).
 * Built by fuzz/CMakeLists.txt (smoke runs and `make fuzz`). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "data/base64.h"
#include "data/pretrain_sample.h"

enum { RES = 32, PS = 16, NP = RES / PS, L = 8, M = 3, MAX_REGIONS = 4 };

static const char k_vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nred\ncar\ndog\n##s\nthe\nleft\n";

static xv_tokenizer *g_tok;
static bool g_cont[64];

static void check_row(const xv_text_row *r, int cls) {
    if (r->ids[0] != cls || !r->atts[0] || !r->atts[1]) abort();
    int n = 0;
    while (n < L && r->atts[n]) n++;
    for (int k = 0; k < M && r->masked_ids[k] != -100; k++)
        if (r->masked_pos[k] < 1 || r->masked_pos[k] >= n || r->masked_ids[k] != r->ids[r->masked_pos[k]]) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok) {
        if (xv_tokenizer_from_memory(k_vocab, sizeof k_vocab - 1, "fuzz-vocab", &g_tok) != XV_OK) abort();
        for (int i = 0; i < xv_tokenizer_vocab_size(g_tok); i++)
            g_cont[i] = !strncmp(xv_tokenizer_id_to_token(g_tok, i), "##", 2);
    }
    uint8_t *raw;
    size_t raw_n;
    if (xv_base64_decode((const char *)data, size, 1 << 20, "fuzz", &raw, &raw_n) == XV_OK) free(raw);
    if (size < 1) return 0;
    uint8_t flags = data[0];
    cJSON *rec = cJSON_ParseWithLength((const char *)data + 1, size - 1);
    if (!cJSON_IsObject(rec)) {
        cJSON_Delete(rec);
        return 0;
    }
    xv_sample_shared sh = {.cfg = xv_pretrain_config_default(XV_PRETRAIN_REGIONS), .tok = g_tok, .n_patch = NP};
    sh.cfg.image_res = RES;
    sh.cfg.patch_size = PS;
    sh.cfg.max_tokens = L;
    sh.cfg.masking.max_masks = M;
    sh.cfg.tokenized = flags & 1;
    sh.cfg.careful_hflip = flags & 2;
    sh.cfg.max_regions = 1 + ((flags >> 2) & 3);
    sh.special = xv_tokenizer_special_ids(g_tok);
    sh.cfg.masking.mask_id = sh.special.mask;
    sh.cfg.masking.vocab_size = xv_tokenizer_vocab_size(g_tok);
    sh.cfg.masking.is_continuation = g_cont;
    xv_rng rng;
    xv_rng_seed(&rng, size);
    xv_pretrain_counters count = {0};
    int budget = 0; /* silent */
    xv_sampler c = {.sh = &sh, .rng = &rng, .count = &count, .warn_budget = &budget, .label = "fuzz"};
    xv_jsonl_where w = {.path = "fuzz", .line = 1};

    static float image[3 * RES * RES];
    static int32_t ids[MAX_REGIONS][L], atts[MAX_REGIONS][L], masked[MAX_REGIONS][L], pos[MAX_REGIONS][M],
        mids[MAX_REGIONS][M], image_atts[MAX_REGIONS][1 + NP * NP], is_image[MAX_REGIONS];
    static float target[MAX_REGIONS][4];
    xv_text_row rows[MAX_REGIONS];
    for (int k = 0; k < MAX_REGIONS; k++) rows[k] = (xv_text_row){ids[k], atts[k], masked[k], pos[k], mids[k]};

    if (xv_sample_image_text(&c, rec, &w, image, rows[0]) == XV_SAMPLE_OK) check_row(&rows[0], sh.special.cls);
    xv_region_texts t = {.rows = rows, .image_atts = &image_atts[0][0], .target = &target[0][0], .is_image = is_image};
    if (xv_sample_region(&c, rec, &w, image, &t) == XV_SAMPLE_OK) {
        if (t.n < 1 || t.n > sh.cfg.max_regions) abort();
        for (int k = 0; k < t.n; k++) {
            check_row(&rows[k], sh.special.cls);
            int ones = 0;
            for (int j = 1; j <= NP * NP; j++) ones += image_atts[k][j];
            if (image_atts[k][0] != 1 || ones < 1) abort();
            for (int j = 0; j < 4; j++)
                if (!(target[k][j] >= 0 && target[k][j] <= 1)) abort();
        }
    }
    for (int i = 0; i < 3 * RES * RES; i++)
        if (!isfinite(image[i])) abort();
    xv_ids_free(&c.scratch);
    cJSON_Delete(rec);
    return 0;
}
