#include "train/schedule.h"

#include <math.h>

#include "core/error.h"

xv_status xv_schedule_total_steps(int64_t epochs, int64_t dataset_size, int64_t batch, int64_t world,
                                  int64_t *total_out) {
    if (epochs < 0 || dataset_size < 0 || batch <= 0 || world <= 0)
        return xv_error(XV_ERR_INVALID_ARG,
                        "schedule: epochs %lld, dataset size %lld must be >= 0 and batch %lld, world %lld > 0",
                        (long long)epochs, (long long)dataset_size, (long long)batch, (long long)world);
    int64_t per_step = batch * world;
    int64_t steps_per_epoch = (dataset_size + per_step - 1) / per_step;
    *total_out = epochs * steps_per_epoch;
    return XV_OK;
}

xv_status xv_schedule_init(xv_lr_schedule *s, int64_t total_steps, double warmup, bool warmup_is_fraction) {
    if (total_steps < 0) return xv_error(XV_ERR_INVALID_ARG, "schedule: num_training_steps %lld < 0", (long long)total_steps);
    int64_t w;
    if (warmup_is_fraction) {
        /* scheduler.py asserts 0 <= num_warmup_steps < 1 for floats. */
        if (!(warmup >= 0.0 && warmup < 1.0))
            return xv_error(XV_ERR_INVALID_ARG, "schedule: fractional num_warmup_steps %g must lie in [0, 1)", warmup);
        w = (int64_t)((double)total_steps * warmup); /* Python int(): truncation */
    } else {
        if (!(warmup >= 0.0) || warmup != floor(warmup) || warmup > 9.0e18)
            return xv_error(XV_ERR_INVALID_ARG, "schedule: num_warmup_steps %g must be a whole number >= 0", warmup);
        w = (int64_t)warmup;
    }
    s->total_steps = total_steps;
    s->warmup_steps = w;
    s->pos = 0;
    return XV_OK;
}

double xv_schedule_lambda(const xv_lr_schedule *s, int64_t t) {
    int64_t w = s->warmup_steps, n = s->total_steps;
    if (t < w) return (double)t / (double)(w > 1 ? w : 1);
    int64_t span = n - w > 1 ? n - w : 1;
    double f = (double)(n - t) / (double)span;
    return f > 0.0 ? f : 0.0;
}

double xv_schedule_factor(const xv_lr_schedule *s) { return xv_schedule_lambda(s, s->pos); }

void xv_schedule_step(xv_lr_schedule *s) { s->pos++; }

xv_status xv_schedule_read_warmup(const xv_yaml_node *schedular, double *warmup, bool *is_fraction) {
    const xv_yaml_node *w = xv_yaml_get(schedular, "num_warmup_steps");
    if (!w) return XV_OK;
    if (w->kind == XV_YAML_INT && w->i >= 0) {
        *warmup = (double)w->i, *is_fraction = false;
    } else if (w->kind == XV_YAML_FLOAT && w->f >= 0 && w->f < 1) {
        *warmup = w->f, *is_fraction = true;
    } else {
        return xv_yaml_type_error(w, "an integer step count >= 0 or a fraction in [0, 1)");
    }
    return XV_OK;
}
