#include "core/fs.h"
#include "train/pretrain_run.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "dist/dist.h"
#include "model/model_folder.h"
#include "train/loader_source.h"
#include "train/pretrain_init.h"
#include "train/stop_signal.h"
#include "train/train_log.h"

xv_pretrain_run_opts xv_pretrain_run_opts_default(void) {
    xv_pretrain_run_opts o = {.config_path = NULL, .output_dir = "output/pretrain", .resume = NULL, .seed = 42,
                              .max_steps = -1, .init_dir = NULL, .keep_last = 3, .progress = true,
                              .plot_smooth = 25, .notes = NULL};
    return o;
}

typedef struct {
    const xv_pretrain_run_opts *o;
    xv_pretrain_run_config rc;
    xv_model *m;
    xv_batch_source src[2];
    bool has_src[2];
    xv_trainer *t;
    xv_train_log *log;
    xv_progress *prog;
    char *ckpt_dir, *log_path, *model_dir, *plot_path;
    /* data counters for the log */
    const char **cnt_names;
    int64_t *cnt_values;
    int n_cnt;
    char **cnt_owned;
} run;

static void run_free(run *r) {
    xv_progress_free(r->prog);
    xv_train_log_close(r->log);
    xv_trainer_free(r->t);
    for (int k = 0; k < 2; k++)
        if (r->has_src[k]) xv_loader_source_close(&r->src[k]);
    xv_model_free(r->m);
    xv_pretrain_run_config_free(&r->rc);
    for (int i = 0; i < r->n_cnt; i++) free(r->cnt_owned[i]);
    free(r->cnt_owned);
    free(r->cnt_names);
    free(r->cnt_values);
    free(r->ckpt_dir), free(r->log_path), free(r->model_dir), free(r->plot_path);
}

static xv_status build_model(run *r) {
    const xv_pretrain_run_opts *o = r->o;
    if (!o->init_dir) {
        xv_model_parts parts = xv_model_parts_pretrain();
        XV_TRY(xv_model_create(&r->rc.model, &parts, &r->m));
        return xv_pretrain_init_weights(r->m, o->seed);
    }
    char *w = xv_fs_join(o->init_dir, "weights.safetensors");
    if (!w) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_status st = xv_model_load(&r->rc.model, w, true, &r->m);
    free(w);
    if (st != XV_OK) return xv_error_wrap(st, "--init %s (with the model of %s)", o->init_dir, r->rc.path);
    if (r->m->parts.layout != XV_LAYOUT_PRETRAIN || !r->m->parts.mlm || !r->m->parts.itc || !r->m->parts.itm ||
        !r->m->parts.bbox)
        return xv_error(XV_ERR_MISSING,
                        "--init %s: pretraining needs the pretraining layout with MLM head, ITC projections, "
                        "itm_head and bbox_head",
                        o->init_dir);
    return XV_OK;
}

/* Names "images.bad_json", ... of every data counter, for the log. */
static xv_status collect_counter_names(run *r) {
    static const char *const kind[2] = {"images.", "regions."};
    int total = 0;
    for (int k = 0; k < 2; k++)
        if (r->has_src[k] && r->src[k].n_counters) total += r->src[k].n_counters(r->src[k].ctx);
    r->cnt_names = calloc((size_t)total + 1, sizeof *r->cnt_names);
    r->cnt_values = calloc((size_t)total + 1, sizeof *r->cnt_values);
    r->cnt_owned = calloc((size_t)total + 1, sizeof *r->cnt_owned);
    if (!r->cnt_names || !r->cnt_values || !r->cnt_owned) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int k = 0; k < 2; k++) {
        if (!r->has_src[k] || !r->src[k].n_counters) continue;
        for (int i = 0; i < r->src[k].n_counters(r->src[k].ctx); i++) {
            const char *n = r->src[k].counter_name(r->src[k].ctx, i);
            size_t len = strlen(kind[k]) + strlen(n) + 1;
            char *s = malloc(len);
            if (!s) return xv_error(XV_ERR_NOMEM, "out of memory");
            snprintf(s, len, "%s%s", kind[k], n);
            r->cnt_owned[r->n_cnt] = s;
            r->cnt_names[r->n_cnt++] = s;
        }
    }
    return XV_OK;
}

