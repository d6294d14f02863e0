#include "train/checkpoint.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "io/checksum.h"
#include "io/safetensors.h"

#define CKPT_FORMAT "xvlm-train-checkpoint"
#define CKPT_VERSION "1"
#define CKPT_PREFIX "checkpoint_"
#define CKPT_SUFFIX ".safetensors"
#define NAME_MAX_LEN 512

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint I64 values are stored little-endian by memcpy"
#endif

/* ---- checksum: sum over tensors of hash(name, dtype, shape, bytes); the sum
 * does not depend on the order in which the writer lays tensors out. ---- */
static uint64_t entry_hash(const char *name, int dtype, int ndim, const int64_t *shape, const void *data,
                           size_t nbytes) {
    uint64_t h = xv_hash64(name, strlen(name), 0x5851F42D4C957F2Dull);
    int64_t desc[1 + XV_ST_MAX_DIMS + 1] = {dtype, ndim};
    for (int d = 0; d < ndim; d++) desc[2 + d] = shape[d];
    h = xv_hash64(desc, sizeof(int64_t) * (size_t)(2 + ndim), h);
    return xv_hash64(data, nbytes, h);
}

typedef struct {
    xv_st_writer *w;
    uint64_t sum;
} ckpt_out;

static xv_status put(ckpt_out *o, const char *name, xv_st_dtype dt, const int64_t *shape, int ndim,
                     const void *data, bool borrow) {
    size_t nbytes = xv_st_dtype_size(dt);
    for (int d = 0; d < ndim; d++) nbytes *= (size_t)shape[d];
    XV_TRY(xv_st_writer_add(o->w, name, dt, shape, ndim, data, borrow));
    o->sum += entry_hash(name, (int)dt, ndim, shape, data, nbytes);
    return XV_OK;
}

static xv_status put_i64(ckpt_out *o, const char *name, int64_t v) {
    return put(o, name, XV_ST_I64, NULL, 0, &v, false);
}

/* "<a><b>" into buf, refusing names too long for the format's fixed buffers. */
static xv_status join(char *buf, const char *a, const char *b) {
    int n = snprintf(buf, NAME_MAX_LEN, "%s%s", a, b);
    if (n < 0 || n >= NAME_MAX_LEN)
        return xv_error(XV_ERR_INVALID_ARG, "checkpoint: name %s%s longer than %d bytes", a, b, NAME_MAX_LEN - 1);
    return XV_OK;
}

static bool reserved(const char *name) { return !strncmp(name, "optim.", 6) || !strncmp(name, "train.", 6); }

static xv_status check_state(const xv_train_state *st) {
    if (!st || !st->params || !st->step || !st->epoch)
        return xv_error(XV_ERR_INVALID_ARG, "checkpoint: the train state needs params, step and epoch");
    for (int i = 0; i < st->params->n; i++)
        if (reserved(st->params->items[i]->name))
            return xv_error(XV_ERR_INVALID_ARG, "checkpoint: parameter name %s clashes with the state prefixes",
                            st->params->items[i]->name);
    for (int i = 0; i < st->n_counters; i++)
        if (!st->counters[i].name || !st->counters[i].name[0] || !st->counters[i].value)
            return xv_error(XV_ERR_INVALID_ARG, "checkpoint: counter %d has no name or value", i);
    for (int i = 0; i < st->n_rngs; i++)
        if (!st->rngs[i].name || !st->rngs[i].name[0] || !st->rngs[i].rng)
            return xv_error(XV_ERR_INVALID_ARG, "checkpoint: rng %d has no name or state", i);
    return XV_OK;
}

