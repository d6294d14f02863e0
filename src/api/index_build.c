/* xvlm_index_build: encode a list of images into an index, resumably.
 *
 * While it runs, INDEX.parts/ holds
 *   run.json                 the run's identity (model id, tokens, number of
 *                            paths, hash of the path list), written once
 *   chunk-000000.safetensors one per batch, written atomically (temp + rename):
 *                            the batch's encoded images (xvlm_index_save
 *                            layout) and in its metadata the input range it
 *                            covers and the images it skipped, with reasons.
 * A chunk either exists completely or not at all, so after a kill the chunks
 * present, read in order while they continue each other, say exactly what is
 * done; nothing is rewritten per batch. At the end the chunks are joined into
 * INDEX (atomically) and INDEX.parts/ is removed. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/checksum.h"

#define ERRLEN 512

xvlm_index_params xvlm_index_params_default(void) {
    return (xvlm_index_params){.batch = 16, .tokens = XVLM_TOKENS_F16};
}

typedef struct {
    char dir[PATH_MAX];
    int lock_fd; /* the parts folder, flock'ed while this run owns it */
    char **chunks; /* chunk file paths, in order */
    int n_chunks, cap_chunks;
    int64_t next;    /* inputs [0, next) are done */
    int64_t reused;  /* images found in chunks of an earlier run */
    int64_t skipped;
} build_state;

static uint64_t hash_paths(const char *const *paths, int64_t n) {
    uint64_t h = xv_hash64(&n, sizeof n, 0x696e646578ull);
    for (int64_t i = 0; i < n; i++) h = xv_hash64(paths[i], strlen(paths[i]) + 1, h);
    return h;
}

static char *run_json(const xvlm_model *mm, xvlm_tokens tokens, int64_t n, uint64_t paths_hash) {
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"format\": \"xvlm-index-parts\", \"model_id\": \"%s\", \"tokens\": %d, \"paths\": %" PRId64
             ", \"paths_hash\": \"%016" PRIx64 "\"}\n",
             mm->id_hex, (int)tokens, n, paths_hash);
    return strdup(buf);
}

/* The parts folder's run.json; NULL when there is none (a fresh start). */
static xv_status read_run(const char *path, char **out) {
    *out = NULL;
    if (access(path, F_OK) != 0) return XV_OK;
    uint8_t *text = NULL;
    size_t len;
    XV_TRY(xv_fs_read_file(path, 1 << 16, &text, &len));
    *out = (char *)text;
    return XV_OK;
}

static xv_status add_chunk(build_state *s, const char *path) {
    if (s->n_chunks == s->cap_chunks) {
        int nc = s->cap_chunks ? 2 * s->cap_chunks : 64;
        char **c = realloc(s->chunks, sizeof *c * (size_t)nc);
        if (!c) return xv_error(XV_ERR_NOMEM, "out of memory");
        s->chunks = c;
        s->cap_chunks = nc;
    }
    s->chunks[s->n_chunks] = strdup(path);
    if (!s->chunks[s->n_chunks]) return xv_error(XV_ERR_NOMEM, "out of memory");
    s->n_chunks++;
    return XV_OK;
}

static void chunk_path(const build_state *s, int k, char *out, size_t cap) {
    snprintf(out, cap, "%s/chunk-%06d.safetensors", s->dir, k);
}

static int64_t meta_int(const xv_st_file *f, const char *key) {
    const char *v = xv_st_metadata(f, key);
    char *end;
    long long x = v ? strtoll(v, &end, 10) : -1;
    return v && *v && !*end ? (int64_t)x : -1;
}

/* Pick up the chunks of an interrupted run: in order, while each starts
 * where the previous ended. */
static xv_status resume(const xvlm_model *mm, build_state *s, int64_t n) {
    char path[PATH_MAX + 32];
    for (int k = 0;; k++) {
        chunk_path(s, k, path, sizeof path);
        if (access(path, F_OK) != 0) break;
        xvlm_images *c = NULL;
        if (xv_api_index_open(mm, path, &c) != XV_OK) break; /* unreadable: redone from here */
        int64_t first = meta_int(c->mapped, "xvlm.chunk_first"), count = meta_int(c->mapped, "xvlm.chunk_inputs");
        int64_t skipped = meta_int(c->mapped, "xvlm.chunk_skipped");
        int64_t got = c->n;
        xvlm_images_free(c);
        if (first != s->next || count < 1 || first + count > n || skipped < 0 || got + skipped != count)
            break; /* not a continuation: it and later ones are redone */
        XV_TRY(add_chunk(s, path));
        s->next += count;
        s->reused += got;
        s->skipped += skipped;
    }
    return XV_OK;
}

/* Remove every chunk file (and temp file) in the parts folder. */
static void clear_chunks(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[PATH_MAX + 256];
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "chunk-", 6)) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

