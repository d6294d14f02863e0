/* The fine-tuning run: epochs, per-epoch evaluation, log, best epoch,
 * checkpoints and resume (finetune.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "dist/dist.h"
#include "train/checkpoint.h"
#include "train/rank_state.h"
#include "train/stop_signal.h"
#include "train/finetune_task.h"
#include "train/train_log.h"

xv_finetune_opts xv_finetune_opts_default(void) {
    xv_finetune_opts o = {.output_dir = "output/finetune", .seed = 42, .keep_last = 2, .plot_smooth = 25,
                          .eval_before = true, .progress = true};
    return o;
}

/* the epoch's sums: the loss terms (sums[k]), lr, and their count */
enum { SUM_LR = XV_FT_MAX_TERMS, SUM_N, N_SUMS };

typedef struct {
    xv_ft f;
    bool writes; /* rank 0: the log, checkpoints, models and result files (every rank trains and evaluates) */
    char *ckpt_dir, *log_path, *plot_path, *model_dir, *best_dir;
    xv_train_log *log;
    xv_progress *prog;
    int64_t step, epoch;     /* steps and epochs done */
    int64_t best_epoch;      /* -1: none yet */
    double best;             /* its selection score; 0 before, as the official `best = 0` */
    double sums[N_SUMS];     /* train_<term> means of the epoch, as the official train() returns them */
    int64_t saved_step;      /* step of the newest checkpoint written (-1: none) */
    xv_finetune_scores last; /* the newest evaluation, at step last_step */
    int64_t last_step;
    /* checkpoints hold int64 values: the doubles above travel as their bits */
    int64_t bits[1 + N_SUMS];
    /* the checkpoint's view: the shared counters and data stream, then every
     * rank's epoch sums and augment / negatives / dropout streams */
    xv_rank_state ranks;
    xv_ckpt_counter counters[2 + N_SUMS * 64];
    xv_ckpt_rng rngs[1 + 3 * 64];
    int n_counters, n_rngs;
} run;

/* The checkpoint's counters: best_epoch, best_score_bits, then epoch_sum.a,
 * .b (.c, .d for tasks of more terms), epoch_sum.lr, epoch_sum.n; streams:
 * data, then augment, negatives, dropout. Under mpirun the sums and those
 * three streams are each rank's own, as "rank<r>.epoch_sum.a" ... (the epoch
 * record's means are over every rank's updates). */
static xv_status build_state(run *r) {
    static const char *const term_sums[XV_FT_MAX_TERMS] = {"epoch_sum.a", "epoch_sum.b", "epoch_sum.c", "epoch_sum.d"};
    const int n_terms = r->f.task->n_terms > 2 ? r->f.task->n_terms : 2;
    xv_ckpt_counter mine[N_SUMS];
    int n = 0;
    for (int k = 0; k < n_terms; k++) mine[n++] = (xv_ckpt_counter){term_sums[k], &r->bits[1 + k]};
    mine[n++] = (xv_ckpt_counter){"epoch_sum.lr", &r->bits[1 + SUM_LR]};
    mine[n++] = (xv_ckpt_counter){"epoch_sum.n", &r->bits[1 + SUM_N]};
    const xv_ckpt_rng streams[3] = {{"augment", &r->f.aug}, {"negatives", &r->f.neg}, {"dropout", xv_graph_rng(r->f.g)}};
    XV_TRY(xv_rank_state_init(&r->ranks, mine, n, streams, 3));
    const int world = xv_dist_world();
    if (world > 64) return xv_error(XV_ERR_UNSUPPORTED, "fine-tuning: at most 64 ranks (%d)", world);
    r->counters[0] = (xv_ckpt_counter){"best_epoch", &r->best_epoch};
    r->counters[1] = (xv_ckpt_counter){"best_score_bits", &r->bits[0]};
    memcpy(r->counters + 2, r->ranks.counters, sizeof *r->counters * (size_t)(world * n));
    r->n_counters = 2 + world * n;
    r->rngs[0] = (xv_ckpt_rng){"data", &r->f.data};
    memcpy(r->rngs + 1, r->ranks.rngs, sizeof *r->rngs * (size_t)(world * 3));
    r->n_rngs = 1 + world * 3;
    return XV_OK;
}

static xv_train_state state_of(run *r) {
    return (xv_train_state){.params = r->f.params, .opt = &r->f.opt, .sched = &r->f.sched, .step = &r->step,
                            .epoch = &r->epoch, .counters = r->counters, .n_counters = r->n_counters,
                            .rngs = r->rngs, .n_rngs = r->n_rngs};
}

