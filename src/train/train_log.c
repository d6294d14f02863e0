#include "train/train_log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "train/plot.h"

struct xv_train_log {
    FILE *f;
    char *path;
};

/* Keep the complete records of steps < keep_before; write atomically. */
static xv_status rewrite_before(const char *path, int64_t keep_before) {
    FILE *in = fopen(path, "rb");
    if (!in) return errno == ENOENT ? XV_OK : xv_error(XV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    xv_fs_atomic out;
    xv_status st = xv_fs_atomic_open(path, XV_FS_DURABLE, &out);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (st == XV_OK && (len = getline(&line, &cap, in)) > 0) {
        if (line[len - 1] != '\n') break; /* a partial last line (killed while writing) */
        cJSON *j = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "step");
        bool keep = cJSON_IsNumber(s) && s->valuedouble < (double)keep_before;
        cJSON_Delete(j);
        if (keep) fwrite(line, 1, (size_t)len, out.f); /* an error fails the commit */
    }
    free(line);
    fclose(in);
    return st == XV_OK ? xv_fs_atomic_commit(&out) : st;
}

xv_status xv_train_log_open(const char *path, int64_t keep_before, xv_train_log **out) {
    *out = NULL;
    if (keep_before >= 0) XV_TRY(rewrite_before(path, keep_before));
    xv_train_log *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) {
        free(l);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    l->f = fopen(path, keep_before >= 0 ? "ab" : "wb");
    if (!l->f) {
        xv_status st = xv_error(XV_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
        free(l->path);
        free(l);
        return st;
    }
    *out = l;
    return XV_OK;
}

/* Push the record to the file; a failure names the log and the reason
 * (ENOSPC: "No space left on device" for a full disk). */
static xv_status flush_record(xv_train_log *l) {
    errno = 0;
    if (fflush(l->f) != 0 || ferror(l->f))
        return xv_error(XV_ERR_IO, "%s: write failed: %s", l->path, strerror(errno ? errno : EIO));
    return XV_OK;
}

static void num(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ", \"%s\": %.9g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

xv_status xv_train_log_write(xv_train_log *l, const xv_update_record *r, int64_t skipped_updates,
                             const char *const *counter_names, const int64_t *counter_values, int n) {
    FILE *f = l->f;
    fprintf(f, "{\"step\": %lld, \"kind\": \"%s\", \"epoch\": %lld", (long long)r->step, r->region ? "region" : "image",
            (long long)r->epoch);
    num(f, "loss_itc", r->loss_itc);
    num(f, "loss_itm", r->loss_itm);
    num(f, "loss_mlm", r->loss_mlm);
    if (r->region) {
        num(f, "loss_bbox", r->loss_bbox);
        num(f, "loss_giou", r->loss_giou);
    }
    num(f, "loss", r->loss_total);
    num(f, "lr", r->lr);
    num(f, "lr_large", r->lr_large);
    num(f, "grad_norm", r->grad_norm);
    fprintf(f, ", \"skipped\": %s, \"texts\": %d, \"images\": %d", r->skipped ? "true" : "false", r->n_texts,
            r->n_images);
    num(f, "seconds", r->seconds);
    num(f, "samples_per_s", r->seconds > 0 ? r->n_texts / r->seconds : NAN);
    fprintf(f, ", \"skipped_updates\": %lld, \"data\": {", (long long)skipped_updates);
    for (int i = 0; i < n; i++) fprintf(f, "%s\"%s\": %lld", i ? ", " : "", counter_names[i], (long long)counter_values[i]);
    fprintf(f, "}}\n");
    return flush_record(l);
}

xv_status xv_train_log_write_json(xv_train_log *l, const char *json) {
    fprintf(l->f, "%s\n", json);
    return flush_record(l);
}

void xv_train_log_close(xv_train_log *l) {
    if (!l) return;
    fclose(l->f);
    free(l->path);
    free(l);
}

/* ---- plotting a log ---- */

enum { P_ITC, P_ITM, P_MLM, P_BBOX, P_GIOU, P_TOTAL, N_PANELS };
static const char *const panel_key[N_PANELS] = {"loss_itc", "loss_itm", "loss_mlm", "loss_bbox", "loss_giou", "loss"};
static const bool panel_region[N_PANELS] = {false, false, false, true, true, false};

typedef struct {
    double *x, *y;
    int n, cap;
} series;

static bool push(series *s, double x, double y) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        double *nx = realloc(s->x, sizeof(double) * (size_t)cap);
        if (nx) s->x = nx;
        double *ny = nx ? realloc(s->y, sizeof(double) * (size_t)cap) : NULL;
        if (ny) s->y = ny;
        if (!nx || !ny) return false;
        s->cap = cap;
    }
    s->x[s->n] = x, s->y[s->n] = y, s->n++;
    return true;
}

