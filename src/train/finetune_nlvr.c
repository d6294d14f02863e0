/* NLVR2 fine-tuning (finetune_nlvr.h). */
#include "train/finetune_nlvr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fs.h"
#include "data/caption.h"
#include "data/tokenizer.h"
#include "data/transforms.h"
#include "model/model_folder.h"
#include "model/nlvr.h"
#include "tasks/eval_data.h"
#include "train/adamw.h"
#include "train/schedule.h"

typedef struct {
    xv_nlvr_set set;
    xv_image *images; /* decoded once, [set.n_images] */
} split;

typedef struct {
    const xv_finetune_opts *o;
    xv_finetune_config cfg;
    xv_model *m;
    xv_tokenizer *tok;
    xv_model_vocab vocab;
    int res;
    split train, val, test;
    int32_t *order;
    xv_rng data, aug;
    xv_graph *g;
    xv_adamw opt;
    bool opt_ready;
    xv_lr_schedule sched;
    int64_t steps_per_epoch;
    float *pixels; /* [2B, 3, R, R]: every left image, then every right one */
    int32_t *targets;
    char **clean;
} nlvr_ft;

static void split_free(split *s) {
    for (int64_t i = 0; s->images && i < s->set.n_images; i++) xv_image_free(&s->images[i]);
    free(s->images);
    xv_nlvr_set_free(&s->set);
}

static xv_status split_read(const xv_path_list *files, const char *root, split *s) {
    XV_TRY(xv_nlvr_set_read_files((const char *const *)files->paths, files->n, root, &s->set));
    s->images = calloc((size_t)s->set.n_images, sizeof *s->images);
    if (!s->images) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < s->set.n_images; i++) XV_TRY(xv_image_load(s->set.image_paths[i], &s->images[i]));
    return XV_OK;
}

/* The starting model: an NLVR2 folder as it is, a pretraining one through
 * the official conversion. */
static xv_status load_init(nlvr_ft *f) {
    char *cpath = xv_fs_join(f->o->init_dir, "config.json"), *wpath = xv_fs_join(f->o->init_dir, "weights.safetensors");
    xv_model_config mc;
    xv_status st = cpath && wpath ? xv_config_load(cpath, &mc) : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK && f->cfg.image_res && f->cfg.image_res != mc.vision.image_res)
        st = xv_error(XV_ERR_INVALID_ARG, "%s: image_res %d, the model's is %d (convert it at that resolution first)",
                      f->o->config_path, f->cfg.image_res, mc.vision.image_res);
    if (st == XV_OK) st = xv_model_load(&mc, wpath, true, &f->m);
    if (st == XV_OK && !f->m->parts.nlvr) {
        xv_model_free(f->m);
        f->m = NULL;
        st = xv_nlvr_from_pretrained(&mc, wpath, f->o->seed, &f->m);
    }
    free(cpath), free(wpath);
    return st;
}