static void read_counters(run *r) {
    int j = 0;
    for (int k = 0; k < 2; k++) {
        if (!r->has_src[k] || !r->src[k].n_counters) continue;
        for (int i = 0; i < r->src[k].n_counters(r->src[k].ctx); i++)
            r->cnt_values[j++] = r->src[k].counter_value(r->src[k].ctx, i);
    }
}

/* Load the checkpoint to continue from, if any; *keep_before gets the step
 * before which log records stay (-1: a fresh log). */
static xv_status resume_point(run *r, int64_t *keep_before) {
    const xv_pretrain_run_opts *o = r->o;
    char from[4096];
    XV_TRY(xv_ckpt_resume_path(r->ckpt_dir, o->resume, o->notes, from, sizeof from));
    *keep_before = o->resume ? 0 : -1;
    if (!from[0]) return XV_OK;
    XV_TRY(xv_trainer_load(r->t, from));
    *keep_before = xv_trainer_steps_done(r->t);
    XV_TRY(xv_ckpt_check_newest(r->ckpt_dir, *keep_before));
    if (o->notes) fprintf(o->notes, "resumed from %s at step %lld\n", from, (long long)*keep_before);
    return XV_OK;
}

static xv_status setup(run *r, int64_t *start_step) {
    const xv_pretrain_run_opts *o = r->o;
    XV_TRY(xv_pretrain_run_config_load(o->config_path, &r->rc, o->notes));
    r->ckpt_dir = xv_fs_join(o->output_dir, "checkpoints");
    r->log_path = xv_fs_join(o->output_dir, "log.jsonl");
    r->model_dir = xv_fs_join(o->output_dir, "model");
    r->plot_path = xv_fs_join(o->output_dir, "loss_curves.png");
    if (!r->ckpt_dir || !r->log_path || !r->model_dir || !r->plot_path) return xv_error(XV_ERR_NOMEM, "out of memory");
    XV_TRY(xv_fs_mkdir_p(r->ckpt_dir));
    if (xv_dist_rank() == 0) xv_ckpt_remove_stale(r->ckpt_dir, o->notes);

    XV_TRY(build_model(r));
    XV_TRY(xv_loader_source_open(&r->rc, false, o->seed, &r->src[0]));
    r->has_src[0] = true;
    if (r->rc.trainer.iter_perc > 0) {
        XV_TRY(xv_loader_source_open(&r->rc, true, o->seed, &r->src[1]));
        r->has_src[1] = true;
    }
    XV_TRY(collect_counter_names(r));

    xv_trainer_config tc = r->rc.trainer;
    tc.seed = o->seed;
    tc.steps_per_epoch = xv_pretrain_steps_per_epoch(&r->rc);
    tc.total_steps = tc.steps_per_epoch * r->rc.epochs;
    XV_TRY(xv_trainer_new(r->m, &tc, &r->src[0], r->has_src[1] ? &r->src[1] : NULL, r->rc.text, &r->t));

    int64_t keep_before = -1;
    XV_TRY(resume_point(r, &keep_before));
    *start_step = xv_trainer_steps_done(r->t);
    if (xv_dist_rank() == 0) XV_TRY(xv_train_log_open(r->log_path, keep_before, &r->log)); /* rank 0 alone logs */
    return XV_OK;
}

static xv_status save_checkpoint(run *r, bool after_progress_line) {
    char path[4096];
    xv_status st = xv_trainer_save(r->t, r->ckpt_dir, r->o->keep_last, path, sizeof path); /* written by rank 0 */
    if (st == XV_OK && r->o->notes && path[0]) fprintf(r->o->notes, "%scheckpoint %s\n", after_progress_line ? "\n" : "", path);
    return st;
}

/* OUTPUT/model/: config.json, weights.safetensors and the run's vocab.txt, a
 * folder every other command opens as it is. */
static xv_status write_model(run *r) { return xv_model_folder_write(r->model_dir, r->m, r->rc.vocab); }

