#include "train/pretrain_run_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/yaml_tree.h"

/* Reading context: the file (for messages) and where notes go. */
typedef struct {
    const char *path;
    FILE *notes;
} ctx;

static xv_status type_error(const ctx *c, const char *key, const xv_yaml_node *n, const char *want) {
    return xv_error(XV_ERR_FORMAT, "%s:%d: \"%s\" must be %s (got %s%s%s%s)", c->path, n->line, key, want,
                    xv_yaml_kind_name(n->kind), n->text ? " \"" : "", n->text ? n->text : "", n->text ? "\"" : "");
}

/* Typed getters: absent keys keep the default; present ones must have the type. */
static xv_status get_bool(const ctx *c, const xv_yaml_node *map, const char *key, const char *full, bool *out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_BOOL) return type_error(c, full, n, "true or false");
    *out = n->b;
    return XV_OK;
}

static xv_status get_i64(const ctx *c, const xv_yaml_node *map, const char *key, const char *full, int64_t lo,
                         int64_t *out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_INT) return type_error(c, full, n, "an integer");
    if (n->i < lo)
        return xv_error(XV_ERR_INVALID_ARG, "%s:%d: \"%s\" must be >= %lld (got %lld)", c->path, n->line, full,
                        (long long)lo, (long long)n->i);
    *out = n->i;
    return XV_OK;
}

static xv_status get_int(const ctx *c, const xv_yaml_node *map, const char *key, const char *full, int lo,
                         int *out) {
    int64_t v = *out;
    XV_TRY(get_i64(c, map, key, full, lo, &v));
    if (v > 1000000000)
        return xv_error(XV_ERR_INVALID_ARG, "%s: \"%s\" = %lld is too large", c->path, full, (long long)v);
    *out = (int)v;
    return XV_OK;
}

static xv_status get_num(const ctx *c, const xv_yaml_node *map, const char *key, const char *full, double lo,
                         double hi, double *out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_INT && n->kind != XV_YAML_FLOAT) return type_error(c, full, n, "a number");
    if (!(n->f >= lo && n->f <= hi))
        return xv_error(XV_ERR_INVALID_ARG, "%s:%d: \"%s\" = %g outside [%g, %g]", c->path, n->line, full, n->f, lo,
                        hi);
    *out = n->f;
    return XV_OK;
}

static xv_status get_str(const ctx *c, const xv_yaml_node *map, const char *key, const char *full, char **out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_STRING) return type_error(c, full, n, "a string");
    char *s = strdup(n->text);
    if (!s) return xv_error(XV_ERR_NOMEM, "out of memory");
    free(*out);
    *out = s;
    return XV_OK;
}

/* [lo, hi] with 0 < lo <= hi <= 1 (an area fraction range). */
static xv_status get_fraction_range(const ctx *c, const xv_yaml_node *map, const char *key, const char *full,
                                    double out[2]) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_SEQ || n->n != 2) return type_error(c, full, n, "a list of two numbers [min, max]");
    double v[2];
    for (int i = 0; i < 2; i++) {
        const xv_yaml_node *e = n->items[i];
        if (e->kind != XV_YAML_INT && e->kind != XV_YAML_FLOAT) return type_error(c, full, e, "a number");
        v[i] = e->f;
    }
    if (!(v[0] > 0 && v[0] <= v[1] && v[1] <= 1))
        return xv_error(XV_ERR_INVALID_ARG, "%s:%d: \"%s\" = [%g, %g] must satisfy 0 < min <= max <= 1", c->path,
                        n->line, full, v[0], v[1]);
    out[0] = v[0], out[1] = v[1];
    return XV_OK;
}