static xv_status setup(nlvr_ft *f) {
    const xv_finetune_opts *o = f->o;
    if (o->resume) return xv_error(XV_ERR_UNSUPPORTED, "finetune nlvr: --resume is not offered yet");
    XV_TRY(xv_finetune_config_load(o->config_path, XV_FINETUNE_NLVR, &f->cfg, o->notes));
    char *vp = xv_fs_join(o->init_dir, "vocab.txt");
    xv_status st = vp ? xv_model_vocab_read(vp, &f->vocab) : xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) st = xv_tokenizer_load(vp, &f->tok);
    free(vp);
    XV_TRY(st);
    XV_TRY(load_init(f));
    f->res = f->m->cfg.vision.image_res;
    XV_TRY(split_read(&f->cfg.train_file, f->cfg.image_root, &f->train));
    if (f->cfg.val_file.n) XV_TRY(split_read(&f->cfg.val_file, f->cfg.image_root, &f->val));
    XV_TRY(split_read(&f->cfg.test_file, f->cfg.image_root, &f->test));
    const int B = f->cfg.batch_size, R = f->res;
    if (f->train.set.n < B)
        return xv_error(XV_ERR_INVALID_ARG, "%s: %lld statements, fewer than one batch of %d", f->cfg.train_file.paths[0],
                        (long long)f->train.set.n, B);
    f->pixels = malloc(sizeof(float) * (size_t)2 * B * 3 * R * R);
    f->targets = malloc(sizeof(int32_t) * (size_t)B);
    f->clean = calloc((size_t)B, sizeof *f->clean);
    f->order = malloc(sizeof(int32_t) * (size_t)f->train.set.n);
    if (!f->pixels || !f->targets || !f->clean || !f->order || !(f->g = xv_graph_new(0)))
        return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < f->train.set.n; i++) f->order[i] = (int32_t)i;
    xv_rng root;
    xv_rng_seed(&root, o->seed);
    f->data = xv_rng_split(&root, 1);
    f->aug = xv_rng_split(&root, 2);
    *xv_graph_rng(f->g) = xv_rng_split(&root, 4);
    XV_TRY(xv_adamw_init(&f->opt, &f->m->params, &f->cfg.optim, NULL));
    f->opt_ready = true;
    f->steps_per_epoch = f->train.set.n / B; /* drop_last */
    return xv_schedule_init(&f->sched, f->steps_per_epoch * f->cfg.epochs, f->cfg.warmup, f->cfg.warmup_is_fraction);
}

static void teardown(nlvr_ft *f) {
    for (int i = 0; f->clean && i < f->cfg.batch_size; i++) free(f->clean[i]);
    free(f->clean), free(f->pixels), free(f->targets), free(f->order);
    split_free(&f->train), split_free(&f->val), split_free(&f->test);
    if (f->opt_ready) xv_adamw_free(&f->opt);
    xv_graph_free(f->g);
    xv_model_free(f->m);
    xv_tokenizer_free(f->tok);
    xv_model_vocab_free(&f->vocab);
    xv_finetune_config_free(&f->cfg);
}

/* Statements rows[0 .. b) of s into pixels, targets and the text batch;
 * train: the random transform per image, else the test transform. */
static xv_status make_batch(nlvr_ft *f, const split *s, const int32_t *rows, int b, bool train, xv_text_batch *tb) {
    const int R = f->res;
    const size_t img = (size_t)3 * R * R;
    for (int i = 0; i < b; i++) {
        const int64_t r = rows[i];
        for (int k = 0; k < 2; k++) {
            const xv_image *im = &s->images[s->set.pair[r][k]];
            float *px = f->pixels + ((size_t)k * (size_t)b + (size_t)i) * img;
            XV_TRY(train ? xv_transform_train(&f->aug, im, R, XV_TRAIN_FINETUNE, px) : xv_transform_test(im, R, px));
        }
        f->targets[i] = s->set.label[r];
        free(f->clean[i]);
        f->clean[i] = NULL;
        size_t len;
        const char *t = s->set.sentences[r];
        xv_status st = xv_pre_caption(t, strlen(t), f->cfg.max_words, &f->clean[i], &len);
        if (st != XV_OK) return xv_error_wrap(st, "statement %lld (\"%.60s\")", (long long)r, t);
    }
    xv_encode_opts eo = xv_encode_finetune(f->m->cfg.text.max_positions); /* NLVR.py cuts no token */
    return xv_encode_batch(f->tok, (const char *const *)f->clean, b, &eo, tb);
}

/* The NLVR forward of a made batch of b statements on f->g. */
static xv_status forward(nlvr_ft *f, int b, const xv_text_batch *tb, xv_nlvr_out *out) {
    const int R = f->res;
    xv_graph *g = f->g;
    xv_nlvr_batch nb = {
        .images = xv_tensor_wrap_f32(g, f->pixels, XV_SHAPE(2 * b, 3, R, R)),
        .text_ids = xv_tensor_wrap_i32(g, tb->ids, XV_SHAPE(b, tb->len)),
        .text_atts = xv_tensor_wrap_i32(g, tb->atts, XV_SHAPE(b, tb->len)),
        .targets = xv_tensor_wrap_i32(g, f->targets, XV_SHAPE(b)),
    };
    XV_TRY(xv_graph_status(g));
    return xv_nlvr_forward(g, f->m, &nb, out);
}

