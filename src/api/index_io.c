/* Image indexes on disk: one safetensors file
 *   features      F32 [N, E]      normalised ITC features
 *   sizes         I32 [N, 2]      original width, height
 *   path_offsets  I64 [N]         offset of image i's path in `paths` (-1: none)
 *   paths         U8  [bytes]     NUL-terminated paths back to back
 *   tokens        F16/F32 [N, T, C]   vision tokens (only when kept)
 * with __metadata__ xvlm.format = "image-index", xvlm.version = "1",
 * xvlm.model_id (16 hex digits), xvlm.tokens (none | f16 | f32), xvlm.count. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/error.h"
#include "core/half.h"

#define INDEX_FORMAT "image-index"
#define INDEX_VERSION "1"

static const char *tokens_name(xvlm_tokens t) {
    return t == XVLM_TOKENS_F16 ? "f16" : t == XVLM_TOKENS_F32 ? "f32" : "none";
}

static xv_status add_meta(xv_st_writer *w, uint64_t model_id, xvlm_tokens tokens, int64_t n,
                          const char *const *extra) {
    char id[17], count[24];
    snprintf(id, sizeof id, "%016" PRIx64, model_id);
    snprintf(count, sizeof count, "%" PRId64, n);
    XV_TRY(xv_st_writer_meta(w, "xvlm.format", INDEX_FORMAT));
    XV_TRY(xv_st_writer_meta(w, "xvlm.version", INDEX_VERSION));
    XV_TRY(xv_st_writer_meta(w, "xvlm.model_id", id));
    XV_TRY(xv_st_writer_meta(w, "xvlm.tokens", tokens_name(tokens)));
    for (int i = 0; extra && extra[i]; i += 2) XV_TRY(xv_st_writer_meta(w, extra[i], extra[i + 1]));
    return xv_st_writer_meta(w, "xvlm.count", count);
}

xv_status xv_api_index_write(const xvlm_images *im, const char *path, xvlm_tokens tokens,
                             const char *const *extra_meta) {
    if (!im || !path) return xv_error(XV_ERR_INVALID_ARG, "xvlm_index_save: NULL argument");
    if (!im->feat)
        return xv_error(XV_ERR_UNSUPPORTED, "%s: the model has no ITC projections: nothing to index", path);
    if (tokens != XVLM_TOKENS_NONE && im->tok_kind == XVLM_TOKENS_NONE)
        return xv_error(XV_ERR_INVALID_ARG, "%s: tokens requested, but the images were encoded without them", path);
    const int64_t n = im->n;
    const size_t per = (size_t)im->T * (size_t)im->C, ntok = (size_t)n * per;
    xv_st_writer *w;
    XV_TRY(xv_st_writer_new(&w));
    int64_t *off = malloc(sizeof *off * (size_t)(n ? n : 1));
    void *conv = NULL;
    xv_status st = off ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; st == XV_OK && i < n; i++) off[i] = im->path_off ? im->path_off[i] : -1;
    if (st == XV_OK) st = add_meta(w, im->model_id, tokens, n, extra_meta);
    if (st == XV_OK) st = xv_st_writer_add(w, "features", XV_ST_F32, XV_SHAPE(n, im->E), im->feat, true);
    if (st == XV_OK) st = xv_st_writer_add(w, "sizes", XV_ST_I32, XV_SHAPE(n, 2), im->sizes, true);
    if (st == XV_OK) st = xv_st_writer_add(w, "path_offsets", XV_ST_I64, XV_SHAPE(n), off, true);
    if (st == XV_OK)
        st = xv_st_writer_add(w, "paths", XV_ST_U8, XV_SHAPE(im->path_blob ? im->path_blob_bytes : 0),
                              im->path_blob, true);
    if (st == XV_OK && tokens != XVLM_TOKENS_NONE) {
        const void *data = im->tokens;
        if (tokens != im->tok_kind) { /* convert to the stored precision */
            conv = malloc((tokens == XVLM_TOKENS_F16 ? 2 : 4) * (ntok ? ntok : 1));
            if (!conv) st = xv_error(XV_ERR_NOMEM, "%s: out of memory converting the tokens", path);
            else if (tokens == XVLM_TOKENS_F16) xv_f32_to_f16_n(im->tokens, conv, ntok);
            else xv_f16_to_f32_n(im->tokens, conv, ntok);
            data = conv;
        }
        if (st == XV_OK)
            st = xv_st_writer_add(w, "tokens", tokens == XVLM_TOKENS_F16 ? XV_ST_F16 : XV_ST_F32,
                                  XV_SHAPE(n, im->T, im->C), data, true);
    }
    if (st == XV_OK) st = xv_st_writer_write(w, path);
    xv_st_writer_free(w);
    free(off);
    free(conv);
    return st;
}

