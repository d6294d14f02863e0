/* The pretraining corpus of the training-only stages (NLVR_pretrain.py,
 * Grounding_bbox_pretrain.py): JSON-lines records read once, made into
 * samples by the pretraining pipeline (finetune_task.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/finetune_task.h"

/* Every record of `files`, parsed once and kept. */
static xv_status read_records(const xv_path_list *files, const char *label, xv_ft_corpus *c) {
    xv_jsonl_shard shard = {0};
    xv_jsonl_reader *r = NULL;
    xv_status st = xv_file_list_expand((const char *const *)files->paths, files->n, &c->files);
    if (st == XV_OK) st = xv_jsonl_shard_make(c->files.n, 0, 1, 0, 1, &shard);
    const xv_jsonl_opts opts = {.label = label, .warn_budget = &c->warn_budget};
    if (st == XV_OK) st = xv_jsonl_open(&c->files, &shard, &opts, &r);
    int64_t cap = 0;
    while (st == XV_OK) {
        cJSON *o;
        xv_jsonl_where w;
        if ((st = xv_jsonl_next(r, &o, &w)) != XV_OK || !o) break;
        if (c->n == cap) {
            cap = cap ? 2 * cap : 1024;
            cJSON **rs = realloc(c->recs, (size_t)cap * sizeof *rs);
            if (rs) c->recs = rs;
            xv_jsonl_where *ws = realloc(c->where, (size_t)cap * sizeof *ws);
            if (ws) c->where = ws;
            if (!rs || !ws) {
                cJSON_Delete(o);
                st = xv_error(XV_ERR_NOMEM, "out of memory");
                break;
            }
        }
        c->recs[c->n] = o, c->where[c->n] = w; /* w.path points into c->files */
        c->n++;
    }
    xv_jsonl_close(r);
    xv_jsonl_shard_free(&shard);
    return st;
}

xv_status xv_ft_corpus_open(xv_ft *f, const xv_pretrain_config *data, const char *label, xv_ft_corpus *c) {
    memset(c, 0, sizeof *c);
    c->warn_budget = 100;
    XV_TRY(read_records(&f->cfg.train_file, label, c));
    xv_sample_shared *sh = &c->sh;
    sh->cfg = *data;
    sh->cfg.image_root = f->cfg.image_root;
    sh->cfg.allow_outside_root = f->cfg.allow_outside_root;
    sh->cfg.image_res = f->res;
    sh->cfg.patch_size = f->m->cfg.vision.region_stride;
    sh->cfg.max_words = f->cfg.max_words;
    sh->cfg.max_tokens = f->cfg.max_tokens;
    sh->tok = f->tok;
    sh->special = xv_tokenizer_special_ids(f->tok);
    sh->n_patch = f->res / sh->cfg.patch_size;
    /* the MLM masks are made and ignored, as officially: no whole-word flags needed */
    sh->cfg.masking.whole_word = false;
    sh->cfg.masking.mask_id = sh->special.mask;
    sh->cfg.masking.vocab_size = xv_tokenizer_vocab_size(f->tok);
    c->s = (xv_sampler){.sh = sh, .rng = &f->aug, .count = &c->count, .warn_budget = &c->warn_budget, .label = label};
    return XV_OK;
}

void xv_ft_corpus_free(xv_ft_corpus *c) {
    for (int64_t i = 0; i < c->n; i++) cJSON_Delete(c->recs[i]);
    free(c->recs), free(c->where);
    xv_file_list_free(&c->files);
    memset(c, 0, sizeof *c);
}
