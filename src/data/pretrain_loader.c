/* The pretraining loader: worker threads, their bounded queues, the fixed
 * round-robin hand-out, and the saved / restored position (pretrain_data.h).
 *
 * Each worker owns `prefetch + 1` batch slots used as a ring: the worker fills
 * slot prod % n when it is FREE and marks it READY; the consumer takes slot
 * cons % n of the worker whose turn it is when it is READY, lends it to the
 * caller (LENT) and frees it on the next call. Each READY slot carries the
 * worker's state right after making it, which becomes the worker's saved
 * position once the caller has taken the batch. */
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/pretrain_loader_internal.h"
#include "data/pretrain_sample.h"

enum { SLOT_FREE, SLOT_READY, SLOT_LENT };

typedef struct {
    xv_jsonl_pos pos;
    xv_rng rng;
    xv_pretrain_counters count;
} worker_state;

typedef struct {
    xv_pretrain_batch batch; /* arrays at full capacity */
    worker_state after;
    int state;
} slot_t;

typedef struct xv_pretrain_loader xv_pretrain_loader;

typedef struct {
    xv_pretrain_loader *l;
    int id;
    pthread_t thread;
    bool running;
    /* owned by the thread while it runs */
    xv_jsonl_reader *reader;
    xv_rng rng;
    xv_pretrain_counters count;
    int warn_budget;
    char label[48];
    xv_sampler sampler;
    int64_t pass_epoch, pass_samples; /* guard against a shard without usable records */
    bool pass_fresh;
    xv_status fail; /* the status behind a FAILED batch */
    /* region staging: the texts of up to max_images records before the collate */
    int32_t *st_ids, *st_atts, *st_masked, *st_pos, *st_mids, *st_image_atts, *st_is_image, *st_group, *st_keep;
    float *st_target;
    xv_text_row *st_rows;
    /* shared with the consumer, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot_t *slots;
    int n_slots;
    int64_t prod, cons;
    bool finished; /* no further batch will come (end of data or error) */
    xv_status err;
    char errmsg[1024];
    /* owned by the consumer */
    worker_state consumed;
    bool exhausted;
} worker;

struct xv_pretrain_loader {
    xv_pretrain_config cfg; /* strings point into the copies below */
    char *vocab_path, *image_root, *image_key, *caption_key;
    xv_file_list files;
    int rank, world;
    uint64_t seed, config_hash;
    xv_tokenizer *tok;
    bool *is_continuation;
    xv_sample_shared shared;
    atomic_int stop;
    worker *workers;
    int n_workers;
    int next_worker;
    int64_t n_consumed;
    int last_worker; /* of the batch last handed out, -1 = none */
    slot_t *lent;
    worker *lent_by;
    char **state_names;
    int state_len;
};

/* ------------------------------------------------------------------ batches */

static void batch_free(xv_pretrain_batch *b) {
    free(b->image);
    free(b->text_ids);
    free(b->text_atts);
    free(b->text_ids_masked);
    free(b->masked_pos);
    free(b->masked_ids);
    free(b->idx_to_group_img);
    free(b->image_atts);
    free(b->target_bbox);
    free(b->is_image);
    *b = (xv_pretrain_batch){0};
}

static size_t image_floats(const xv_pretrain_config *c) { return (size_t)3 * c->image_res * c->image_res; }