static xv_status save_checkpoint(run *r) {
    memcpy(&r->bits[0], &r->best, sizeof r->best);
    memcpy(&r->bits[1], r->sums, sizeof r->sums);
    XV_TRY(xv_rank_state_gather(&r->ranks));
    r->saved_step = r->step;
    if (xv_dist_rank() != 0) return XV_OK; /* rank 0 alone writes */
    const xv_train_state st = state_of(r);
    char path[4096];
    XV_TRY(xv_ckpt_save(r->ckpt_dir, r->f.o->keep_last, &st, path, sizeof path));
    if (r->f.o->notes && r->f.o->progress) fprintf(r->f.o->notes, "checkpoint %s\n", path);
    return XV_OK;
}

/* Restore `path`; the epoch orders are replayed from the seed (each epoch
 * shuffles the previous order), which must land on the saved data stream. */
static xv_status load_checkpoint(run *r, const char *path) {
    const xv_train_state st = state_of(r);
    XV_TRY(xv_ckpt_load(path, &st, NULL));
    xv_rank_state_pick(&r->ranks);
    memcpy(&r->best, &r->bits[0], sizeof r->best);
    memcpy(r->sums, &r->bits[1], sizeof r->sums);
    xv_ft *f = &r->f;
    const xv_rng saved = f->data;
    f->data = f->data_seed;
    for (int64_t i = 0; i < f->n; i++) f->perm[i] = (int32_t)i;
    const int64_t shuffles = (r->step + f->steps_per_epoch - 1) / f->steps_per_epoch;
    for (int64_t e = 0; e < shuffles; e++) xv_ft_shuffle(f);
    if (saved.key != f->data.key || saved.counter != f->data.counter)
        return xv_error(XV_ERR_INVALID_ARG,
                        "%s: its data order does not follow from --seed %llu and this training file: resume with "
                        "the seed and data of the run that wrote it",
                        path, (unsigned long long)f->o->seed);
    r->saved_step = r->step;
    return XV_OK;
}

/* The checkpoint to continue from, if any; *keep_before gets the step
 * before which log records stay (-1: a fresh log). */
static xv_status resume_point(run *r, int64_t *keep_before) {
    const xv_finetune_opts *o = r->f.o;
    char from[4096];
    XV_TRY(xv_ckpt_resume_path(r->ckpt_dir, o->resume, o->notes, from, sizeof from));
    *keep_before = o->resume ? 0 : -1;
    if (!from[0]) return XV_OK;
    XV_TRY(load_checkpoint(r, from));
    *keep_before = r->step;
    XV_TRY(xv_ckpt_check_newest(r->ckpt_dir, r->step));
    if (o->notes)
        fprintf(o->notes, "resumed from %s at step %lld (epoch %lld)\n", from, (long long)r->step, (long long)r->epoch);
    return XV_OK;
}

static xv_status setup(run *r, const char *task, int64_t *keep_before) {
    const xv_finetune_opts *o = r->f.o;
    const char *out = o->output_dir;
    r->ckpt_dir = xv_fs_join(out, "checkpoints");
    r->log_path = xv_fs_join(out, "log.jsonl");
    r->plot_path = xv_fs_join(out, "loss_curves.png");
    r->model_dir = xv_fs_join(out, "model");
    r->best_dir = xv_fs_join(out, "model_best");
    if (!r->ckpt_dir || !r->log_path || !r->plot_path || !r->model_dir || !r->best_dir)
        return xv_error(XV_ERR_NOMEM, "out of memory");
    XV_TRY(xv_ft_setup(&r->f, task));
    XV_TRY(build_state(r));
    XV_TRY(xv_fs_mkdir_p(r->ckpt_dir));
    if (xv_dist_rank() == 0) xv_ckpt_remove_stale(r->ckpt_dir, o->notes);
    return resume_point(r, keep_before);
}

/* ---- records ---- */

typedef struct {
    char buf[4096];
    size_t n;
} line;

/* A number, or null when not finite (NaN is not JSON). */
static void add_num(line *l, const char *key, double v) {
    if (l->n >= sizeof l->buf) return;
    const size_t cap = sizeof l->buf - l->n;
    if (isfinite(v)) l->n += (size_t)snprintf(l->buf + l->n, cap, ", \"%s\": %.9g", key, v);
    else l->n += (size_t)snprintf(l->buf + l->n, cap, ", \"%s\": null", key);
}