/* A list of strings, or one string (a single file or directory). */
static xv_status get_str_list(const ctx *c, const xv_yaml_node *map, const char *key, char ***out, int *n_out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_SEQ && n->kind != XV_YAML_STRING) return type_error(c, key, n, "a list of paths");
    int k = n->kind == XV_YAML_SEQ ? n->n : 1;
    char **v = calloc((size_t)k + 1, sizeof *v);
    if (!v) return xv_error(XV_ERR_NOMEM, "out of memory");
    *out = v, *n_out = k;
    for (int i = 0; i < k; i++) {
        const xv_yaml_node *e = n->kind == XV_YAML_SEQ ? n->items[i] : n;
        if (e->kind != XV_YAML_STRING) return type_error(c, key, e, "a list of paths (strings)");
        if (!(v[i] = strdup(e->text))) return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    return XV_OK;
}

static xv_status get_map(const ctx *c, const xv_yaml_node *root, const char *key, const xv_yaml_node **out) {
    *out = xv_yaml_get(root, key);
    if (*out && (*out)->kind != XV_YAML_MAP) return type_error(c, key, *out, "a mapping ({key: value, ...})");
    return XV_OK;
}

/* Report the keys of `map` that are not in `known` (NULL-terminated). */
static void note_unknown(const ctx *c, const xv_yaml_node *map, const char *prefix, const char *const *known) {
    if (!map || !c->notes) return;
    for (int i = 0; i < map->n; i++) {
        bool found = false;
        for (const char *const *k = known; *k && !found; k++) found = !strcmp(*k, map->keys[i]);
        if (!found)
            fprintf(c->notes, "note: %s:%d: unknown key \"%s%s\" ignored\n", c->path, map->items[i]->line, prefix,
                    map->keys[i]);
    }
}

static void note_ignored(const ctx *c, const xv_yaml_node *map, const char *key, const char *prefix,
                         const char *why) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (n && c->notes) fprintf(c->notes, "note: %s:%d: \"%s%s\" ignored: %s\n", c->path, n->line, prefix, key, why);
}