static bool batch_alloc(const xv_pretrain_loader *l, xv_pretrain_batch *b) {
    const xv_pretrain_config *c = &l->cfg;
    bool regions = c->kind == XV_PRETRAIN_REGIONS;
    size_t ni = (size_t)(regions ? c->max_images : c->batch_size), nt = (size_t)c->batch_size;
    size_t L = (size_t)c->max_tokens, M = (size_t)c->masking.max_masks, A = (size_t)(1 + l->shared.n_patch * l->shared.n_patch);
    *b = (xv_pretrain_batch){.res = c->image_res, .text_len = c->max_tokens, .max_masks = c->masking.max_masks};
    b->image = malloc(ni * image_floats(c) * sizeof(float));
    b->text_ids = malloc(nt * L * sizeof(int32_t));
    b->text_atts = malloc(nt * L * sizeof(int32_t));
    b->text_ids_masked = malloc(nt * L * sizeof(int32_t));
    b->masked_pos = malloc(nt * M * sizeof(int32_t));
    b->masked_ids = malloc(nt * M * sizeof(int32_t));
    bool ok = b->image && b->text_ids && b->text_atts && b->text_ids_masked && b->masked_pos && b->masked_ids;
    if (regions) {
        b->n_atts = (int)A;
        b->idx_to_group_img = malloc(nt * sizeof(int32_t));
        b->image_atts = malloc(nt * A * sizeof(int32_t));
        b->target_bbox = malloc(nt * 4 * sizeof(float));
        b->is_image = malloc(nt * sizeof(int32_t));
        ok = ok && b->idx_to_group_img && b->image_atts && b->target_bbox && b->is_image;
    }
    return ok;
}

static xv_text_row batch_row(const xv_pretrain_batch *b, int i) {
    size_t L = (size_t)b->text_len, M = (size_t)b->max_masks;
    return (xv_text_row){b->text_ids + i * L, b->text_atts + i * L, b->text_ids_masked + i * L,
                         b->masked_pos + i * M, b->masked_ids + i * M};
}

/* ------------------------------------------------------------------ workers */

static void staging_free(worker *w) {
    free(w->st_ids), free(w->st_atts), free(w->st_masked), free(w->st_pos), free(w->st_mids);
    free(w->st_image_atts), free(w->st_is_image), free(w->st_group), free(w->st_keep), free(w->st_target);
    free(w->st_rows);
}

static bool staging_alloc(worker *w) {
    const xv_pretrain_config *c = &w->l->cfg;
    if (c->kind != XV_PRETRAIN_REGIONS) return true;
    size_t S = (size_t)c->max_images * (size_t)c->max_regions, L = (size_t)c->max_tokens, M = (size_t)c->masking.max_masks;
    size_t A = (size_t)(1 + w->l->shared.n_patch * w->l->shared.n_patch);
    size_t K = S > (size_t)c->batch_size ? S : (size_t)c->batch_size;
    w->st_ids = malloc(S * L * sizeof(int32_t));
    w->st_atts = malloc(S * L * sizeof(int32_t));
    w->st_masked = malloc(S * L * sizeof(int32_t));
    w->st_pos = malloc(S * M * sizeof(int32_t));
    w->st_mids = malloc(S * M * sizeof(int32_t));
    w->st_image_atts = malloc(S * A * sizeof(int32_t));
    w->st_is_image = malloc(S * sizeof(int32_t));
    w->st_group = malloc(S * sizeof(int32_t));
    w->st_keep = malloc(K * sizeof(int32_t));
    w->st_target = malloc(S * 4 * sizeof(float));
    w->st_rows = malloc((size_t)c->max_regions * sizeof(xv_text_row));
    return w->st_ids && w->st_atts && w->st_masked && w->st_pos && w->st_mids && w->st_image_atts && w->st_is_image &&
           w->st_group && w->st_keep && w->st_target && w->st_rows;
}

typedef enum { MADE, STOPPED, FAILED } make_result;

/* The next record of the shard, with the guard against endless skipping. */
static make_result next_record(worker *w, cJSON **rec, xv_jsonl_where *where) {
    if (atomic_load(&w->l->stop)) return STOPPED;
    if ((w->fail = xv_jsonl_next(w->reader, rec, where)) != XV_OK) return FAILED;
    if (*rec && where->epoch != w->pass_epoch) {
        if (w->pass_fresh && w->pass_samples == 0) {
            cJSON_Delete(*rec);
            *rec = NULL;
            w->fail = xv_error(XV_ERR_MISSING, "%s: a whole pass over its shard gave no usable record", w->label);
            return FAILED;
        }
        w->pass_epoch = where->epoch;
        w->pass_fresh = true;
        w->pass_samples = 0;
    }
    return MADE;
}