static void add_head(line *l, int64_t step, const char *kind, int64_t epoch) {
    l->n = (size_t)snprintf(l->buf, sizeof l->buf, "{\"step\": %lld, \"kind\": \"%s\", \"epoch\": %lld",
                            (long long)step, kind, (long long)epoch);
}

/* Evaluate, print the table, log the epoch, keep the best, checkpoint. */
static xv_status end_epoch(run *r) {
    xv_ft *f = &r->f;
    const xv_finetune_opts *o = f->o;
    const int64_t e = xv_ft_rounds_through(f, r->step) - 1; /* the evaluation round: the epoch, unless eval_steps */
    r->epoch = e + 1;
    /* the epoch's means over every rank's updates (synchronize_between_processes) */
    XV_TRY(xv_dist_allreduce_sum_f64(r->sums, N_SUMS));
    char rname[32];
    snprintf(rname, sizeof rname, "epoch%lld", (long long)e); /* collect_tensor_result's 'epoch%d' */
    const bool scored = f->task->evaluate != NULL; /* a training-only stage logs its losses only */
    if (scored) XV_TRY(xv_ft_evaluate(f, rname, &r->last));
    r->last_step = r->step;
    const char *key;
    const double score = scored ? xv_ft_selection(f, &r->last, &key) : NAN;
    /* Retrieval.py / Grounding_bbox.py: `if score > best` with best = 0 at the start */
    const bool better = score > r->best;
    if (better) {
        r->best = score, r->best_epoch = e;
        if (r->writes) XV_TRY(xv_ft_write_model(f, r->best_dir));
    }
    line l;
    add_head(&l, r->step - 1, "epoch", e);
    const double n = r->sums[SUM_N] > 0 ? r->sums[SUM_N] : NAN;
    add_num(&l, "train_lr", r->sums[SUM_LR] / n);
    for (int k = 0; k < f->task->n_terms; k++) {
        char name[40];
        snprintf(name, sizeof name, "train_%s", f->task->terms[k]);
        add_num(&l, name, r->sums[k] / n);
    }
    for (int i = 0; scored && i < r->last.n; i++) add_num(&l, r->last.name[i], r->last.value[i]);
    if (scored)
        l.n += (size_t)snprintf(l.buf + l.n, l.n < sizeof l.buf ? sizeof l.buf - l.n : 0,
                                ", \"selection\": \"%s\", \"best\": %s", key, better ? "true" : "false");
    l.n += (size_t)snprintf(l.buf + l.n, l.n < sizeof l.buf ? sizeof l.buf - l.n : 0, "}");
    if (l.n >= sizeof l.buf) return xv_error(XV_ERR_INVALID_ARG, "fine-tuning: epoch record longer than %zu bytes",
                                             sizeof l.buf);
    if (r->writes) XV_TRY(xv_train_log_write_json(r->log, l.buf));
    memset(r->sums, 0, sizeof r->sums);
    if (o->notes && o->progress && scored) {
        /* epochs counted from 0, as the official log */
        const int prec = f->task->selection_digits;
        fprintf(o->notes, "epoch %lld (%lld of %d)  %s %.*f%s", (long long)e, (long long)e + 1, f->cfg.epochs, key,
                prec, score, better ? " (best)" : "");
        if (!better && r->best_epoch >= 0)
            fprintf(o->notes, "  best %.*f at epoch %lld", prec, r->best, (long long)r->best_epoch);
        fputc('\n', o->notes);
        f->task->print_scores(&r->last, o->notes);
    }
    return save_checkpoint(r);
}

/* One update: the batch of the epoch's order, its record in the log. */
static xv_status step(run *r, bool tty, double *loss) {
    xv_ft *f = &r->f;
    const int64_t spe = f->steps_per_epoch, b = r->step % spe;
    if (b == 0) xv_ft_shuffle(f);
    const double t0 = xv_monotonic_seconds();
    double term[XV_FT_MAX_TERMS];
    xv_update_record rec = {.step = r->step, .epoch = r->step / spe};
    XV_TRY(xv_ft_train_step(f, b, term, &rec));
    const int B = f->cfg.batch_size;
    rec.lr = xv_adamw_group_lr(&f->opt, 0, xv_schedule_lambda(&f->sched, f->sched.pos - 1));
    rec.lr_large = NAN; /* grad_norm: set by the step where it clips, else NaN */
    rec.n_texts = rec.n_images = B;
    rec.seconds = xv_monotonic_seconds() - t0;
    for (int k = 0; k < f->task->n_terms; k++) r->sums[k] += term[k];
    r->sums[SUM_LR] += rec.lr;
    r->sums[SUM_N] += 1;
    r->step++;
    *loss = rec.loss_total;
    if (r->writes) XV_TRY(xv_train_log_write(r->log, &rec, 0, NULL, NULL, 0));
    if (r->prog) {
        xv_progress_add(r->prog, &rec);
        if (tty || r->step % 10 == 0 || r->step % spe == 0) xv_progress_print(r->prog, f->o->notes, r->step, tty);
        if (tty && r->step % spe == 0) fputc('\n', f->o->notes);
    }
    return XV_OK;
}