static xv_status add_all(ckpt_out *o, const xv_train_state *st) {
    char name[NAME_MAX_LEN];
    for (int i = 0; i < st->params->n; i++) {
        const xv_tensor *t = st->params->items[i];
        XV_TRY(put(o, t->name, XV_ST_F32, t->shape, t->ndim, t->data, true));
    }
    if (st->opt) {
        for (int i = 0; i < st->opt->n; i++) {
            const xv_adamw_slot *s = &st->opt->slots[i];
            const xv_tensor *t = s->param;
            XV_TRY(join(name, "optim.m.", t->name));
            XV_TRY(put(o, name, XV_ST_F32, t->shape, t->ndim, s->m, true));
            XV_TRY(join(name, "optim.v.", t->name));
            XV_TRY(put(o, name, XV_ST_F32, t->shape, t->ndim, s->v, true));
            XV_TRY(join(name, "optim.step.", t->name));
            XV_TRY(put_i64(o, name, s->step));
        }
    }
    XV_TRY(put_i64(o, "train.step", *st->step));
    XV_TRY(put_i64(o, "train.epoch", *st->epoch));
    if (st->sched) {
        XV_TRY(put_i64(o, "train.sched.pos", st->sched->pos));
        XV_TRY(put_i64(o, "train.sched.total", st->sched->total_steps));
        XV_TRY(put_i64(o, "train.sched.warmup", st->sched->warmup_steps));
    }
    for (int i = 0; i < st->n_counters; i++) {
        XV_TRY(join(name, "train.counter.", st->counters[i].name));
        XV_TRY(put_i64(o, name, *st->counters[i].value));
    }
    for (int i = 0; i < st->n_rngs; i++) {
        XV_TRY(join(name, "train.rng.", st->rngs[i].name));
        int64_t kc[2] = {(int64_t)st->rngs[i].rng->key, (int64_t)st->rngs[i].rng->counter};
        XV_TRY(put(o, name, XV_ST_I64, (const int64_t[]){2}, 1, kc, false));
    }
    return XV_OK;
}

static xv_status add_meta(ckpt_out *o, const xv_train_state *st) {
    XV_TRY(xv_st_writer_meta(o->w, "format", CKPT_FORMAT));
    XV_TRY(xv_st_writer_meta(o->w, "format_version", CKPT_VERSION));
    if (st->config) XV_TRY(xv_st_writer_meta(o->w, "config", st->config));
    if (st->opt) {
        char v[256];
        const xv_adamw_config *c = &st->opt->cfg;
        snprintf(v, sizeof v, "lr=%.17g weight_decay=%.17g lr_mult=%.17g betas=(%.17g,%.17g) eps=%.17g correct_bias=%d",
                 c->lr, c->weight_decay, c->lr_mult, c->beta1, c->beta2, c->eps, (int)c->correct_bias);
        XV_TRY(xv_st_writer_meta(o->w, "optimizer", v));
    }
    char sum[32];
    snprintf(sum, sizeof sum, "%016" PRIx64, o->sum);
    return xv_st_writer_meta(o->w, "checksum", sum);
}

xv_status xv_ckpt_write(const char *path, const xv_train_state *st) {
    XV_TRY(check_state(st));
    ckpt_out o = {0};
    XV_TRY(xv_st_writer_new(&o.w));
    xv_status s = add_all(&o, st);
    if (s == XV_OK) s = add_meta(&o, st);
    if (s == XV_OK) s = xv_st_writer_write(o.w, path);
    xv_st_writer_free(o.w);
    if (s != XV_OK) return xv_error_wrap(s, "saving checkpoint %s", path);
    return XV_OK;
}

/* ---- directory of checkpoints ---- */