static make_result make_image_batch(worker *w, xv_pretrain_batch *b) {
    const xv_pretrain_config *c = &w->l->cfg;
    int n = 0;
    while (n < c->batch_size) {
        cJSON *rec;
        xv_jsonl_where where;
        make_result m = next_record(w, &rec, &where);
        if (m != MADE) return m;
        if (!rec) break; /* end of data */
        xv_sample_result r = xv_sample_image_text(&w->sampler, rec, &where, b->image + (size_t)n * image_floats(c),
                                                  batch_row(b, n));
        cJSON_Delete(rec);
        if (r == XV_SAMPLE_FATAL) return w->fail = XV_ERR_NOMEM, FAILED; /* only memory fails on any input */
        if (r == XV_SAMPLE_OK) n++, w->pass_samples++;
    }
    b->n_images = b->n_texts = n;
    return MADE;
}

static xv_text_row staging_row(const worker *w, int i) {
    size_t L = (size_t)w->l->cfg.max_tokens, M = (size_t)w->l->cfg.masking.max_masks;
    return (xv_text_row){w->st_ids + i * L, w->st_atts + i * L, w->st_masked + i * L, w->st_pos + i * M,
                         w->st_mids + i * M};
}

static void copy_row(xv_text_row dst, xv_text_row src, size_t L, size_t M) {
    memcpy(dst.ids, src.ids, L * sizeof *dst.ids);
    memcpy(dst.atts, src.atts, L * sizeof *dst.atts);
    memcpy(dst.ids_masked, src.ids_masked, L * sizeof *dst.ids_masked);
    memcpy(dst.masked_pos, src.masked_pos, M * sizeof *dst.masked_pos);
    memcpy(dst.masked_ids, src.masked_ids, M * sizeof *dst.masked_ids);
}

static make_result make_region_batch(worker *w, xv_pretrain_batch *b) {
    const xv_pretrain_config *c = &w->l->cfg;
    size_t A = (size_t)b->n_atts;
    int n_img = 0, n_txt = 0;
    while (n_img < c->max_images) {
        cJSON *rec;
        xv_jsonl_where where;
        make_result m = next_record(w, &rec, &where);
        if (m != MADE) return m;
        if (!rec) break;
        for (int k = 0; k < c->max_regions; k++) w->st_rows[k] = staging_row(w, n_txt + k);
        xv_region_texts t = {.rows = w->st_rows, .image_atts = w->st_image_atts + (size_t)n_txt * A,
                             .target = w->st_target + (size_t)n_txt * 4, .is_image = w->st_is_image + n_txt};
        xv_sample_result r =
            xv_sample_region(&w->sampler, rec, &where, b->image + (size_t)n_img * image_floats(c), &t);
        cJSON_Delete(rec);
        if (r == XV_SAMPLE_FATAL) return w->fail = XV_ERR_NOMEM, FAILED;
        if (r != XV_SAMPLE_OK) continue;
        for (int k = 0; k < t.n; k++) w->st_group[n_txt + k] = n_img;
        n_txt += t.n;
        n_img++;
        w->pass_samples++;
    }
    b->n_images = n_img;
    b->n_texts = 0;
    if (n_img == 0) return MADE; /* end of data */
    /* The collate: exactly batch_size texts. */
    int padded = xv_region_choose_texts(&w->rng, n_txt, c->batch_size, w->st_keep);
    if (padded < 0) {
        w->fail = xv_error(XV_ERR_NOMEM, "%s: no memory for the collate", w->label);
        return FAILED;
    }
    w->count.padded_texts += padded;
    if (n_txt > c->batch_size) w->count.dropped_texts += n_txt - c->batch_size;
    size_t L = (size_t)c->max_tokens, M = (size_t)c->masking.max_masks;
    for (int i = 0; i < c->batch_size; i++) {
        int k = w->st_keep[i];
        copy_row(batch_row(b, i), staging_row(w, k), L, M);
        b->idx_to_group_img[i] = w->st_group[k];
        memcpy(b->image_atts + i * A, w->st_image_atts + k * A, A * sizeof *b->image_atts);
        memcpy(b->target_bbox + 4 * i, w->st_target + 4 * k, 4 * sizeof *b->target_bbox);
        b->is_image[i] = w->st_is_image[k];
    }
    b->n_texts = c->batch_size;
    return MADE;
}