xv_status xv_api_index_save(const xvlm_images *im, const char *path, xvlm_tokens tokens) {
    return xv_api_index_write(im, path, tokens, NULL);
}

/* A tensor of the index with the expected dtype and rank, or an error naming it. */
static xv_status need(const xv_st_file *f, const char *name, xv_st_dtype dt, int ndim, const xv_st_tensor **out) {
    const xv_st_tensor *t = xv_st_find(f, name);
    if (!t) return xv_error(XV_ERR_FORMAT, "%s: not an xvlm image index: tensor '%s' is missing", xv_st_path(f), name);
    if (t->dtype != dt || t->ndim != ndim)
        return xv_error(XV_ERR_FORMAT, "%s: tensor '%s' is %s of rank %d, expected %s of rank %d", xv_st_path(f), name,
                        xv_st_dtype_name(t->dtype), t->ndim, xv_st_dtype_name(dt), ndim);
    *out = t;
    return XV_OK;
}

/* The tensor's bytes in place when aligned for its type, else a tracked copy. */
static xv_status borrow(xvlm_images *im, const xv_st_tensor *t, size_t align, const void **out) {
    if ((uintptr_t)t->data % align == 0) {
        *out = t->data;
        return XV_OK;
    }
    void *copy = malloc(t->nbytes ? t->nbytes : 1);
    XV_TRY(xv_api_images_own(im, copy));
    memcpy(copy, t->data, t->nbytes);
    *out = copy;
    return XV_OK;
}

static xv_status check_index(const xvlm_model *mm, const xv_st_file *f, xvlm_tokens *tokens) {
    const char *path = xv_st_path(f);
    const char *fmt = xv_st_metadata(f, "xvlm.format"), *id = xv_st_metadata(f, "xvlm.model_id");
    const char *tk = xv_st_metadata(f, "xvlm.tokens"), *ver = xv_st_metadata(f, "xvlm.version");
    if (!fmt || strcmp(fmt, INDEX_FORMAT) || !id || !tk)
        return xv_error(XV_ERR_FORMAT, "%s: not an xvlm image index (metadata xvlm.format/model_id/tokens missing)",
                        path);
    if (!ver || strcmp(ver, INDEX_VERSION))
        return xv_error(XV_ERR_UNSUPPORTED, "%s: index version %s, this build reads version %s", path,
                        ver ? ver : "(none)", INDEX_VERSION);
    if (strcmp(id, mm->id_hex))
        return xv_error(XV_ERR_INVALID_ARG,
                        "%s: the index was built by another model (id %s; this model is %s): rebuild it with "
                        "`xvlm index` and this model",
                        path, id, mm->id_hex);
    if (!strcmp(tk, "none")) *tokens = XVLM_TOKENS_NONE;
    else if (!strcmp(tk, "f16")) *tokens = XVLM_TOKENS_F16;
    else if (!strcmp(tk, "f32")) *tokens = XVLM_TOKENS_F32;
    else return xv_error(XV_ERR_FORMAT, "%s: metadata xvlm.tokens = '%s', expected none, f16 or f32", path, tk);
    return XV_OK;
}