static xv_status train_step(nlvr_ft *f, int64_t b, double *loss) {
    const int B = f->cfg.batch_size;
    xv_text_batch tb = {0};
    xv_status st = make_batch(f, &f->train, f->order + b * B, B, true, &tb);
    xv_graph *g = f->g;
    xv_graph_reset(g);
    xv_graph_set_training(g, true);
    xv_graph_set_grad(g, true);
    xv_graph_set_free_used_grads(g, true);
    xv_params_zero_grad(&f->m->params);
    xv_nlvr_out o;
    if (st == XV_OK) st = forward(f, B, &tb, &o);
    if (st == XV_OK && !isfinite(*loss = o.loss->data[0]))
        st = xv_error(XV_ERR_NUMERIC, "finetune nlvr: loss %g at step %lld", *loss, (long long)f->sched.pos);
    if (st == XV_OK) st = xv_backward(g, o.loss);
    if (st == XV_OK) st = xv_adamw_step(&f->opt, xv_schedule_factor(&f->sched)); /* fp32, no clipping */
    xv_schedule_step(&f->sched);
    xv_text_batch_free(&tb);
    return st;
}

/* Accuracy on a split, NLVR.py's evaluate: batches in order, eval mode. */
static xv_status accuracy(nlvr_ft *f, const split *s, double *acc) {
    *acc = NAN;
    if (!s->set.n) return XV_OK;
    const int B = f->cfg.batch_size;
    int32_t rows[B];
    int64_t hits = 0;
    xv_status st = XV_OK;
    for (int64_t first = 0; first < s->set.n && st == XV_OK; first += B) {
        int b = s->set.n - first < B ? (int)(s->set.n - first) : B;
        for (int i = 0; i < b; i++) rows[i] = (int32_t)(first + i);
        xv_text_batch tb = {0};
        st = make_batch(f, s, rows, b, false, &tb);
        xv_graph_reset(f->g);
        xv_graph_set_training(f->g, false);
        xv_graph_set_grad(f->g, false);
        xv_nlvr_out o;
        if (st == XV_OK) st = forward(f, b, &tb, &o);
        for (int i = 0; st == XV_OK && i < b; i++) hits += o.pred_class->idata[i] == f->targets[i];
        xv_text_batch_free(&tb);
    }
    xv_graph_reset(f->g);
    *acc = (double)hits / (double)s->set.n;
    return st;
}

static void shuffle(nlvr_ft *f) {
    for (int64_t i = f->train.set.n - 1; i > 0; i--) {
        int64_t j = (int64_t)(xv_rng_uniform_double(&f->data) * (double)(i + 1));
        if (j > i) j = i;
        int32_t t = f->order[i];
        f->order[i] = f->order[j], f->order[j] = t;
    }
}

static xv_status write_model(const nlvr_ft *f, const char *name) {
    char *dir = xv_fs_join(f->o->output_dir, name);
    xv_status st = dir ? xv_model_write(dir, f->m, &f->vocab) : xv_error(XV_ERR_NOMEM, "out of memory");
    free(dir);
    return st;
}

static xv_status append_line(const char *path, const char *line) {
    FILE *fp = fopen(path, "a");
    if (!fp) return xv_error(XV_ERR_IO, "%s: cannot open for appending", path);
    int ok = fputs(line, fp) >= 0;
    ok &= fclose(fp) == 0;
    return ok ? XV_OK : xv_error(XV_ERR_IO, "%s: cannot write", path);
}