static worker_state snapshot(const worker *w) {
    worker_state s = {.pos = xv_jsonl_tell(w->reader), .rng = w->rng, .count = w->count};
    xv_jsonl_counts jc = xv_jsonl_get_counts(w->reader);
    s.count.lines = jc.lines;
    s.count.bad_json = jc.malformed;
    s.count.unreadable_files = jc.unreadable_files;
    return s;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    xv_pretrain_loader *l = w->l;
    /* The image ops parallelise with OpenMP; here the workers are the
     * parallelism, so each runs its ops on one thread (this sets only this
     * thread's ICV). Results do not depend on it (static, per-row work). */
    omp_set_num_threads(1);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        slot_t *slot = &w->slots[w->prod % w->n_slots];
        while (!atomic_load(&l->stop) && slot->state != SLOT_FREE) pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
        if (atomic_load(&l->stop)) break;
        make_result m = l->cfg.kind == XV_PRETRAIN_REGIONS ? make_region_batch(w, &slot->batch)
                                                           : make_image_batch(w, &slot->batch);
        if (m == STOPPED) break;
        pthread_mutex_lock(&w->mu);
        if (m == FAILED) {
            w->err = w->fail != XV_OK ? w->fail : XV_ERR_INTERNAL;
            snprintf(w->errmsg, sizeof w->errmsg, "%s", xv_error_message());
            w->finished = true;
        } else if (slot->batch.n_images == 0) {
            w->finished = true;
        } else {
            slot->after = snapshot(w);
            slot->state = SLOT_READY;
            w->prod++;
        }
        bool done = w->finished;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        if (done) break;
    }
    return NULL;
}

/* Join every worker thread (the queues keep their content). */
static void stop_workers(xv_pretrain_loader *l) {
    atomic_store(&l->stop, 1);
    for (int k = 0; k < l->n_workers; k++) {
        worker *w = &l->workers[k];
        if (!w->l) continue; /* never initialised (a failed open) */
        pthread_mutex_lock(&w->mu);
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    for (int k = 0; k < l->n_workers; k++)
        if (l->workers[k].running) {
            pthread_join(l->workers[k].thread, NULL);
            l->workers[k].running = false;
        }
    atomic_store(&l->stop, 0);
}

/* Put a stopped worker at state s (its next batch is the one after s). */
static xv_status worker_reset(worker *w, const worker_state *s) {
    XV_TRY(xv_jsonl_seek(w->reader, &s->pos));
    xv_jsonl_counts jc = {.lines = s->count.lines, .malformed = s->count.bad_json,
                          .unreadable_files = s->count.unreadable_files};
    jc.records = jc.lines - jc.malformed;
    xv_jsonl_set_counts(w->reader, &jc);
    w->rng = s->rng;
    w->count = s->count;
    w->consumed = *s;
    w->pass_epoch = s->pos.epoch;
    w->pass_fresh = s->pos.file == 0 && s->pos.offset == 0 && s->pos.line == 0;
    w->pass_samples = 0;
    for (int i = 0; i < w->n_slots; i++) w->slots[i].state = SLOT_FREE;
    w->prod = w->cons = 0;
    w->finished = w->exhausted = false;
    w->err = XV_OK;
    w->errmsg[0] = '\0';
    return XV_OK;
}

static xv_status start_workers(xv_pretrain_loader *l) {
    for (int k = 0; k < l->n_workers; k++) {
        worker *w = &l->workers[k];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            stop_workers(l);
            return xv_error(XV_ERR_INTERNAL, "pretrain data: cannot start worker thread %d", k);
        }
        w->running = true;
    }
    return XV_OK;
}

/* ------------------------------------------------------------- the position */