/* Step of "checkpoint_<digits>.safetensors", or -1 for any other name (temp files included). */
static int64_t step_of(const char *fname) {
    size_t lp = strlen(CKPT_PREFIX), ls = strlen(CKPT_SUFFIX), n = strlen(fname);
    if (n <= lp + ls || strncmp(fname, CKPT_PREFIX, lp) || strcmp(fname + n - ls, CKPT_SUFFIX)) return -1;
    int64_t v = 0;
    size_t nd = n - lp - ls;
    if (nd > 18) return -1;
    for (size_t i = lp; i < n - ls; i++) {
        if (!isdigit((unsigned char)fname[i])) return -1;
        v = v * 10 + (fname[i] - '0');
    }
    return v;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Steps of the checkpoints in dir, ascending (malloc'd). */
static xv_status list_steps(const char *dir, int64_t **steps_out, int *n_out) {
    DIR *d = opendir(dir);
    if (!d) return xv_error(errno == ENOENT ? XV_ERR_MISSING : XV_ERR_IO, "checkpoint directory %s: %s", dir,
                            strerror(errno));
    int64_t *steps = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    xv_status s = XV_OK;
    while ((e = readdir(d))) {
        int64_t v = step_of(e->d_name);
        if (v < 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *ns = realloc(steps, sizeof *ns * (size_t)cap);
            if (!ns) {
                s = xv_error(XV_ERR_NOMEM, "checkpoint directory %s: out of memory", dir);
                break;
            }
            steps = ns;
        }
        steps[n++] = v;
    }
    closedir(d);
    if (s != XV_OK) {
        free(steps);
        return s;
    }
    if (n > 0) qsort(steps, (size_t)n, sizeof *steps, cmp_i64); /* steps is NULL for an empty folder */
    *steps_out = steps;
    *n_out = n;
    return XV_OK;
}

static xv_status path_for(const char *dir, int64_t step, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%s/" CKPT_PREFIX "%09" PRId64 CKPT_SUFFIX, dir, step);
    if (n < 0 || (size_t)n >= cap) return xv_error(XV_ERR_INVALID_ARG, "checkpoint: path in %s too long", dir);
    return XV_OK;
}

xv_status xv_ckpt_save(const char *dir, int keep_last, const xv_train_state *st, char *path_out,
                       size_t path_cap) {
    XV_TRY(check_state(st));
    if (*st->step < 0) return xv_error(XV_ERR_INVALID_ARG, "checkpoint: step %" PRId64 " < 0", *st->step);
    char path[4096];
    XV_TRY(path_for(dir, *st->step, path, sizeof path));
    XV_TRY(xv_ckpt_write(path, st));
    if (path_out) {
        if (strlen(path) >= path_cap) return xv_error(XV_ERR_INVALID_ARG, "checkpoint: path_out too small for %s", path);
        strcpy(path_out, path);
    }
    if (keep_last <= 0) return XV_OK;
    int64_t *steps;
    int n;
    xv_status s = list_steps(dir, &steps, &n);
    if (s != XV_OK) return xv_error_wrap(s, "checkpoint %s written, but pruning old ones failed", path);
    /* Oldest first; the file just written always stays (a run resumed from an
     * older checkpoint may find higher steps on disk). */
    int excess = n - keep_last;
    for (int i = 0; i < n && excess > 0; i++) {
        if (steps[i] == *st->step) continue;
        char old[4096];
        if (path_for(dir, steps[i], old, sizeof old) != XV_OK || (unlink(old) != 0 && errno != ENOENT)) {
            s = xv_error(XV_ERR_IO, "checkpoint %s written, but removing the old %s failed: %s", path, old,
                         strerror(errno));
            break;
        }
        excess--;
    }
    free(steps);
    return s;
}

xv_status xv_ckpt_latest(const char *dir, char *path_out, size_t path_cap) {
    int64_t *steps;
    int n;
    XV_TRY(list_steps(dir, &steps, &n));
    int64_t last = n ? steps[n - 1] : -1;
    free(steps);
    if (last < 0) return xv_error(XV_ERR_MISSING, "no checkpoint_*.safetensors in %s", dir);
    return path_for(dir, last, path_out, path_cap);
}

xv_status xv_ckpt_resume_path(const char *dir, const char *resume, FILE *notes, char *path_out, size_t cap) {
    char newest[4096];
    const xv_status have = xv_ckpt_latest(dir, newest, sizeof newest);
    if (have != XV_OK && have != XV_ERR_MISSING) return have;
    xv_error_clear();
    path_out[0] = 0;
    if (!resume) {
        if (have == XV_OK)
            return xv_error(XV_ERR_INVALID_ARG,
                            "%s holds checkpoints of an earlier run (%s): pass --resume to continue it, or choose "
                            "another --output-dir",
                            dir, newest);
        return XV_OK;
    }
    const char *from = resume[0] ? resume : have == XV_OK ? newest : NULL;
    if (!from) {
        if (notes) fprintf(notes, "note: no checkpoint in %s: starting from step 0\n", dir);
        return XV_OK;
    }
    if (strlen(from) >= cap) return xv_error(XV_ERR_INVALID_ARG, "checkpoint path %s is too long", from);
    strcpy(path_out, from);
    return XV_OK;
}

xv_status xv_ckpt_check_newest(const char *dir, int64_t step) {
    int64_t *steps;
    int n;
    const xv_status st = list_steps(dir, &steps, &n);
    if (st == XV_ERR_MISSING) {
        xv_error_clear();
        return XV_OK;
    }
    XV_TRY(st);
    const int64_t last = n ? steps[n - 1] : -1;
    free(steps);
    if (last > step)
        return xv_error(XV_ERR_INVALID_ARG,
                        "%s holds a later checkpoint (step %lld) than the one resumed (step %lld): resume from it, or "
                        "move it away / choose another --output-dir",
                        dir, (long long)last, (long long)step);
    return XV_OK;
}

/* ---- loading ---- */

static bool same_shape(const xv_st_tensor *f, const xv_tensor *t) {
    if (f->ndim != t->ndim) return false;
    for (int d = 0; d < t->ndim; d++)
        if (f->shape[d] != t->shape[d]) return false;
    return true;
}

static xv_status find_f32(const xv_st_file *f, const char *name, const xv_tensor *like, const xv_st_tensor **out) {
    const xv_st_tensor *e = xv_st_find(f, name);
    if (!e) return xv_error(XV_ERR_MISSING, "tensor %s is missing", name);
    if (e->dtype != XV_ST_F32 || !same_shape(e, like)) {
        char want[96];
        xv_shape_str(like, want, sizeof want);
        return xv_error(XV_ERR_SHAPE, "tensor %s: %s of rank %d, expected F32 %s", name, xv_st_dtype_name(e->dtype),
                        e->ndim, want);
    }
    *out = e;
    return XV_OK;
}

static xv_status find_i64(const xv_st_file *f, const char *name, int64_t numel, const xv_st_tensor **out) {
    const xv_st_tensor *e = xv_st_find(f, name);
    if (!e) return xv_error(XV_ERR_MISSING, "tensor %s is missing", name);
    if (e->dtype != XV_ST_I64 || e->numel != numel || e->ndim != (numel == 1 ? 0 : 1))
        return xv_error(XV_ERR_FORMAT, "tensor %s: expected I64 with %" PRId64 " value(s)", name, numel);
    *out = e;
    return XV_OK;
}

static int64_t i64_at(const xv_st_tensor *e, int k) {
    int64_t v;
    memcpy(&v, (const char *)e->data + 8 * k, 8);
    return v;
}

static xv_status verify_file(const xv_st_file *f) {
    const char *fmt = xv_st_metadata(f, "format");
    if (!fmt || strcmp(fmt, CKPT_FORMAT))
        return xv_error(XV_ERR_FORMAT, "not an xvlm training checkpoint (metadata format is %s)", fmt ? fmt : "absent");
    const char *ver = xv_st_metadata(f, "format_version");
    if (!ver || strcmp(ver, CKPT_VERSION))
        return xv_error(XV_ERR_UNSUPPORTED, "checkpoint format_version %s, this build reads %s", ver ? ver : "absent",
                        CKPT_VERSION);
    const char *want = xv_st_metadata(f, "checksum");
    if (!want) return xv_error(XV_ERR_FORMAT, "checkpoint has no checksum");
    uint64_t sum = 0;
    for (int i = 0; i < xv_st_count(f); i++) {
        const xv_st_tensor *t = xv_st_at(f, i);
        sum += entry_hash(t->name, (int)t->dtype, t->ndim, t->shape, t->data, t->nbytes);
    }
    char got[32];
    snprintf(got, sizeof got, "%016" PRIx64, sum);
    if (strcmp(got, want))
        return xv_error(XV_ERR_FORMAT, "checksum mismatch (stored %s, computed %s): the file is corrupt", want, got);
    return XV_OK;
}

/* Every check that can fail, before anything is modified. */
static xv_status validate(const xv_st_file *f, const xv_train_state *st) {
    char name[NAME_MAX_LEN];
    const xv_st_tensor *e;
    for (int i = 0; i < st->params->n; i++) {
        const xv_tensor *t = st->params->items[i];
        if (!st->params->owns_data[i])
            return xv_error(XV_ERR_INVALID_ARG, "parameter %s is borrowed read-only memory", t->name);
        XV_TRY(find_f32(f, t->name, t, &e));
    }
    for (int i = 0; i < xv_st_count(f); i++) {
        const char *n = xv_st_at(f, i)->name;
        if (!reserved(n) && !xv_params_find(st->params, n))
            return xv_error(XV_ERR_FORMAT, "tensor %s is not a parameter of this model", n);
    }
    if (st->opt) {
        for (int i = 0; i < st->opt->n; i++) {
            const xv_tensor *t = st->opt->slots[i].param;
            XV_TRY(join(name, "optim.m.", t->name));
            XV_TRY(find_f32(f, name, t, &e));
            XV_TRY(join(name, "optim.v.", t->name));
            XV_TRY(find_f32(f, name, t, &e));
            XV_TRY(join(name, "optim.step.", t->name));
            XV_TRY(find_i64(f, name, 1, &e));
            if (i64_at(e, 0) < 0) return xv_error(XV_ERR_FORMAT, "tensor %s: negative step", name);
        }
    }
    XV_TRY(find_i64(f, "train.step", 1, &e));
    XV_TRY(find_i64(f, "train.epoch", 1, &e));
    if (st->sched) {
        XV_TRY(find_i64(f, "train.sched.pos", 1, &e));
        XV_TRY(find_i64(f, "train.sched.total", 1, &e));
        XV_TRY(find_i64(f, "train.sched.warmup", 1, &e));
    }
    for (int i = 0; i < st->n_counters; i++) {
        XV_TRY(join(name, "train.counter.", st->counters[i].name));
        XV_TRY(find_i64(f, name, 1, &e));
    }
    for (int i = 0; i < st->n_rngs; i++) {
        XV_TRY(join(name, "train.rng.", st->rngs[i].name));
        XV_TRY(find_i64(f, name, 2, &e));
    }
    return XV_OK;
}

static int64_t get_i64(const xv_st_file *f, const char *a, const char *b) {
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%s%s", a, b); /* lengths checked by validate() */
    return i64_at(xv_st_find(f, name), 0);
}

static void copy_f32(const xv_st_file *f, const char *a, const char *b, float *dst) {
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%s%s", a, b);
    const xv_st_tensor *e = xv_st_find(f, name);
    memcpy(dst, e->data, e->nbytes);
}

static void restore(const xv_st_file *f, const xv_train_state *st) {
    for (int i = 0; i < st->params->n; i++) copy_f32(f, "", st->params->items[i]->name, st->params->items[i]->data);
    if (st->opt)
        for (int i = 0; i < st->opt->n; i++) {
            xv_adamw_slot *s = &st->opt->slots[i];
            copy_f32(f, "optim.m.", s->param->name, s->m);
            copy_f32(f, "optim.v.", s->param->name, s->v);
            s->step = get_i64(f, "optim.step.", s->param->name);
        }
    *st->step = get_i64(f, "train.step", "");
    *st->epoch = get_i64(f, "train.epoch", "");
    if (st->sched) {
        st->sched->pos = get_i64(f, "train.sched.pos", "");
        st->sched->total_steps = get_i64(f, "train.sched.total", "");
        st->sched->warmup_steps = get_i64(f, "train.sched.warmup", "");
    }
    for (int i = 0; i < st->n_counters; i++) *st->counters[i].value = get_i64(f, "train.counter.", st->counters[i].name);
    for (int i = 0; i < st->n_rngs; i++) {
        char name[NAME_MAX_LEN];
        snprintf(name, sizeof name, "train.rng.%s", st->rngs[i].name);
        const xv_st_tensor *e = xv_st_find(f, name);
        st->rngs[i].rng->key = (uint64_t)i64_at(e, 0);
        st->rngs[i].rng->counter = (uint64_t)i64_at(e, 1);
    }
}

xv_status xv_ckpt_load(const char *path, const xv_train_state *st, char **config_out) {
    if (config_out) *config_out = NULL;
    XV_TRY(check_state(st));
    xv_st_file *f;
    xv_status s = xv_st_open(path, &f);
    if (s != XV_OK) return xv_error_wrap(s, "loading checkpoint %s", path);
    s = verify_file(f);
    if (s == XV_OK) s = validate(f, st);
    char *config = NULL;
    if (s == XV_OK && config_out && xv_st_metadata(f, "config")) {
        config = strdup(xv_st_metadata(f, "config"));
        if (!config) s = xv_error(XV_ERR_NOMEM, "out of memory for the config");
    }
    if (s == XV_OK) {
        restore(f, st);
        if (config_out) *config_out = config;
    }
    xv_st_close(f);
    if (s != XV_OK) return xv_error_wrap(s, "loading checkpoint %s", path);
    return XV_OK;
}

xv_status xv_ckpt_verify(const char *path) {
    xv_st_file *f;
    xv_status s = xv_st_open(path, &f);
    if (s == XV_OK) {
        s = verify_file(f);
        xv_st_close(f);
    }
    return s == XV_OK ? XV_OK : xv_error_wrap(s, "checkpoint %s", path);
}

void xv_ckpt_remove_stale(const char *dir, FILE *notes) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".tmp") && !strncmp(e->d_name, CKPT_PREFIX, strlen(CKPT_PREFIX))) {
            char *p = xv_fs_join(dir, e->d_name);
            if (p && unlink(p) == 0 && notes) fprintf(notes, "note: removed the unfinished %s\n", p);
            free(p);
        }
    }
    closedir(d);
}