static xv_status train(run *r, int64_t max_steps, xv_finetune_result *res) {
    const int64_t start = r->step, n = max_steps - start;
    const int64_t window = n / 10 > 0 ? n / 10 : 1;
    const bool tty = r->prog && isatty(fileno(r->f.o->notes));
    const double t0 = xv_monotonic_seconds();
    double first = 0, last = 0;
    while (r->step < max_steps && !xv_stop_requested_anywhere()) {
        const int64_t s = r->step - start;
        double loss;
        XV_TRY(step(r, tty, &loss));
        if (s < window) first += loss / (double)window;
        if (s >= n - window) last += loss / (double)window;
        if (xv_ft_round_ends(&r->f, r->step)) XV_TRY(end_epoch(r));
    }
    res->first_loss = first;
    res->last_loss = last;
    res->seconds_train = xv_monotonic_seconds() - t0;
    return r->step != r->saved_step ? save_checkpoint(r) : XV_OK;
}

/* result.json: the summary of the run, with the official dicts before
 * (zero-shot, when evaluated) and after. */
static xv_status write_result(const run *r, const xv_finetune_result *res) {
    const xv_finetune_task *t = r->f.task;
    cJSON *o = cJSON_CreateObject();
    if (!o) return xv_error(XV_ERR_NOMEM, "out of memory");
    char key[64];
    cJSON_AddStringToObject(o, "task", t->name);
    cJSON_AddNumberToObject(o, "steps", (double)res->steps);
    cJSON_AddNumberToObject(o, "best_epoch", (double)res->best_epoch);
    xv_ft_json_num(o, "best_score", res->best_score);
    xv_ft_json_num(o, "loss_first", res->first_loss);
    xv_ft_json_num(o, "loss_last", res->last_loss);
    xv_ft_json_num(o, "seconds_train", res->seconds_train);
    if (t->evaluate) {
        snprintf(key, sizeof key, "%s_before", t->metric_key);
        xv_ft_json_num(o, key, res->metric_before);
        snprintf(key, sizeof key, "%s_after", t->metric_key);
        xv_ft_json_num(o, key, res->metric_after);
        snprintf(key, sizeof key, "%s_before", t->aux_key);
        xv_ft_json_num(o, key, res->aux_before);
        snprintf(key, sizeof key, "%s_after", t->aux_key);
        xv_ft_json_num(o, key, res->aux_after);
    }
    if (isfinite(res->metric_before)) cJSON_AddItemToObject(o, "before", cJSON_Parse(res->before.official));
    if (t->evaluate) cJSON_AddItemToObject(o, "after", cJSON_Parse(res->after.official));
    char *text = cJSON_Print(o), *path = xv_fs_join(r->f.o->output_dir, "result.json");
    cJSON_Delete(o);
    xv_status st = text && path ? xv_fs_write_file(path, text, strlen(text), XV_FS_DURABLE)
                                : xv_error(XV_ERR_NOMEM, "out of memory");
    cJSON_free(text);
    free(path);
    return st;
}

/* The scores of one evaluation into the result (before or after). */
static void take_scores(const xv_finetune_scores *s, bool after, xv_finetune_result *res) {
    *(after ? &res->metric_after : &res->metric_before) = s->metric;
    *(after ? &res->aux_after : &res->aux_before) = s->aux;
    *(after ? &res->after : &res->before) = *s;
}

/* After the last step: the final model, its test score, the log's closing
 * "best" record (the official log.txt's "best epoch: N"), the plot. */