enum { HEAD_LEN = 9, PER_WORKER = 7 + XV_PRETRAIN_N_COUNTERS };
#define STATE_VERSION INT64_C(0x58564c4401) /* "XVLD" v1 */

static const char *const k_head_names[HEAD_LEN] = {"version", "kind",        "rank",        "world",  "workers",
                                                   "seed",    "config_hash", "next_worker", "batches"};
static const char *const k_worker_fields[7] = {"epoch", "file", "offset", "line", "done", "rng_key", "rng_counter"};

static xv_status build_state_names(xv_pretrain_loader *l) {
    l->state_len = HEAD_LEN + PER_WORKER * l->n_workers;
    l->state_names = calloc((size_t)l->state_len, sizeof *l->state_names);
    if (!l->state_names) return xv_error(XV_ERR_NOMEM, "pretrain data: no memory");
    for (int i = 0; i < HEAD_LEN; i++) l->state_names[i] = strdup(k_head_names[i]);
    for (int k = 0; k < l->n_workers; k++)
        for (int f = 0; f < PER_WORKER; f++) {
            char name[64];
            const char *field = f < 7 ? k_worker_fields[f] : xv_pretrain_counter_name(f - 7);
            snprintf(name, sizeof name, "w%d.%s", k, field);
            l->state_names[HEAD_LEN + PER_WORKER * k + f] = strdup(name);
        }
    for (int i = 0; i < l->state_len; i++)
        if (!l->state_names[i]) return xv_error(XV_ERR_NOMEM, "pretrain data: no memory");
    return XV_OK;
}

int xv_pretrain_state_len(const xv_pretrain_loader *l) { return l->state_len; }

const char *xv_pretrain_state_name(const xv_pretrain_loader *l, int i) {
    return i >= 0 && i < l->state_len ? l->state_names[i] : NULL;
}

xv_status xv_pretrain_state_save(const xv_pretrain_loader *l, int64_t *v, int n) {
    if (n != l->state_len)
        return xv_error(XV_ERR_INVALID_ARG, "pretrain data: state has %d values, not %d", l->state_len, n);
    const int64_t head[HEAD_LEN] = {STATE_VERSION, l->cfg.kind, l->rank, l->world, l->n_workers, (int64_t)l->seed,
                                    (int64_t)l->config_hash, l->next_worker, l->n_consumed};
    memcpy(v, head, sizeof head);
    for (int k = 0; k < l->n_workers; k++) {
        const worker_state *s = &l->workers[k].consumed;
        int64_t *o = v + HEAD_LEN + PER_WORKER * k;
        o[0] = s->pos.epoch, o[1] = s->pos.file, o[2] = s->pos.offset, o[3] = s->pos.line, o[4] = s->pos.done;
        o[5] = (int64_t)s->rng.key, o[6] = (int64_t)s->rng.counter;
        memcpy(o + 7, &s->count, sizeof s->count);
    }
    return XV_OK;
}

/* Release the slot lent to the caller by the previous call. */
static void release_lent(xv_pretrain_loader *l) {
    if (!l->lent) return;
    worker *w = l->lent_by;
    pthread_mutex_lock(&w->mu);
    l->lent->state = SLOT_FREE;
    w->cons++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    l->lent = NULL;
    l->lent_by = NULL;
}

