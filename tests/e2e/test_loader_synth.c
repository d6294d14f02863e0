/* The pretraining loader on the generated world of `xvlm synth` (the demo's
 * data): every record of pretrain_captions.jsonl and pretrain_regions.jsonl
 * becomes a sample, nothing is skipped, no text has an unknown token, and the
 * batches keep the loader's invariants. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/pretrain_data.h"
#include "data/synth.h"
#include "data/tokenizer.h"
#include "testutil.h"

enum { N_TRAIN = 16 };

static char g_dir[64];

static xv_pretrain_config config(xv_pretrain_kind kind, const char *const *files, const char *vocab) {
    xv_pretrain_config c = xv_pretrain_config_default(kind);
    c.files = files;
    c.n_files = 1;
    c.vocab_path = vocab;
    c.image_root = g_dir;
    c.image_key = "image";
    c.is_image_rpath = true;
    c.num_workers = 2;
    c.repeat = false; /* one pass: every record exactly once */
    c.batch_size = kind == XV_PRETRAIN_IMAGES ? 4 : 16;
    c.max_images = 4;
    return c;
}

static bool in_list(const char *w, const char *const *list, int n) {
    for (int k = 0; k < n; k++)
        if (!strcmp(w, list[k])) return true;
    return false;
}

/* An object's text is attribute + " " + noun: size / colour / pattern words,
 * then one shape noun (the elem's caption alone would be just the noun).
 * 1: such a text, -1: a bare noun, 0: anything else (captions, relations). */
static int object_text(const xv_tokenizer *tok, const int32_t *ids, const int32_t *atts, int len) {
    int n = 1;
    while (n < len && atts[n]) n++;
    const char *last = xv_tokenizer_id_to_token(tok, ids[n - 1]);
    if (!in_list(last, xv_synth_shape_names, XV_SYNTH_N_SHAPES)) return 0;
    if (n == 2) return -1;
    for (int i = 1; i < n - 1; i++) {
        const char *w = xv_tokenizer_id_to_token(tok, ids[i]);
        if (!in_list(w, xv_synth_size_names, XV_SYNTH_N_SIZES) &&
            !in_list(w, xv_synth_colour_names, XV_SYNTH_N_COLOURS) &&
            !in_list(w, xv_synth_pattern_names, XV_SYNTH_N_PATTERNS))
            return 0;
    }
    return 1;
}

/* Reads the whole data set once; returns the samples seen. */
static int64_t one_pass(xv_pretrain_kind kind, const char *file, const char *vocab, const xv_tokenizer *tok) {
    const char *files[] = {file};
    xv_pretrain_config c = config(kind, files, vocab);
    xv_pretrain_loader *l;
    CHECK_OK(xv_pretrain_open(&c, 0, 1, 5, &l));
    if (!l) return -1;
    const int32_t unk = xv_tokenizer_special_ids(tok).unk, cls = xv_tokenizer_special_ids(tok).cls;
    int64_t images = 0, texts = 0, unknown = 0, bad = 0, with_attribute = 0, bare_nouns = 0;
    xv_pretrain_batch b;
    while (xv_pretrain_next(l, &b) == XV_OK && b.n_images > 0) {
        images += b.n_images;
        for (int r = 0; r < b.n_texts; r++, texts++) {
            const int32_t *ids = b.text_ids + r * b.text_len, *atts = b.text_atts + r * b.text_len;
            bad |= ids[0] != cls || !atts[1];
            for (int i = 0; i < b.text_len && atts[i]; i++) unknown += ids[i] == unk;
            if (kind != XV_PRETRAIN_REGIONS) continue;
            const float *t = b.target_bbox + 4 * r;
            for (int j = 0; j < 4; j++) bad |= !(t[j] >= 0 && t[j] <= 1);
            bad |= b.image_atts[r * b.n_atts] != 1 || b.idx_to_group_img[r] >= b.n_images;
            int o = object_text(tok, ids, atts, b.text_len);
            with_attribute += o == 1;
            bare_nouns += o == -1;
        }
    }
    xv_pretrain_counters k = xv_pretrain_get_counters(l);
    printf("%s: %lld images, %lld texts (%lld object texts), %lld padded, %lld dropped\n",
           kind == XV_PRETRAIN_IMAGES ? "captions" : "regions", (long long)images, (long long)texts,
           (long long)with_attribute, (long long)k.padded_texts, (long long)k.dropped_texts);
    const char *what = kind == XV_PRETRAIN_IMAGES ? "captions" : "regions";
    CHECK(images == N_TRAIN && k.samples == N_TRAIN && k.lines == N_TRAIN, "%s: %lld of %d records became samples",
          what, (long long)k.samples, N_TRAIN);
    CHECK(k.bad_json + k.unreadable_files + k.missing_image + k.corrupt_image + k.bad_caption + k.bad_box +
                  k.no_region ==
              0,
          "%s: nothing skipped", what);
    CHECK(unknown == 0 && bad == 0, "%s: %lld texts, %lld [UNK], invariants hold", what, (long long)texts,
          (long long)unknown);
    if (kind == XV_PRETRAIN_REGIONS)
        CHECK(with_attribute > 0 && bare_nouns == 0, "regions: %lld object texts = attribute + noun, %lld bare nouns",
              (long long)with_attribute, (long long)bare_nouns);
    xv_pretrain_close(l);
    return k.samples;
}

int main(void) {
    if (!xv_test_scratch_dir("xv_loader_synth", g_dir, sizeof g_dir)) return 1;
    xv_synth_params p = xv_synth_default_params();
    p.train_images = N_TRAIN;
    p.test_images = 2;
    p.size = 128;
    p.threads = 1;
    xv_synth_stats st;
    CHECK_OK(xv_synth_generate(&p, g_dir, &st));
    char vocab[128], caps[128], regs[128];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", g_dir);
    snprintf(caps, sizeof caps, "%s/pretrain_captions.jsonl", g_dir);
    snprintf(regs, sizeof regs, "%s/pretrain_regions.jsonl", g_dir);
    xv_tokenizer *tok = NULL;
    CHECK_OK(xv_tokenizer_load(vocab, &tok));
    if (tok) {
        one_pass(XV_PRETRAIN_IMAGES, caps, vocab, tok);
        one_pass(XV_PRETRAIN_REGIONS, regs, vocab, tok);
        xv_tokenizer_free(tok);
    }
    xv_test_remove_dir(g_dir);
    return xv_test_finish("test_loader_synth");
}