static xv_status fill_from_file(const xvlm_model *mm, xv_st_file *f, xvlm_images *im) {
    const char *path = xv_st_path(f);
    xvlm_tokens tokens = XVLM_TOKENS_NONE;
    XV_TRY(check_index(mm, f, &tokens));
    const xv_st_tensor *feat, *sizes, *off, *paths, *tok = NULL;
    XV_TRY(need(f, "features", XV_ST_F32, 2, &feat));
    XV_TRY(need(f, "sizes", XV_ST_I32, 2, &sizes));
    XV_TRY(need(f, "path_offsets", XV_ST_I64, 1, &off));
    XV_TRY(need(f, "paths", XV_ST_U8, 1, &paths));
    const int64_t n = feat->shape[0];
    if (feat->shape[1] != im->E || sizes->shape[0] != n || sizes->shape[1] != 2 || off->shape[0] != n)
        return xv_error(XV_ERR_FORMAT, "%s: features [%lld, %lld], sizes [%lld, %lld], path_offsets [%lld]: expected "
                                       "[N, %d], [N, 2], [N]",
                        path, (long long)n, (long long)feat->shape[1], (long long)sizes->shape[0],
                        (long long)sizes->shape[1], (long long)off->shape[0], im->E);
    if (tokens != XVLM_TOKENS_NONE) {
        XV_TRY(need(f, "tokens", tokens == XVLM_TOKENS_F16 ? XV_ST_F16 : XV_ST_F32, 3, &tok));
        if (tok->shape[0] != n || tok->shape[1] != im->T || tok->shape[2] != im->C)
            return xv_error(XV_ERR_FORMAT, "%s: tokens [%lld, %lld, %lld], expected [%lld, %d, %d]", path,
                            (long long)tok->shape[0], (long long)tok->shape[1], (long long)tok->shape[2], (long long)n,
                            im->T, im->C);
    }
    im->n = n;
    XV_TRY(borrow(im, feat, 4, (const void **)&im->feat));
    XV_TRY(borrow(im, sizes, 4, (const void **)&im->sizes));
    XV_TRY(borrow(im, off, 8, (const void **)&im->path_off));
    im->path_blob = paths->data;
    im->path_blob_bytes = paths->shape[0];
    /* Every path must start inside the blob and end with its NUL there. */
    for (int64_t i = 0; i < n; i++) {
        int64_t o = im->path_off[i];
        if (o == -1) continue;
        if (o < 0 || o >= im->path_blob_bytes || !memchr(im->path_blob + o, 0, (size_t)(im->path_blob_bytes - o)))
            return xv_error(XV_ERR_FORMAT, "%s: path_offsets[%lld] = %lld does not point at a path", path,
                            (long long)i, (long long)o);
    }
    if (tok) {
        XV_TRY(borrow(im, tok, tokens == XVLM_TOKENS_F16 ? 2 : 4, &im->tokens));
        im->tok_kind = tokens;
    }
    return XV_OK;
}