static xv_status finish(run *r, int64_t total, xv_finetune_result *res) {
    xv_ft *f = &r->f;
    if (r->writes) XV_TRY(xv_ft_write_model(f, r->model_dir));
    const bool scored = f->task->evaluate != NULL;
    if (scored && (r->last_step != r->step || r->step == 0)) {
        /* stopped inside an epoch (max_steps): the epoch under way names the result file */
        char name[32];
        const int64_t e = xv_ft_rounds_through(f, r->step);
        snprintf(name, sizeof name, "epoch%lld", (long long)e);
        XV_TRY(xv_ft_evaluate(f, name, &r->last));
    }
    take_scores(&r->last, true, res);
    res->best_epoch = r->best_epoch;
    res->best_score = r->best_epoch >= 0 ? r->best : NAN;
    if (!r->writes) return XV_OK;
    if (scored && r->step == total) {
        const char *key;
        line l;
        add_head(&l, total, "best", r->epoch - 1);
        l.n += (size_t)snprintf(l.buf + l.n, sizeof l.buf - l.n, ", \"best_epoch\": %lld",
                                (long long)r->best_epoch);
        xv_ft_selection(f, &r->last, &key);
        add_num(&l, key, res->best_score);
        l.n += (size_t)snprintf(l.buf + l.n, sizeof l.buf - l.n, "}");
        XV_TRY(xv_train_log_write_json(r->log, l.buf));
        if (f->o->notes && f->o->progress && r->best_epoch >= 0)
            fprintf(f->o->notes, "best epoch: %lld (%s %.*f)\n", (long long)r->best_epoch, key,
                    f->task->selection_digits, res->best_score);
        else if (f->o->notes && f->o->progress)
            fprintf(f->o->notes, "best epoch: none (no epoch's %s above 0; no model_best/)\n", key);
    }
    xv_train_log_close(r->log);
    r->log = NULL;
    char title[256];
    snprintf(title, sizeof title, "X-VLM %s fine-tuning: %s", f->task->name, f->o->config_path);
    XV_TRY(xv_train_log_plot(r->log_path, r->plot_path, f->o->plot_smooth, title));
    return write_result(r, res);
}

static void run_free(run *r) {
    xv_progress_free(r->prog);
    xv_train_log_close(r->log);
    xv_rank_state_free(&r->ranks);
    xv_ft_free(&r->f);
    free(r->ckpt_dir), free(r->log_path), free(r->plot_path), free(r->model_dir), free(r->best_dir);
}

xv_status xv_finetune_run(const char *task, const xv_finetune_opts *opts, xv_finetune_result *res) {
    /* Over several ranks, rank 0 alone prints, logs and writes files. */
    xv_finetune_opts own = *opts;
    if (xv_dist_rank() != 0) own.notes = NULL, own.progress = false;
    const xv_finetune_opts *o = &own;
    memset(res, 0, sizeof *res);
    res->metric_before = res->metric_after = res->aux_before = res->aux_after = res->best_score = NAN;
    res->best_epoch = -1;
    if (!o->config_path || !o->init || !o->output_dir)
        return xv_error(XV_ERR_INVALID_ARG, "fine-tuning: a config, an initial model and an output folder are needed");
    run r;
    memset(&r, 0, sizeof r);
    r.f.o = o;
    r.writes = xv_dist_rank() == 0;
    r.best_epoch = -1;
    r.saved_step = r.last_step = -1;
    int64_t keep_before = -1;
    xv_status st = setup(&r, task, &keep_before);
    const int64_t total = st == XV_OK ? r.f.sched.total_steps : 0;
    const int64_t max_steps = o->max_steps > 0 && o->max_steps < total ? o->max_steps : total;
    res->start_step = r.step;
    res->total_steps = total;
    if (st == XV_OK && r.writes) st = xv_train_log_open(r.log_path, keep_before, &r.log);
    if (st == XV_OK && o->progress && o->notes && !(r.prog = xv_progress_new(50, max_steps, r.step)))
        st = xv_error(XV_ERR_NOMEM, "out of memory");
    xv_stop_guard guard; /* SIGINT / SIGTERM: stop after the current step, with a checkpoint */
    xv_stop_guard_begin(&guard);
    if (st == XV_OK && o->eval_before && r.step == 0 && r.f.task->evaluate) {
        /* zero-shot at the fine-tuning resolution: the initial model as loaded */
        xv_finetune_scores before;
        st = xv_ft_evaluate(&r.f, "zero_shot", &before);
        if (st == XV_OK) take_scores(&before, false, res);
        if (st == XV_OK && o->notes && o->progress) {
            fprintf(o->notes, "before fine-tuning:\n");
            r.f.task->print_scores(&before, o->notes);
        }
    }
    if (st == XV_OK) st = train(&r, max_steps, res);
    res->interrupted = st == XV_OK ? xv_stop_requested_anywhere() : xv_stop_requested();
    xv_stop_guard_end(&guard);
    res->steps = r.step;
    if (st == XV_OK && !res->interrupted) st = finish(&r, total, res);
    run_free(&r);
    return st;
}