xv_status xv_pretrain_state_restore(xv_pretrain_loader *l, const int64_t *v, int n) {
    if (n != l->state_len)
        return xv_error(XV_ERR_INVALID_ARG, "pretrain data: state has %d values, this loader needs %d (%d workers)", n,
                        l->state_len, l->n_workers);
    const int64_t want[7] = {STATE_VERSION, l->cfg.kind, l->rank, l->world, l->n_workers, (int64_t)l->seed,
                             (int64_t)l->config_hash};
    for (int i = 0; i < 7; i++)
        if (v[i] != want[i])
            return xv_error(XV_ERR_INVALID_ARG,
                            "pretrain data: saved %s %lld differs from this loader's %lld (resume needs the same "
                            "files, settings, seed, rank, world and workers)",
                            k_head_names[i], (long long)v[i], (long long)want[i]);
    if (v[7] < 0 || v[7] >= l->n_workers || v[8] < 0)
        return xv_error(XV_ERR_INVALID_ARG, "pretrain data: saved next worker %lld / batch count %lld",
                        (long long)v[7], (long long)v[8]);
    worker_state *saved = malloc((size_t)l->n_workers * sizeof *saved);
    if (!saved) return xv_error(XV_ERR_NOMEM, "pretrain data: no memory");
    for (int k = 0; k < l->n_workers; k++) {
        const int64_t *o = v + HEAD_LEN + PER_WORKER * k;
        saved[k] = (worker_state){.pos = {o[0], o[1], o[2], o[3], o[4]}, .rng = {(uint64_t)o[5], (uint64_t)o[6]}};
        memcpy(&saved[k].count, o + 7, sizeof saved[k].count);
    }
    release_lent(l);
    stop_workers(l);
    xv_status s = XV_OK;
    for (int k = 0; k < l->n_workers && s == XV_OK; k++) s = worker_reset(&l->workers[k], &saved[k]);
    if (s == XV_OK) {
        l->next_worker = (int)v[7];
        l->n_consumed = v[8];
        l->last_worker = -1;
    } else { /* go on from where the caller was: the previous consumed states */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", xv_error_message());
        for (int k = 0; k < l->n_workers; k++) worker_reset(&l->workers[k], &l->workers[k].consumed);
        s = xv_error(s, "pretrain data: restore refused: %s", msg);
    }
    free(saved);
    xv_status started = start_workers(l);
    return s != XV_OK ? s : started;
}

/* ------------------------------------------------------------ the consumer */

/* Wait on cv for at most 20 ms (then the caller polls its interrupt hook). */
static void wait_a_little(pthread_cond_t *cv, pthread_mutex_t *mu) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 20 * 1000 * 1000;
    if (until.tv_nsec >= 1000 * 1000 * 1000) until.tv_sec++, until.tv_nsec -= 1000 * 1000 * 1000;
    pthread_cond_timedwait(cv, mu, &until);
}

xv_status xv_pretrain_next(xv_pretrain_loader *l, xv_pretrain_batch *batch) {
    release_lent(l);
    for (int tries = 0; tries < l->n_workers; tries++) {
        worker *w = &l->workers[l->next_worker];
        if (w->exhausted) {
            l->next_worker = (l->next_worker + 1) % l->n_workers;
            continue;
        }
        pthread_mutex_lock(&w->mu);
        slot_t *slot = &w->slots[w->cons % w->n_slots];
        while (slot->state != SLOT_READY && !w->finished) {
            if (!l->cfg.interrupted) {
                pthread_cond_wait(&w->cv, &w->mu);
            } else if (l->cfg.interrupted()) {
                pthread_mutex_unlock(&w->mu); /* nothing taken: a later call goes on from here */
                return xv_error(XV_ERR_INTERRUPTED, "pretrain data: interrupted while waiting for batch %lld",
                                (long long)l->n_consumed);
            } else {
                wait_a_little(&w->cv, &w->mu);
            }
        }
        if (slot->state == SLOT_READY) {
            slot->state = SLOT_LENT;
            pthread_mutex_unlock(&w->mu);
            w->consumed = slot->after;
            *batch = slot->batch;
            l->n_consumed++;
            l->last_worker = w->id;
            l->lent = slot;
            l->lent_by = w;
            l->next_worker = (l->next_worker + 1) % l->n_workers;
            return XV_OK;
        }
        xv_status err = w->err;
        char msg[sizeof w->errmsg];
        memcpy(msg, w->errmsg, sizeof msg);
        pthread_mutex_unlock(&w->mu);
        if (err != XV_OK) return xv_error(err, "%s", msg);
        w->exhausted = true;
        l->next_worker = (l->next_worker + 1) % l->n_workers;
    }
    *batch = (xv_pretrain_batch){.res = l->cfg.image_res, .text_len = l->cfg.max_tokens,
                                 .max_masks = l->cfg.masking.max_masks};
    l->last_worker = -1;
    return XV_OK;
}