xv_status xv_api_index_open(const xvlm_model *mm, const char *path, xvlm_images **out) {
    if (!out) return xv_error(XV_ERR_INVALID_ARG, "xvlm_index_open: out is NULL");
    *out = NULL;
    if (!mm || !path) return xv_error(XV_ERR_INVALID_ARG, "xvlm_index_open: NULL argument");
    if (!mm->m->parts.itc) return xv_error(XV_ERR_UNSUPPORTED, "%s: the model has no ITC projections", path);
    xv_st_file *f;
    XV_TRY(xv_st_open(path, &f));
    xvlm_images *im = calloc(1, sizeof *im);
    if (!im) {
        xv_st_close(f);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    im->mapped = f;
    im->model_id = mm->id;
    im->E = mm->m->cfg.embed_dim;
    im->T = 1 + xv_config_num_patches(&mm->m->cfg);
    im->C = mm->m->cfg.vision.vision_width;
    xv_status st = fill_from_file(mm, f, im);
    if (st != XV_OK) {
        xvlm_images_free(im);
        return st;
    }
    *out = im;
    return XV_OK;
}

/* The four stored arrays of an index, each gathered from every chunk. */
enum { PART_FEAT, PART_SIZES, PART_PATHS, PART_TOKENS, N_PARTS };

xv_status xv_api_index_join(const xvlm_model *mm, const char *const *chunks, int n, xvlm_tokens tokens,
                            const char *out, int64_t *count) {
    size_t slots = (size_t)(n ? n : 1);
    xvlm_images **parts = calloc(slots, sizeof *parts);
    const void **ptr = calloc(N_PARTS * slots, sizeof *ptr); /* ptr[a·slots + i]: array a of chunk i */
    size_t *bytes = calloc(N_PARTS * slots, sizeof *bytes);
    int64_t *off = NULL, total = 0, blob = 0;
    xv_st_writer *w = NULL;
    xv_status st = parts && ptr && bytes ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    const size_t tsz = tokens == XVLM_TOKENS_F16 ? 2 : tokens == XVLM_TOKENS_F32 ? 4 : 0;
    for (int i = 0; st == XV_OK && i < n; i++) {
        st = xv_api_index_open(mm, chunks[i], &parts[i]);
        if (st == XV_OK && parts[i]->tok_kind != tokens)
            st = xv_error(XV_ERR_FORMAT, "%s: chunk stores tokens as %s, the index as %s", chunks[i],
                          tokens_name(parts[i]->tok_kind), tokens_name(tokens));
        if (st != XV_OK) break;
        const xvlm_images *c = parts[i];
        ptr[PART_FEAT * slots + i] = c->feat;
        bytes[PART_FEAT * slots + i] = sizeof(float) * (size_t)c->n * (size_t)c->E;
        ptr[PART_SIZES * slots + i] = c->sizes;
        bytes[PART_SIZES * slots + i] = sizeof(int32_t) * 2 * (size_t)c->n;
        ptr[PART_PATHS * slots + i] = c->path_blob;
        bytes[PART_PATHS * slots + i] = (size_t)c->path_blob_bytes;
        ptr[PART_TOKENS * slots + i] = c->tokens;
        bytes[PART_TOKENS * slots + i] = tsz * (size_t)c->n * (size_t)c->T * (size_t)c->C;
        total += c->n;
    }
    if (st == XV_OK) {
        off = malloc(sizeof *off * (size_t)(total ? total : 1));
        if (!off) st = xv_error(XV_ERR_NOMEM, "out of memory for %lld path offsets", (long long)total);
    }
    for (int i = 0, k = 0; st == XV_OK && i < n; i++) { /* offsets into the joined blob */
        for (int64_t j = 0; j < parts[i]->n; j++, k++)
            off[k] = parts[i]->path_off[j] < 0 ? -1 : parts[i]->path_off[j] + blob;
        blob += parts[i]->path_blob_bytes;
    }
    const int E = mm->m->cfg.embed_dim, T = 1 + xv_config_num_patches(&mm->m->cfg), C = mm->m->cfg.vision.vision_width;
    if (st == XV_OK) st = xv_st_writer_new(&w);
    if (st == XV_OK) st = add_meta(w, mm->id, tokens, total, NULL);
    if (st == XV_OK)
        st = xv_st_writer_add_parts(w, "features", XV_ST_F32, XV_SHAPE(total, E), ptr + PART_FEAT * slots,
                                    bytes + PART_FEAT * slots, n);
    if (st == XV_OK)
        st = xv_st_writer_add_parts(w, "sizes", XV_ST_I32, XV_SHAPE(total, 2), ptr + PART_SIZES * slots,
                                    bytes + PART_SIZES * slots, n);
    if (st == XV_OK) st = xv_st_writer_add(w, "path_offsets", XV_ST_I64, XV_SHAPE(total), off, true);
    if (st == XV_OK)
        st = xv_st_writer_add_parts(w, "paths", XV_ST_U8, XV_SHAPE(blob), ptr + PART_PATHS * slots,
                                    bytes + PART_PATHS * slots, n);
    if (st == XV_OK && tokens != XVLM_TOKENS_NONE)
        st = xv_st_writer_add_parts(w, "tokens", tokens == XVLM_TOKENS_F16 ? XV_ST_F16 : XV_ST_F32,
                                    XV_SHAPE(total, T, C), ptr + PART_TOKENS * slots, bytes + PART_TOKENS * slots, n);
    if (st == XV_OK) st = xv_st_writer_write(w, out);
    if (st == XV_OK && count) *count = total;
    xv_st_writer_free(w);
    for (int i = 0; parts && i < n; i++) xvlm_images_free(parts[i]);
    free(parts);
    free(ptr);
    free(bytes);
    free(off);
    return st;
}