static xv_status run(nlvr_ft *f, xv_nlvr_finetune_result *r) {
    const xv_finetune_opts *o = f->o;
    XV_TRY(xv_fs_mkdir_p(o->output_dir));
    char *log = xv_fs_join(o->output_dir, "log.jsonl");
    if (!log) return xv_error(XV_ERR_NOMEM, "out of memory");
    remove(log);
    xv_status st = XV_OK;
    if (o->eval_before) st = accuracy(f, &f->val, &r->val_before);
    if (st == XV_OK && o->eval_before) st = accuracy(f, &f->test, &r->test_before);
    const int64_t limit = o->max_steps > 0 ? o->max_steps : f->steps_per_epoch * f->cfg.epochs;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t epoch = 0; epoch < f->cfg.epochs && r->steps < limit && st == XV_OK; epoch++) {
        shuffle(f);
        double sum = 0;
        int64_t n = 0;
        for (int64_t b = 0; b < f->steps_per_epoch && r->steps < limit && st == XV_OK; b++, n++, r->steps++) {
            double loss = 0;
            st = train_step(f, b, &loss);
            sum += loss;
        }
        if (st != XV_OK) break;
        double mean = n ? sum / (double)n : NAN;
        if (epoch == 0) r->first_loss = mean;
        r->last_loss = mean;
        st = accuracy(f, &f->val, &r->val_after);
        if (st == XV_OK) st = accuracy(f, &f->test, &r->test_after);
        if (st != XV_OK) break;
        char line[320];
        snprintf(line, sizeof line, "{\"epoch\": %lld, \"steps\": %lld, \"train_loss\": %.6f, \"val_acc\": %.6f, "
                 "\"test_acc\": %.6f, \"lr\": %.6g}\n", (long long)epoch, (long long)r->steps, mean, r->val_after,
                 r->test_after, f->cfg.optim.lr * xv_schedule_factor(&f->sched));
        st = append_line(log, line);
        if (o->notes && o->progress)
            fprintf(o->notes, "epoch %lld: loss %.4f, dev acc %.4f, test acc %.4f\n", (long long)epoch, mean,
                    r->val_after, r->test_after);
        /* NLVR.py: checkpoint_best.pth at the best dev accuracy (test without a dev file) */
        double key = f->val.set.n ? r->val_after : r->test_after;
        if (st == XV_OK && (r->best_epoch < 0 || key > (f->val.set.n ? r->best_val : r->best_test))) {
            r->best_epoch = epoch, r->best_val = r->val_after, r->best_test = r->test_after;
            st = write_model(f, "model_best");
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->seconds_train = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (st == XV_OK) st = write_model(f, "model");
    if (st == XV_OK) {
        char *res = xv_fs_join(o->output_dir, "result.json");
        char text[400];
        int k = snprintf(text, sizeof text, "{\"best_epoch\": %lld, \"val_acc\": %.6f, \"test_acc\": %.6f, "
                         "\"last_val_acc\": %.6f, \"last_test_acc\": %.6f, \"steps\": %lld}\n", (long long)r->best_epoch,
                         r->best_val, r->best_test, r->val_after, r->test_after, (long long)r->steps);
        st = res ? xv_fs_write_file(res, text, (size_t)k, XV_FS_DURABLE) : xv_error(XV_ERR_NOMEM, "out of memory");
        free(res);
    }
    free(log);
    return st;
}

xv_status xv_finetune_nlvr(const xv_finetune_opts *o, xv_nlvr_finetune_result *out) {
    *out = (xv_nlvr_finetune_result){.val_before = NAN, .test_before = NAN, .val_after = NAN, .test_after = NAN,
                                     .best_epoch = -1, .best_val = NAN, .best_test = NAN};
    if (!o->config_path || !o->init_dir || !o->output_dir)
        return xv_error(XV_ERR_INVALID_ARG, "finetune nlvr: config, init and output_dir are required");
    nlvr_ft f = {.o = o};
    xv_status st = setup(&f);
    if (st == XV_OK) st = run(&f, out);
    teardown(&f);
    return st;
}