static bool file_exists(const char *p) {
    FILE *f = fopen(p, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Official configs name files relative to the repository root: try the
 * YAML's folder, its parent, then the working directory. */
static xv_status resolve(const char *yaml_path, const char *rel, char **out) {
    size_t cap = strlen(yaml_path) + strlen(rel) + 8;
    char *dir = strdup(yaml_path), *buf = malloc(cap);
    if (!dir || !buf) {
        free(dir), free(buf);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    for (int i = 0; i < 3; i++) {
        if (rel[0] == '/' && i < 2) continue;
        if (i == 0) snprintf(buf, cap, "%s/%s", dir, rel);
        if (i == 1) snprintf(buf, cap, "%s/../%s", dir, rel);
        if (i == 2) snprintf(buf, cap, "%s", rel);
        if (file_exists(buf)) {
            free(dir);
            *out = buf;
            return XV_OK;
        }
    }
    free(dir), free(buf);
    return xv_error(XV_ERR_IO, "%s: %s not found next to the YAML, in its parent folder or the working directory",
                    yaml_path, rel);
}

/* ---- the model ---- */

static xv_status read_model(const ctx *c, const xv_yaml_node *root, xv_model_config *m) {
    const xv_yaml_node *mc = xv_yaml_get(root, "model_config");
    if (!mc) {
        if (!xv_yaml_get(root, "vision_config") || !xv_yaml_get(root, "text_config"))
            return xv_error(XV_ERR_MISSING,
                            "%s: no model: give vision_config + text_config (official JSON files) or model_config",
                            c->path);
        return xv_config_load(c->path, m); /* the official layout, read by model/config.h */
    }
    if (mc->kind == XV_YAML_STRING) {
        char *p = NULL;
        XV_TRY(resolve(c->path, mc->text, &p));
        xv_status st = xv_config_load(p, m);
        free(p);
        if (st != XV_OK) return xv_error_wrap(st, "%s:%d: model_config", c->path, mc->line);
    } else if (mc->kind == XV_YAML_MAP) {
        char *json = xv_yaml_to_json(mc);
        if (!json) return xv_error(XV_ERR_NOMEM, "out of memory");
        char label[512];
        snprintf(label, sizeof label, "%s:%d: model_config", c->path, mc->line);
        xv_status st = xv_config_parse_json(json, label, m);
        free(json);
        XV_TRY(st);
    } else {
        return type_error(c, "model_config", mc, "a config.json path or a mapping");
    }
    /* The YAML's own model keys must agree with (or refine) the model config. */
    int image_res = m->vision.image_res, patch = m->vision.region_stride;
    XV_TRY(get_int(c, root, "image_res", "image_res", 1, &image_res));
    XV_TRY(get_int(c, root, "patch_size", "patch_size", 1, &patch));
    if (image_res != m->vision.image_res || patch != m->vision.region_stride)
        return xv_error(XV_ERR_INVALID_ARG, "%s: image_res %d / patch_size %d differ from model_config's %d / %d",
                        c->path, image_res, patch, m->vision.image_res, m->vision.region_stride);
    XV_TRY(get_int(c, root, "embed_dim", "embed_dim", 1, &m->embed_dim));
    double temp = m->temp;
    XV_TRY(get_num(c, root, "temp", "temp", 1e-6, 10, &temp));
    m->temp = (float)temp;
    xv_status st = xv_config_validate(m);
    return st == XV_OK ? XV_OK : xv_error_wrap(st, "%s", c->path);
}

/* ---- data sources ---- */

static xv_status read_source(const ctx *c, const xv_yaml_node *root, const char *name, xv_pretrain_source_config *s,
                             xv_pretrain_run_config *rc, bool regions) {
    static const char *const known_images[] = {"image_key", "is_image_rpath", "caption_key", "tokenized",
                                               "batch_size", "num_workers", "image_root", "crop_scale", NULL};
    static const char *const known_regions[] = {"image_key", "is_image_rpath", "caption_key", "tokenized",
                                                "batch_size", "num_workers", "image_root", "iter_perc",
                                                "max_images", "max_regions", "min_perc_in_image", "careful_hflip",
                                                NULL};
    const xv_yaml_node *m;
    XV_TRY(get_map(c, root, name, &m));
    if (!m) return XV_OK;
    char full[64];
#define KEY(k) (snprintf(full, sizeof full, "%s.%s", name, k), full)
    XV_TRY(get_str(c, m, "image_key", KEY("image_key"), &s->image_key));
    XV_TRY(get_str(c, m, "caption_key", KEY("caption_key"), &s->caption_key));
    XV_TRY(get_bool(c, m, "is_image_rpath", KEY("is_image_rpath"), &s->is_image_rpath));
    XV_TRY(get_bool(c, m, "tokenized", KEY("tokenized"), &s->tokenized));
    XV_TRY(get_int(c, m, "batch_size", KEY("batch_size"), 2, &s->batch_size));
    XV_TRY(get_int(c, m, "num_workers", KEY("num_workers"), 0, &s->num_workers));
    XV_TRY(get_str(c, m, "image_root", KEY("image_root"), &s->image_root));
    if (!regions) XV_TRY(get_fraction_range(c, m, "crop_scale", KEY("crop_scale"), rc->crop_scale));
    if (regions) {
        XV_TRY(get_num(c, m, "iter_perc", KEY("iter_perc"), 0, 1, &rc->iter_perc));
        XV_TRY(get_int(c, m, "max_images", KEY("max_images"), 1, &rc->max_images));
        XV_TRY(get_int(c, m, "max_regions", KEY("max_regions"), 1, &rc->max_regions));
        XV_TRY(get_num(c, m, "min_perc_in_image", KEY("min_perc_in_image"), 0, 1, &rc->min_perc_in_image));
        XV_TRY(get_bool(c, m, "careful_hflip", KEY("careful_hflip"), &rc->careful_hflip));
    }
#undef KEY
    snprintf(full, sizeof full, "%s.", name);
    note_unknown(c, m, full, regions ? known_regions : known_images);
    return XV_OK;
}

static xv_status source_defaults(xv_pretrain_source_config *s, int batch) {
    s->image_key = strdup("binary");
    s->caption_key = strdup("caption");
    s->is_image_rpath = false;
    s->tokenized = false;
    s->batch_size = batch;
    s->num_workers = 4;
    if (!s->image_key || !s->caption_key) return xv_error(XV_ERR_NOMEM, "out of memory");
    return XV_OK;
}

/* ---- optimisation ---- */

static xv_status read_optim(const ctx *c, const xv_yaml_node *root, xv_pretrain_run_config *rc) {
    static const char *const known_opt[] = {"opt", "lr", "weight_decay", "lr_mult", NULL};
    static const char *const known_sched[] = {"sched", "lr", "epochs", "num_warmup_steps", NULL};
    const xv_yaml_node *o, *s, *a;
    XV_TRY(get_map(c, root, "optimizer", &o));
    XV_TRY(get_map(c, root, "schedular", &s));
    XV_TRY(get_map(c, root, "accelerator", &a));
    char *name = NULL;
    XV_TRY(get_str(c, o, "opt", "optimizer.opt", &name));
    bool bad = name && strcmp(name, "adamW");
    free(name);
    name = NULL;
    if (bad) return xv_error(XV_ERR_UNSUPPORTED, "%s: optimizer.opt: only adamW is implemented", c->path);
    XV_TRY(get_num(c, o, "lr", "optimizer.lr", 0, 10, &rc->lr));
    XV_TRY(get_num(c, o, "weight_decay", "optimizer.weight_decay", 0, 10, &rc->weight_decay));
    XV_TRY(get_num(c, o, "lr_mult", "optimizer.lr_mult", 0, 1e6, &rc->lr_mult));
    note_unknown(c, o, "optimizer.", known_opt);

    XV_TRY(get_str(c, s, "sched", "schedular.sched", &name));
    bad = name && strcmp(name, "linear");
    free(name);
    if (bad) return xv_error(XV_ERR_UNSUPPORTED, "%s: schedular.sched: only linear is implemented", c->path);
    double sched_lr = rc->lr;
    XV_TRY(get_num(c, s, "lr", "schedular.lr", 0, 10, &sched_lr));
    if (sched_lr != rc->lr && c->notes)
        fprintf(c->notes, "note: %s: schedular.lr %g ignored: the schedule scales optimizer.lr (%g), as officially\n",
                c->path, sched_lr, rc->lr);
    XV_TRY(get_int(c, s, "epochs", "schedular.epochs", 1, &rc->epochs));
    const xv_yaml_node *w = xv_yaml_get(s, "num_warmup_steps");
    if (w) {
        if (w->kind == XV_YAML_INT) {
            if (w->i < 0) return type_error(c, "schedular.num_warmup_steps", w, "a step count >= 0 or a fraction");
            rc->warmup = (double)w->i, rc->warmup_is_fraction = false;
        } else if (w->kind == XV_YAML_FLOAT && w->f >= 0 && w->f < 1) {
            rc->warmup = w->f, rc->warmup_is_fraction = true;
        } else {
            return type_error(c, "schedular.num_warmup_steps", w, "an integer step count or a fraction in [0, 1)");
        }
    }
    note_unknown(c, s, "schedular.", known_sched);

    if (a) {
        XV_TRY(get_num(c, a, "CLIP_GRAD_NORM", "accelerator.CLIP_GRAD_NORM", -1, 1e9, &rc->clip_grad_norm));
        bool first = true;
        for (int i = 0; i < a->n && c->notes; i++)
            if (strcmp(a->keys[i], "CLIP_GRAD_NORM")) {
                fprintf(c->notes, "%s%s", first ? "note: ignored (fp32 in one process, no apex/DDP): accelerator." : ", ",
                        a->keys[i]);
                first = false;
            }
        if (!first) fputc('\n', c->notes);
    }
    return XV_OK;
}

/* ---- the whole file ---- */

static xv_status read_all(const ctx *c, const xv_yaml_node *root, xv_pretrain_run_config *rc) {
    static const char *const known[] = {
        "train_file", "train_file_regions", "train_dataset_size", "images", "regions", "vision_config",
        "text_config", "model_config", "image_res", "patch_size", "embed_dim", "temp", "max_words", "max_tokens",
        "mask_prob", "max_masks", "mask_whole_word", "skipgram_prb", "skipgram_size", "calc_image_bbox_loss",
        "bbox_loss", "optimizer", "schedular", "accelerator", "ckpt_frequent_step", "ckpt_frequent", "text_encoder", "vocab",
        "image_root", "use_clip_vit", "use_swin", "use_roberta", "load_bertL_by_sep", NULL};
    bool flag = false;
    XV_TRY(get_bool(c, root, "use_clip_vit", "use_clip_vit", &flag));
    if (flag) return xv_error(XV_ERR_UNSUPPORTED, "%s: use_clip_vit: only the Swin encoder is implemented", c->path);
    XV_TRY(get_bool(c, root, "use_roberta", "use_roberta", &flag));
    if (flag) return xv_error(XV_ERR_UNSUPPORTED, "%s: use_roberta: only BERT is implemented", c->path);
    note_ignored(c, root, "load_bertL_by_sep", "", "the text encoder starts from random or --init weights");
    XV_TRY(read_model(c, root, &rc->model));

    XV_TRY(get_str_list(c, root, "train_file", &rc->train_file, &rc->n_train_file));
    XV_TRY(get_str_list(c, root, "train_file_regions", &rc->train_file_regions, &rc->n_train_file_regions));
    XV_TRY(get_i64(c, root, "train_dataset_size", "train_dataset_size", 1, &rc->train_dataset_size));
    XV_TRY(read_source(c, root, "images", &rc->images, rc, false));
    XV_TRY(read_source(c, root, "regions", &rc->regions, rc, true));
    char *root_dir = NULL;
    XV_TRY(get_str(c, root, "image_root", "image_root", &root_dir));
    for (int k = 0; k < 2 && root_dir; k++) {
        xv_pretrain_source_config *s = k ? &rc->regions : &rc->images;
        if (!s->image_root && !(s->image_root = strdup(root_dir))) {
            free(root_dir);
            return xv_error(XV_ERR_NOMEM, "out of memory");
        }
    }
    free(root_dir);

    XV_TRY(get_str(c, root, "vocab", "vocab", &rc->vocab));
    if (!rc->vocab) {
        char *enc = NULL;
        XV_TRY(get_str(c, root, "text_encoder", "text_encoder", &enc));
        if (enc) {
            size_t n = strlen(enc) + 16;
            rc->vocab = malloc(n);
            if (rc->vocab) snprintf(rc->vocab, n, "%s/vocab.txt", enc);
            free(enc);
            if (!rc->vocab) return xv_error(XV_ERR_NOMEM, "out of memory");
        }
    }
    XV_TRY(get_int(c, root, "max_words", "max_words", 1, &rc->max_words));
    XV_TRY(get_int(c, root, "max_tokens", "max_tokens", 2, &rc->max_tokens));
    XV_TRY(get_num(c, root, "mask_prob", "mask_prob", 0, 1, &rc->mask_prob));
    XV_TRY(get_int(c, root, "max_masks", "max_masks", 1, &rc->max_masks));
    XV_TRY(get_bool(c, root, "mask_whole_word", "mask_whole_word", &rc->mask_whole_word));
    XV_TRY(get_num(c, root, "skipgram_prb", "skipgram_prb", 0, 1, &rc->skipgram_prb));
    XV_TRY(get_int(c, root, "skipgram_size", "skipgram_size", 1, &rc->skipgram_size));
    XV_TRY(get_bool(c, root, "calc_image_bbox_loss", "calc_image_bbox_loss", &rc->calc_image_bbox_loss));
    XV_TRY(get_bool(c, root, "bbox_loss", "bbox_loss", &rc->bbox_loss));
    XV_TRY(get_i64(c, root, "ckpt_frequent_step", "ckpt_frequent_step", 1, &rc->ckpt_frequent_step));
    XV_TRY(get_int(c, root, "ckpt_frequent", "ckpt_frequent", 1, &rc->ckpt_frequent));
    XV_TRY(read_optim(c, root, rc));
    note_unknown(c, root, "", known);

    /* What a run cannot do without. */
    if (!rc->n_train_file) return xv_error(XV_ERR_MISSING, "%s: key \"train_file\" is missing", c->path);
    if (rc->iter_perc > 0 && !rc->n_train_file_regions)
        return xv_error(XV_ERR_MISSING, "%s: regions.iter_perc is %g but \"train_file_regions\" is missing", c->path,
                        rc->iter_perc);
    if (!rc->train_dataset_size)
        return xv_error(XV_ERR_MISSING, "%s: key \"train_dataset_size\" is missing (it sets the schedule)", c->path);
    if (!rc->vocab) return xv_error(XV_ERR_MISSING, "%s: no vocabulary: set \"vocab\" or \"text_encoder\"", c->path);
    if (rc->max_tokens > rc->model.text.max_positions)
        return xv_error(XV_ERR_INVALID_ARG, "%s: max_tokens %d exceeds the text encoder's %d positions", c->path,
                        rc->max_tokens, rc->model.text.max_positions);
    if (rc->max_masks >= rc->max_tokens)
        return xv_error(XV_ERR_INVALID_ARG, "%s: max_masks %d must be below max_tokens %d", c->path, rc->max_masks,
                        rc->max_tokens);
    return XV_OK;
}

static xv_status read_text(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return xv_error(XV_ERR_IO, "%s: cannot open", path);
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    for (size_t k; s && (k = fread(s + n, 1, cap - n - 1, f)) > 0;) {
        n += k;
        if (n + 1 == cap) {
            char *t = cap < (1u << 24) ? realloc(s, cap *= 2) : NULL;
            if (!t) free(s);
            s = t;
        }
    }
    fclose(f);
    if (!s) return xv_error(XV_ERR_NOMEM, "%s: out of memory or larger than 16 MiB", path);
    s[n] = '\0';
    *out = s;
    return XV_OK;
}

xv_status xv_pretrain_run_config_load(const char *path, xv_pretrain_run_config *out, FILE *notes) {
    memset(out, 0, sizeof *out);
    xv_pretrain_run_config rc = {
        .iter_perc = 0.5, .max_images = 48, .max_regions = 5, .min_perc_in_image = 0.5,
        .crop_scale = {0.2, 1.0},
        .max_words = 40, .max_tokens = 40, .mask_prob = 0.25, .max_masks = 8, .mask_whole_word = true,
        .skipgram_prb = 0.2, .skipgram_size = 3, .lr = 1e-4, .weight_decay = 0.01, .lr_mult = 2, .epochs = 41,
        .warmup = 2500, .clip_grad_norm = 1.0, .ckpt_frequent_step = 50000, .ckpt_frequent = 5,
        .bbox_loss = true,
    };
    xv_status st = source_defaults(&rc.images, 128);
    if (st == XV_OK) st = source_defaults(&rc.regions, 128);
    if (st == XV_OK && !(rc.path = strdup(path))) st = xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) st = read_text(path, &rc.text);
    xv_yaml_node *root = NULL;
    if (st == XV_OK) st = xv_yaml_parse(rc.text, strlen(rc.text), path, &root);
    ctx c = {path, notes};
    if (st == XV_OK) st = read_all(&c, root, &rc);
    xv_yaml_free(root);
    if (st != XV_OK) {
        xv_pretrain_run_config_free(&rc);
        return st;
    }
    *out = rc;
    return XV_OK;
}

static void free_source(xv_pretrain_source_config *s) {
    free(s->image_key);
    free(s->caption_key);
    free(s->image_root);
}

static void free_list(char **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

void xv_pretrain_run_config_free(xv_pretrain_run_config *c) {
    free(c->path);
    free(c->text);
    free_list(c->train_file, c->n_train_file);
    free_list(c->train_file_regions, c->n_train_file_regions);
    free_source(&c->images);
    free_source(&c->regions);
    free(c->vocab);
    memset(c, 0, sizeof *c);
}

int64_t xv_pretrain_steps_per_epoch(const xv_pretrain_run_config *c) {
    return (c->train_dataset_size + c->images.batch_size - 1) / c->images.batch_size;
}