int64_t xv_pretrain_batches_consumed(const xv_pretrain_loader *l) { return l->n_consumed; }
int xv_pretrain_last_worker(const xv_pretrain_loader *l) { return l->last_worker; }

xv_pretrain_counters xv_pretrain_get_counters(const xv_pretrain_loader *l) {
    int64_t sum[XV_PRETRAIN_N_COUNTERS] = {0};
    for (int k = 0; k < l->n_workers; k++) {
        int64_t c[XV_PRETRAIN_N_COUNTERS];
        memcpy(c, &l->workers[k].consumed.count, sizeof c);
        for (int i = 0; i < XV_PRETRAIN_N_COUNTERS; i++) sum[i] += c[i];
    }
    xv_pretrain_counters out;
    memcpy(&out, sum, sizeof out);
    return out;
}

/* ------------------------------------------------------------ open / close */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static xv_status load_text_side(xv_pretrain_loader *l) {
    XV_TRY(xv_tokenizer_load(l->cfg.vocab_path, &l->tok));
    int32_t V = xv_tokenizer_vocab_size(l->tok);
    const char **tokens = malloc((size_t)V * sizeof *tokens);
    l->is_continuation = malloc((size_t)V * sizeof *l->is_continuation);
    if (!tokens || !l->is_continuation) {
        free(tokens);
        return xv_error(XV_ERR_NOMEM, "pretrain data: no memory for the vocabulary flags");
    }
    for (int32_t i = 0; i < V; i++) tokens[i] = xv_tokenizer_id_to_token(l->tok, i);
    xv_status s = xv_masking_flags_from_tokens(tokens, V, l->is_continuation);
    free(tokens);
    XV_TRY(s);
    xv_sample_shared *sh = &l->shared;
    sh->tok = l->tok;
    sh->special = xv_tokenizer_special_ids(l->tok);
    sh->n_patch = l->cfg.image_res / l->cfg.patch_size;
    sh->cfg = l->cfg;
    sh->cfg.masking.mask_id = sh->special.mask;
    sh->cfg.masking.vocab_size = V;
    sh->cfg.masking.is_continuation = l->is_continuation;
    return XV_OK;
}

static xv_status worker_init(xv_pretrain_loader *l, int k) {
    worker *w = &l->workers[k];
    w->l = l;
    w->id = k;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    snprintf(w->label, sizeof w->label, "%s worker %d", l->cfg.kind == XV_PRETRAIN_REGIONS ? "regions" : "images", k);
    w->warn_budget = l->cfg.max_warnings;
    /* Streams: the run's seed -> data kind -> rank -> worker, one for the
     * samples and one for the file order. */
    xv_rng root, sample_root, order_root;
    xv_rng_seed(&root, l->seed);
    sample_root = xv_rng_split(&root, 0x5050000u + (uint64_t)l->cfg.kind);
    order_root = xv_rng_split(&root, 0x5051000u + (uint64_t)l->cfg.kind);
    xv_rng sample_rank = xv_rng_split(&sample_root, (uint64_t)l->rank);
    xv_rng order_rank = xv_rng_split(&order_root, (uint64_t)l->rank);
    xv_rng sample = xv_rng_split(&sample_rank, (uint64_t)k), order = xv_rng_split(&order_rank, (uint64_t)k);

    xv_jsonl_shard shard;
    XV_TRY(xv_jsonl_shard_make(l->files.n, l->rank, l->world, k, l->n_workers, &shard));
    xv_jsonl_opts o = {.shuffle_files = l->cfg.shuffle_files, .repeat = l->cfg.repeat, .shuffle_key = order.key,
                       .max_line_bytes = l->cfg.max_line_bytes, .label = w->label, .warn_budget = &w->warn_budget};
    xv_status s = xv_jsonl_open(&l->files, &shard, &o, &w->reader);
    xv_jsonl_shard_free(&shard);
    XV_TRY(s);
    w->sampler = (xv_sampler){.sh = &l->shared, .rng = &w->rng, .count = &w->count, .warn_budget = &w->warn_budget,
                             .label = w->label};
    w->n_slots = l->cfg.prefetch + 1;
    w->slots = calloc((size_t)w->n_slots, sizeof *w->slots);
    if (!w->slots || !staging_alloc(w)) return xv_error(XV_ERR_NOMEM, "pretrain data: no memory for %s", w->label);
    for (int i = 0; i < w->n_slots; i++)
        if (!batch_alloc(l, &w->slots[i].batch))
            return xv_error(XV_ERR_NOMEM, "pretrain data: no memory for the batches of %s", w->label);
    worker_state start = {.rng = sample};
    return worker_reset(w, &start);
}