/* Only one run may write a parts folder at a time. */
static xv_status lock_dir(build_state *s) {
    s->lock_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->lock_fd < 0) return xv_error(XV_ERR_IO, "%s: cannot open: %s", s->dir, strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return xv_error(XV_ERR_IO, "%s: another `xvlm index` is building this index right now", s->dir);
    return XV_OK;
}

static xv_status start(const xvlm_model *mm, const char *index_path, const char *const *paths, int64_t n,
                       xvlm_tokens tokens, build_state *s) {
    if (snprintf(s->dir, sizeof s->dir, "%s.parts", index_path) >= (int)sizeof s->dir)
        return xv_error(XV_ERR_INVALID_ARG, "%s: path too long", index_path);
    char run_path[PATH_MAX + 16];
    snprintf(run_path, sizeof run_path, "%s/run.json", s->dir);
    char *want = run_json(mm, tokens, n, hash_paths(paths, n));
    if (!want) return xv_error(XV_ERR_NOMEM, "out of memory");
    xv_status st = XV_OK;
    if (mkdir(s->dir, 0755) != 0 && errno != EEXIST)
        st = xv_error(XV_ERR_IO, "%s: cannot create: %s", s->dir, strerror(errno));
    if (st == XV_OK) st = lock_dir(s);
    char *have = NULL;
    if (st == XV_OK) st = read_run(run_path, &have);
    if (st == XV_OK && have && strcmp(have, want)) {
        st = xv_error(XV_ERR_INVALID_ARG,
                      "%s holds an interrupted index of other images, another model or another --tokens setting "
                      "(%s): delete that folder to start over",
                      s->dir, run_path);
    } else if (st == XV_OK && have) {
        st = resume(mm, s, n);
    } else if (st == XV_OK) {
        clear_chunks(s->dir); /* leftovers of a run whose run.json is gone */
        st = xv_fs_write_file(run_path, want, strlen(want), XV_FS_DURABLE);
    }
    free(have);
    free(want);
    return st;
}

typedef struct {
    xv_status st;
    int w, h;
    char msg[ERRLEN];
} input_result;

static bool stop_asked(const xvlm_index_params *p) { return p->stop && p->stop(p->user); }

static xv_status interrupted(const build_state *s) {
    return xv_error(XV_ERR_INTERRUPTED, "interrupted with %" PRId64 " images done, kept in %s: the same command "
                    "resumes from there", s->next, s->dir);
}

/* Encode inputs [first, first+b) into chunk k: unreadable images are
 * skipped (warned, and listed in the chunk's metadata). */
static xv_status do_chunk(xvlm_ctx *ctx, build_state *s, const char *const *paths, int64_t first, int b,
                          const xvlm_index_params *p, float *px, int64_t *encoded) {
    const xv_model *m = ctx->model->m;
    const int R = m->cfg.vision.image_res;
    const size_t per = (size_t)3 * R * R;
    input_result *res = calloc((size_t)b, sizeof *res);
    if (!res) return xv_error(XV_ERR_NOMEM, "out of memory");
#pragma omp parallel for schedule(static)
    for (int i = 0; i < b; i++) {
        res[i].st = xv_api_preprocess_file(paths[first + i], R, px + (size_t)i * per, &res[i].w, &res[i].h);
        if (res[i].st != XV_OK) snprintf(res[i].msg, ERRLEN, "%s", xvlm_last_error());
    }
    /* Keep the readable ones, packed to the front in input order. */
    int good = 0;
    cJSON *skipped = cJSON_CreateArray();
    char **real = calloc((size_t)b, sizeof *real);
    xv_status st = skipped && real ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < b && st == XV_OK; i++) {
        if (res[i].st != XV_OK) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "input", (double)(first + i));
            cJSON_AddStringToObject(e, "reason", res[i].msg);
            cJSON_AddItemToArray(skipped, e);
            if (p->warn) {
                char line[ERRLEN + 64];
                snprintf(line, sizeof line, "skipping image %" PRId64 ": %s", first + i, res[i].msg);
                p->warn(p->user, line);
            }
            continue;
        }
        if (good != i) memmove(px + (size_t)good * per, px + (size_t)i * per, per * sizeof *px);
        res[good].w = res[i].w;
        res[good].h = res[i].h;
        /* Store absolute paths, so re-ranking can re-read them from anywhere. */
        real[good] = realpath(paths[first + i], NULL);
        if (!real[good]) real[good] = strdup(paths[first + i]);
        if (!real[good]) st = xv_error(XV_ERR_NOMEM, "out of memory");
        good++;
    }
    xvlm_images *c = NULL;
    if (st == XV_OK) st = xv_api_images_new(ctx->model, good, p->tokens != XVLM_TOKENS_NONE, true, &c);
    if (st == XV_OK && good > 0) {
        size_t bytes = 0;
        for (int i = 0; i < good; i++) bytes += strlen(real[i]) + 1;
        char *blob = malloc(bytes);
        st = xv_api_images_own(c, blob);
        size_t o = 0;
        for (int i = 0; st == XV_OK && i < good; i++) {
            size_t l = strlen(real[i]) + 1;
            memcpy(blob + o, real[i], l);
            ((int64_t *)c->path_off)[i] = (int64_t)o;
            o += l;
            ((int32_t *)c->sizes)[2 * i] = res[i].w;
            ((int32_t *)c->sizes)[2 * i + 1] = res[i].h;
        }
        c->path_blob = blob;
        c->path_blob_bytes = (int64_t)bytes;
        if (st == XV_OK && stop_asked(p)) st = interrupted(s); /* the chunk is dropped whole */
        if (st == XV_OK) st = xv_api_vision_pass(ctx, px, good, (float *)c->feat, (float *)c->tokens);
    }
    char path[PATH_MAX + 32], s_first[24], s_inputs[24], s_skipped[24];
    chunk_path(s, s->n_chunks, path, sizeof path);
    snprintf(s_first, sizeof s_first, "%" PRId64, first);
    snprintf(s_inputs, sizeof s_inputs, "%d", b);
    snprintf(s_skipped, sizeof s_skipped, "%d", b - good);
    char *skipped_text = skipped ? cJSON_PrintUnformatted(skipped) : NULL;
    const char *meta[] = {"xvlm.chunk_first", s_first, "xvlm.chunk_inputs", s_inputs, "xvlm.chunk_skipped",
                          s_skipped, "xvlm.chunk_skipped_list", skipped_text ? skipped_text : "[]", NULL};
    if (st == XV_OK) st = xv_api_index_write(c, path, p->tokens, meta);
    if (st == XV_OK) st = add_chunk(s, path);
    if (st == XV_OK) {
        s->next = first + b;
        s->skipped += b - good;
        *encoded += good;
    }
    free(skipped_text);
    cJSON_Delete(skipped);
    for (int i = 0; real && i < b; i++) free(real[i]);
    free(real);
    free(res);
    xvlm_images_free(c);
    return st;
}