static xv_status loop(run *r, int64_t max_steps, xv_pretrain_run_result *res) {
    const xv_pretrain_run_opts *o = r->o;
    const int64_t spe = xv_pretrain_steps_per_epoch(&r->rc);
    const bool tty = isatty(fileno(stderr));
    double last_print = 0;
    int64_t last_saved = -1;
    res->checkpoint_step = res->start_step > 0 ? res->start_step : -1; /* > 0: resumed from that checkpoint */
    while (xv_trainer_steps_done(r->t) < max_steps && !xv_stop_requested_anywhere()) {
        xv_update_record rec[2];
        int n = 0;
        xv_status st = xv_trainer_step(r->t, rec, &n);
        if (st == XV_ERR_INTERRUPTED) {
            /* Stopped waiting for a batch, maybe after the step's region update:
             * the model is then between two steps' states, so nothing is saved;
             * the newest checkpoint stays as it was, complete. */
            res->interrupted = xv_stop_requested();
            return XV_OK;
        }
        if (st != XV_OK) return st;
        read_counters(r);
        for (int i = 0; r->log && i < n; i++) {
            XV_TRY(xv_train_log_write(r->log, &rec[i], xv_trainer_skipped(r->t), r->cnt_names, r->cnt_values,
                                      r->n_cnt));
            if (r->prog) xv_progress_add(r->prog, &rec[i]);
            if (rec[i].skipped && o->notes)
                fprintf(o->notes, "%swarning: step %lld: %s update skipped (non-finite loss or gradient norm)\n",
                        tty && r->prog ? "\n" : "", (long long)rec[i].step, rec[i].region ? "region" : "image-text");
        }
        res->updates += n;
        const int64_t done = xv_trainer_steps_done(r->t);
        const bool epoch_end = done % spe == 0 && (done / spe) % r->rc.ckpt_frequent == 0;
        if (done % r->rc.ckpt_frequent_step == 0 || epoch_end) {
            XV_TRY(save_checkpoint(r, tty && r->prog));
            last_saved = res->checkpoint_step = done;
        }
        if (r->prog && (tty || xv_monotonic_seconds() - last_print >= 10 || done == max_steps)) {
            xv_progress_print(r->prog, stderr, done, tty);
            last_print = xv_monotonic_seconds();
        }
    }
    if (tty && r->prog) fputc('\n', stderr);
    res->interrupted = xv_stop_requested_anywhere();
    if (xv_trainer_steps_done(r->t) != last_saved) XV_TRY(save_checkpoint(r, false));
    res->checkpoint_step = xv_trainer_steps_done(r->t);
    return XV_OK;
}

xv_status xv_pretrain_run(const xv_pretrain_run_opts *opts, xv_pretrain_run_result *res) {
    memset(res, 0, sizeof *res);
    /* Over several ranks, rank 0 alone prints, logs and writes files. */
    xv_pretrain_run_opts own = *opts;
    if (xv_dist_rank() != 0) own.notes = NULL, own.progress = false;
    const xv_pretrain_run_opts *o = &own;
    if (!o->config_path || !o->output_dir)
        return xv_error(XV_ERR_INVALID_ARG, "pretrain: a config and an output folder are required");
    const double t0 = xv_monotonic_seconds();
    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    /* SIGINT / SIGTERM from here on: a run signalled while it sets up stops
     * before its first step; one in the loop after the current step (or at
     * once when it waits for data); the final model and plot are finished. */
    xv_stop_guard guard;
    xv_stop_guard_begin(&guard);
    xv_status st = setup(&r, &res->start_step);
    const int64_t total = st == XV_OK ? xv_pretrain_steps_per_epoch(&r.rc) * r.rc.epochs : 0;
    const int64_t max_steps = o->max_steps >= 0 && o->max_steps < total ? o->max_steps : total;
    res->total_steps = total;
    if (st == XV_OK && o->progress && !(r.prog = xv_progress_new(50, max_steps, res->start_step)))
        st = xv_error(XV_ERR_NOMEM, "out of memory");
    if (st == XV_OK) st = loop(&r, max_steps, res);
    if (st == XV_OK && !res->interrupted && xv_dist_rank() == 0) st = write_model(&r);
    if (st == XV_OK && xv_dist_rank() == 0) {
        xv_train_log_close(r.log);
        r.log = NULL;
        char title[256];
        snprintf(title, sizeof title, "X-VLM pretraining: %s", o->config_path);
        st = xv_train_log_plot(r.log_path, r.plot_path, o->plot_smooth, title);
    }
    if (r.t) {
        res->steps_done = xv_trainer_steps_done(r.t);
        res->skipped_updates = xv_trainer_skipped(r.t);
    }
    res->seconds = xv_monotonic_seconds() - t0;
    run_free(&r);
    xv_stop_guard_end(&guard);
    return st;
}
