/* Every allocation of four operations made to fail in turn (the SQLite way):
 * loading a model folder, reading a safetensors file, reading an official
 * .th checkpoint, and the pretraining loader (open, two batches, close). For
 * N = 1, 2, ... the Nth allocation fails until the operation runs through
 * without reaching N; each failing run must return an error status and leave
 * the heap as it found it (malloc's in-use bytes here; LeakSanitizer in the
 * sanitizer build). A run whose failure fell on work it never used (a batch
 * the loader prefetched but nobody asked for) may succeed, and must then give
 * the same result as the run without failures, or, for the loader, count a
 * skipped record (its policy for unreadable data: an image whose read ran out
 * of memory is counted as corrupt and skipped). Linked with the allocation
 * wrappers of tests/alloc_fail.c. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc_fail.h"
#include "testutil.h"
#include "data/pretrain_data.h"
#include "io/safetensors.h"
#include "io/torch_ckpt.h"
#include "xvlm.h"

static char g_dir[512];
static bool g_counted_skip; /* the last loader run skipped a record and counted it */

/* An operation under test: returns its status and a digest of what it
 * produced, so a run that succeeds can be compared with the clean one. */
typedef xv_status (*op_fn)(const void *arg, uint64_t *digest);

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Bytes malloc has handed out and not taken back (arena + mmapped chunks). */
static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Walks every allocation of `op`; returns how many it makes. */
static long walk(const char *name, op_fn op, const void *arg) {
    uint64_t want = 0, got;
    op(arg, &want); /* warm-up: lazily made state (thread pools, caches) comes first */
    size_t heap0 = heap_in_use();
    xv_alloc_fail_arm(0);
    xv_status st = op(arg, &want);
    long total = xv_alloc_fail_disarm();
    CHECK(st == XV_OK, "%s: the run without failures: %s", name, xvlm_last_error());
    CHECK(total > 0, "%s: no allocation counted (is the test linked with the wrappers?)", name);
    int bad = 0, absorbed = 0;
    for (long n = 1; bad < 5; n++) {
        xv_error_clear();
        size_t heap_before = heap_in_use();
        xv_alloc_fail_arm(n);
        got = 0;
        st = op(arg, &got);
        xv_alloc_fail_disarm();
        if (!xv_alloc_fail_injected()) {
            CHECK(st == XV_OK && got == want, "%s: run past the last allocation (%ld) failed", name, n);
            break;
        }
        size_t heap_after = heap_in_use();
        if (st == XV_OK) {
            absorbed++;
            bool same = got == want || g_counted_skip;
            if (!same) bad++;
            CHECK(same, "%s: allocation %ld failed, the run succeeded with another result", name, n);
        } else if (!*xvlm_last_error()) {
            bad++;
            CHECK(0, "%s: allocation %ld failed with status %d and no message", name, n, (int)st);
        }
        if (heap_after != heap_before) bad++;
        CHECK(heap_after == heap_before, "%s: allocation %ld failed: %zd bytes leaked", name, n,
              (ssize_t)(heap_after - heap_before));
    }
    (void)heap0;
    printf("%s: %ld allocations walked, %d failures absorbed by unused work\n", name, total, absorbed);
    return total;
}

/* ---- (a) model folder: config.json + weights.safetensors + vocab.txt ---- */

static xv_status load_model(const void *dir, uint64_t *digest) {
    xvlm_model_params p = xvlm_model_params_default();
    p.copy_weights = 1; /* the path that allocates every tensor */
    xvlm_model *m = NULL;
    xv_status st = (xv_status)xvlm_model_load(dir, &p, &m);
    if (st == XV_OK) {
        xvlm_model_info info;
        xvlm_model_get_info(m, &info);
        *digest = fnv(14695981039346656037ull, info.id, sizeof info.id);
    }
    xvlm_model_free(m);
    return st;
}

/* ---- (b) safetensors: open, convert every tensor, close ---- */

static float g_buf[1 << 16];

static xv_status read_safetensors(const void *path, uint64_t *digest) {
    xv_st_file *f = NULL;
    xv_status st = xv_st_open(path, &f);
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; st == XV_OK && i < xv_st_count(f); i++) {
        const xv_st_tensor *t = xv_st_at(f, i);
        if (t->numel > (int64_t)(sizeof g_buf / sizeof *g_buf)) return xv_error(XV_ERR_INTERNAL, "test buffer too small");
        bool is_float = t->dtype == XV_ST_F32 || t->dtype == XV_ST_F16 || t->dtype == XV_ST_BF16;
        st = is_float ? xv_st_read_f32(f, t, g_buf) : xv_st_read_i32(f, t, (int32_t *)g_buf);
        h = fnv(fnv(h, t->name, strlen(t->name)), g_buf, sizeof(float) * (size_t)t->numel);
    }
    xv_st_close(f);
    *digest = h;
    return st;
}

/* ---- (c) official .th checkpoint: open, every tensor's data, the config ---- */

static xv_status read_torch(const void *path, uint64_t *digest) {
    xv_tc_file *f = NULL;
    xv_status st = xv_tc_open(path, &f);
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; st == XV_OK && i < xv_tc_count(f); i++) {
        const xv_tc_tensor *t = xv_tc_at(f, i);
        const void *data;
        st = xv_tc_data(f, t, &data);
        if (st == XV_OK) h = fnv(fnv(h, t->name, strlen(t->name)), data, t->nbytes);
    }
    xv_tc_close(f);
    *digest = h;
    return st;
}

/* ---- (d) the pretraining loader on four small images ---- */

typedef struct {
    xv_pretrain_kind kind;
    const char *file, *vocab;
} loader_arg;