static void cleanup(build_state *s) {
    for (int i = 0; i < s->n_chunks; i++) free(s->chunks[i]);
    free(s->chunks);
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the lock */
}

/* Everything is in INDEX: drop the parts folder. */
static void remove_parts(build_state *s) {
    char path[PATH_MAX + 32];
    clear_chunks(s->dir);
    snprintf(path, sizeof path, "%s/run.json", s->dir);
    unlink(path);
    rmdir(s->dir);
}

xv_status xv_api_index_build(xvlm_ctx *ctx, const char *const *paths, int64_t n, const char *path,
                             const xvlm_index_params *params, xvlm_index_stats *stats) {
    if (!ctx || !path || n < 0 || (n > 0 && !paths))
        return xv_error(XV_ERR_INVALID_ARG, "xvlm_index_build: bad arguments");
    for (int64_t i = 0; i < n; i++)
        if (!paths[i]) return xv_error(XV_ERR_INVALID_ARG, "xvlm_index_build: path %" PRId64 " is NULL", i);
    xvlm_index_params p = params ? *params : xvlm_index_params_default();
    if (p.batch < 1) p.batch = 1;
    if (p.tokens != XVLM_TOKENS_NONE && p.tokens != XVLM_TOKENS_F16 && p.tokens != XVLM_TOKENS_F32)
        return xv_error(XV_ERR_INVALID_ARG, "xvlm_index_build: unknown tokens setting %d", (int)p.tokens);
    const xv_model *m = ctx->model->m;
    if (!m->parts.itc) return xv_error(XV_ERR_UNSUPPORTED, "%s: the model has no ITC projections: nothing to index", path);
    build_state s = {.lock_fd = -1};
    int64_t encoded = 0;
    xv_status st = start(ctx->model, path, paths, n, p.tokens, &s);
    if (st == XV_OK && p.progress) p.progress(p.user, s.next, n);
    const int R = m->cfg.vision.image_res;
    float *px = malloc(sizeof(float) * (size_t)p.batch * 3 * (size_t)R * (size_t)R);
    if (!px && st == XV_OK) st = xv_error(XV_ERR_NOMEM, "out of memory for a batch of %d images", p.batch);
    while (st == XV_OK && s.next < n) {
        if (stop_asked(&p)) st = interrupted(&s);
        if (st != XV_OK) break;
        int b = n - s.next < p.batch ? (int)(n - s.next) : p.batch;
        st = do_chunk(ctx, &s, paths, s.next, b, &p, px, &encoded);
        if (st == XV_OK && p.progress) p.progress(p.user, s.next, n);
    }
    free(px);
    xv_graph_reset(ctx->g);
    int64_t indexed = 0;
    if (st == XV_OK) st = xv_api_index_join(ctx->model, (const char *const *)s.chunks, s.n_chunks, p.tokens, path, &indexed);
    if (st == XV_OK) remove_parts(&s);
    if (stats)
        *stats = (xvlm_index_stats){.total = n, .encoded = encoded, .reused = s.reused, .skipped = s.skipped,
                                    .indexed = st == XV_OK ? indexed : 0};
    cleanup(&s);
    return st;
}