xv_status xv_train_log_plot(const char *log_path, const char *png_path, int smooth, const char *title) {
    FILE *in = fopen(log_path, "rb");
    if (!in) return xv_error(XV_ERR_IO, "%s: cannot open: %s", log_path, strerror(errno));
    series s[N_PANELS] = {{0}};
    xv_status st = XV_OK;
    char *line = NULL;
    size_t cap = 0;
    while (st == XV_OK && getline(&line, &cap, in) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
        const bool region = cJSON_IsString(kind) && !strcmp(kind->valuestring, "region");
        /* updates only: other records (a fine-tuning run's "epoch", "best") carry no losses */
        if (cJSON_IsNumber(step) && (region || (cJSON_IsString(kind) && !strcmp(kind->valuestring, "image")))) {
            for (int p = 0; p < N_PANELS && st == XV_OK; p++) {
                if (panel_region[p] != region) continue;
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, panel_key[p]);
                if (!push(&s[p], step->valuedouble, cJSON_IsNumber(v) ? v->valuedouble : NAN))
                    st = xv_error(XV_ERR_NOMEM, "out of memory");
            }
        }
        cJSON_Delete(j);
    }
    free(line);
    fclose(in);
    if (st == XV_OK) {
        static const char *const titles[N_PANELS] = {"ITC loss", "ITM loss", "MLM loss", "box L1 loss",
                                                     "box GIoU loss", "image-text total"};
        /* the panels of the losses the run has (fine-tuning has two; a run
         * without region updates has no box losses) */
        xv_plot_panel panels[N_PANELS];
        int n = 0;
        for (int p = 0; p < N_PANELS; p++) {
            bool any = false;
            for (int i = 0; i < s[p].n && !any; i++) any = isfinite(s[p].y[i]);
            if (any) panels[n++] = (xv_plot_panel){titles[p], s[p].x, s[p].y, s[p].n};
        }
        if (n == 0) panels[n++] = (xv_plot_panel){titles[P_TOTAL], s[P_TOTAL].x, s[P_TOTAL].y, s[P_TOTAL].n};
        xv_plot_opts o = xv_plot_opts_default();
        o.smooth = smooth;
        o.title = title;
        st = xv_plot_png(png_path, panels, n, &o);
    }
    for (int p = 0; p < N_PANELS; p++) free(s[p].x), free(s[p].y);
    return st;
}

/* ---- progress line ---- */

enum { R_ITC, R_ITM, R_MLM, R_BBOX, R_GIOU, N_RING };

struct xv_progress {
    int window;
    int64_t total, start_step;
    double t0;
    double *ring[N_RING];
    int count[N_RING], head[N_RING];
    double *rate_texts, *rate_secs; /* samples/s over the last updates */
    int rate_count, rate_head;
    double last_lr;
};

xv_progress *xv_progress_new(int window, int64_t total_steps, int64_t start_step) {
    xv_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->window = window < 1 ? 1 : window;
    p->total = total_steps;
    p->start_step = start_step;
    p->t0 = xv_monotonic_seconds();
    bool ok = true;
    for (int i = 0; i < N_RING; i++) ok &= (p->ring[i] = calloc((size_t)p->window, sizeof(double))) != NULL;
    ok &= (p->rate_texts = calloc((size_t)p->window, sizeof(double))) != NULL;
    ok &= (p->rate_secs = calloc((size_t)p->window, sizeof(double))) != NULL;
    if (!ok) {
        xv_progress_free(p);
        return NULL;
    }
    return p;
}

void xv_progress_free(xv_progress *p) {
    if (!p) return;
    for (int i = 0; i < N_RING; i++) free(p->ring[i]);
    free(p->rate_texts);
    free(p->rate_secs);
    free(p);
}

static void ring_add(xv_progress *p, int k, double v) {
    if (!isfinite(v)) return;
    p->ring[k][p->head[k]] = v;
    p->head[k] = (p->head[k] + 1) % p->window;
    if (p->count[k] < p->window) p->count[k]++;
}

/* The window's mean as text, "-" until a value exists (the region losses
 * before the first region update, a loss whose every value was non-finite). */
static const char *ring_mean(const xv_progress *p, int k, char *buf, size_t n) {
    if (!p->count[k]) return "-";
    double s = 0;
    for (int i = 0; i < p->count[k]; i++) s += p->ring[k][i];
    snprintf(buf, n, "%.4f", s / p->count[k]);
    return buf;
}

void xv_progress_add(xv_progress *p, const xv_update_record *r) {
    if (r->region) {
        ring_add(p, R_BBOX, r->loss_bbox);
        ring_add(p, R_GIOU, r->loss_giou);
    } else {
        ring_add(p, R_ITC, r->loss_itc);
        ring_add(p, R_ITM, r->loss_itm);
        ring_add(p, R_MLM, r->loss_mlm);
    }
    /* a region update runs at the rate of the image-text update after it */
    p->last_lr = r->lr;
    p->rate_texts[p->rate_head] = r->n_texts;
    p->rate_secs[p->rate_head] = r->seconds;
    p->rate_head = (p->rate_head + 1) % p->window;
    if (p->rate_count < p->window) p->rate_count++;
}

static void clock_str(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void xv_progress_print(xv_progress *p, FILE *f, int64_t steps_done, bool tty) {
    double texts = 0, secs = 0;
    for (int i = 0; i < p->rate_count; i++) texts += p->rate_texts[i], secs += p->rate_secs[i];
    const double elapsed = xv_monotonic_seconds() - p->t0;
    const int64_t run = steps_done - p->start_step;
    double eta = run > 0 ? elapsed / (double)run * (double)(p->total - steps_done) : NAN;
    char el[32], et[32], m[N_RING][32];
    clock_str(elapsed, el, sizeof el);
    clock_str(eta, et, sizeof et);
    static const char *const term[N_RING] = {"itc", "itm", "mlm", "bbox", "giou"};
    fprintf(f, "%sstep %lld/%lld", tty ? "\r" : "", (long long)steps_done, (long long)p->total);
    /* only the terms the run has (fine-tuning has two); pretraining (MLM)
     * shows its region pair as "-" until the first region update */
    for (int k = 0; k < N_RING; k++)
        if (p->count[k] || ((k == R_BBOX || k == R_GIOU) && p->count[R_MLM]))
            fprintf(f, "  %s %s", term[k], ring_mean(p, k, m[k], sizeof m[k]));
    fprintf(f, "  lr %.3g  %.1f samples/s  %s<%s%s", p->last_lr, secs > 0 ? texts / secs : 0.0, el, et,
            tty ? "  " : "\n");
    fflush(f);
}