static xv_status run_loader(const void *arg_, uint64_t *digest) {
    const loader_arg *a = arg_;
    xv_pretrain_config c = xv_pretrain_config_default(a->kind);
    const char *files[] = {a->file};
    c.files = files;
    c.n_files = 1;
    c.vocab_path = a->vocab;
    c.image_root = g_dir;
    c.image_key = "image";
    c.is_image_rpath = true;
    c.image_res = 32;
    c.patch_size = 16;
    c.num_workers = 1;
    c.prefetch = 1;
    c.batch_size = 2;
    c.max_images = 2;
    c.max_words = 12;
    c.max_tokens = 8;
    c.masking.max_masks = 2;
    c.max_warnings = 0;
    xv_pretrain_loader *l = NULL;
    g_counted_skip = false;
    xv_status st = xv_pretrain_open(&c, 0, 1, 7, &l);
    uint64_t h = 14695981039346656037ull;
    for (int b = 0; st == XV_OK && b < 2; b++) {
        xv_pretrain_batch batch;
        st = xv_pretrain_next(l, &batch);
        if (st != XV_OK) break;
        h = fnv(h, batch.image, sizeof(float) * 3 * (size_t)batch.n_images * (size_t)batch.res * (size_t)batch.res);
        h = fnv(h, batch.text_ids_masked, sizeof(int32_t) * (size_t)batch.n_texts * (size_t)batch.text_len);
        if (batch.target_bbox) h = fnv(h, batch.target_bbox, sizeof(float) * 4 * (size_t)batch.n_texts);
    }
    if (l) {
        xv_pretrain_counters k = xv_pretrain_get_counters(l);
        g_counted_skip = k.bad_json + k.corrupt_image + k.bad_caption + k.no_region > 0;
    }
    xv_pretrain_close(l);
    *digest = h;
    return st;
}

static void make_loader_data(char *it, char *rg, size_t cap) {
    char path[600];
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/img%d.jpg", g_dir, k);
        CHECK(xv_test_tiny_image(path, 48 + 8 * k, 40, k), "image %s", path);
    }
    snprintf(it, cap, "%s/it.jsonl", g_dir);
    xv_test_write_file(it, "{\"image\": \"img0.jpg\", \"caption\": \"a red square on the left\"}\n"
                   "{\"image\": \"img1.jpg\", \"caption\": [\"a blue circle\", \"two green shapes\"]}\n"
                   "{\"image\": \"img2.jpg\", \"caption\": \"the big car next to a dog\"}\n"
                   "{\"image\": \"img3.jpg\", \"caption\": \"a small white cat\"}\n");
    snprintf(rg, cap, "%s/rg.jsonl", g_dir);
    xv_test_write_file(rg, "{\"image\": \"img0.jpg\", \"caption\": \"a picture\", \"elems\": ["
                   "{\"caption\": \"red square\", \"bb\": [4, 4, 20, 20]},"
                   "{\"caption\": \"the left shape\", \"bb\": [10, 8, 24, 24]}]}\n"
                   "{\"image\": \"img2.jpg\", \"caption\": \"two shapes\", \"elems\": ["
                   "{\"caption\": \"a blue circle\", \"bb\": [2, 2, 30, 30]}]}\n"
                   "{\"image\": \"img3.jpg\", \"caption\": \"a cat\", \"elems\": ["
                   "{\"caption\": \"white cat\", \"bb\": [8, 6, 28, 20]}]}\n");
}

int main(void) {
    xv_alloc_fail_install();
    xvlm_set_threads(1);
    if (!xv_test_scratch_dir("xv_alloc_failures", g_dir, sizeof g_dir)) return xv_test_finish("test_alloc_failures");
    char model[600], weights[700], vocab[700], it[600], rg[600], th[600];
    snprintf(model, sizeof model, "%s/model", g_dir);
    mkdir(model, 0755);
    /* The smallest X-VLM with every part: one Swin block per stage, two BERT
     * layers (text, fusion); the walk's time grows as its allocations squared. */
    const char *js =
        "{\"vision\": {\"image_res\": 64, \"window_size\": 2, \"embed_dim\": 4, \"depths\": [1, 1, 1, 1],"
        " \"num_heads\": [1, 1, 1, 1], \"vision_width\": 32, \"patch_size\": 32},"
        " \"text\": {\"hidden_size\": 8, \"num_hidden_layers\": 2, \"num_attention_heads\": 1,"
        " \"intermediate_size\": 16, \"vocab_size\": 48, \"max_position_embeddings\": 16, \"fusion_layer\": 1},"
        " \"embed_dim\": 4}";
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", model);
    bool made = xv_test_model_dir_from_json(model, js, 3) && xv_test_tiny_vocab(vocab);
    CHECK(made, "model folder %s: %s", model, xvlm_last_error());
    if (!made) return xv_test_finish("test_alloc_failures");
    snprintf(weights, sizeof weights, "%s/weights.safetensors", model);
    make_loader_data(it, rg, sizeof it);

    walk("model folder", load_model, model);
    walk("safetensors", read_safetensors, weights);
    const char *src = getenv("XV_SOURCE_DIR");
    const char *th_files[] = {"special.th", "dup_config_keys.th"}; /* views of every kind; a config */
    for (int i = 0; src && i < 2; i++) {
        snprintf(th, sizeof th, "%s/tests/data/torch/%s", src, th_files[i]);
        walk(th_files[i], read_torch, th);
    }
    CHECK(src != NULL, "XV_SOURCE_DIR is not set: the .th checkpoints were not walked");
    loader_arg images = {XV_PRETRAIN_IMAGES, it, vocab}, regions = {XV_PRETRAIN_REGIONS, rg, vocab};
    walk("loader (images)", run_loader, &images);
    walk("loader (regions)", run_loader, &regions);

    xv_test_remove_dir(g_dir);
    return xv_test_finish("test_alloc_failures");
}