xv_status xv_pretrain_open(const xv_pretrain_config *cfg, int rank, int world, uint64_t seed,
                           xv_pretrain_loader **out) {
    *out = NULL;
    XV_TRY(xv_pretrain_config_check(cfg, rank, world));
    xv_pretrain_loader *l = calloc(1, sizeof *l);
    if (!l) return xv_error(XV_ERR_NOMEM, "pretrain data: no memory");
    l->cfg = *cfg;
    l->last_worker = -1;
    l->vocab_path = dup_or_null(cfg->vocab_path);
    l->image_root = dup_or_null(cfg->image_root);
    l->image_key = dup_or_null(cfg->image_key);
    l->caption_key = dup_or_null(cfg->caption_key);
    l->cfg.vocab_path = l->vocab_path;
    l->cfg.image_root = l->image_root;
    l->cfg.image_key = l->image_key;
    l->cfg.caption_key = l->caption_key;
    l->cfg.files = NULL; /* expanded into l->files */
    l->rank = rank;
    l->world = world;
    l->seed = seed;
    l->n_workers = cfg->num_workers;
    atomic_init(&l->stop, 0);
    xv_status s = XV_OK;
    if (!l->vocab_path || !l->image_key || !l->caption_key || (cfg->image_root && !l->image_root))
        s = xv_error(XV_ERR_NOMEM, "pretrain data: no memory");
    if (s == XV_OK) s = xv_file_list_expand(cfg->files, cfg->n_files, &l->files);
    if (s == XV_OK) s = load_text_side(l);
    if (s == XV_OK) {
        l->config_hash = xv_pretrain_config_hash(&l->cfg, &l->files);
        l->workers = calloc((size_t)l->n_workers, sizeof *l->workers);
        if (!l->workers) s = xv_error(XV_ERR_NOMEM, "pretrain data: no memory");
    }
    for (int k = 0; s == XV_OK && k < l->n_workers; k++) s = worker_init(l, k);
    if (s == XV_OK) s = build_state_names(l);
    if (s == XV_OK) s = start_workers(l);
    if (s != XV_OK) {
        xv_pretrain_close(l);
        return s;
    }
    *out = l;
    return XV_OK;
}

void xv_pretrain_close(xv_pretrain_loader *l) {
    if (!l) return;
    if (l->workers) {
        stop_workers(l);
        for (int k = 0; k < l->n_workers; k++) {
            worker *w = &l->workers[k];
            if (!w->l) continue; /* never initialised */
            xv_jsonl_close(w->reader);
            for (int i = 0; w->slots && i < w->n_slots; i++) batch_free(&w->slots[i].batch);
            free(w->slots);
            staging_free(w);
            xv_ids_free(&w->sampler.scratch);
            pthread_mutex_destroy(&w->mu);
            pthread_cond_destroy(&w->cv);
        }
        free(l->workers);
    }
    for (int i = 0; l->state_names && i < l->state_len; i++) free(l->state_names[i]);
    free(l->state_names);
    xv_tokenizer_free(l->tok);
    free(l->is_continuation);
    xv_file_list_free(&l->files);
    free(l->vocab_path);
    free(l->image_root);
    free(l->image_key);
    free(l->caption_key);
    free(l);
}
