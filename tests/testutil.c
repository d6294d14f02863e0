#include "testutil.h"

#include <cairo.h>
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/threads.h"
#include "data/image_write.h"
#include "data/synth.h"
#include "io/safetensors.h"
#include "train/pretrain_run.h"
#include "model/model.h"

int xv_test_failures = 0;
int xv_test_checks = 0;

int xv_test_finish(const char *name) {
    int passed = xv_test_checks - xv_test_failures;
    printf("%s: %d passed, %d failed\n", name, passed, xv_test_failures);
    return xv_test_failures ? 1 : 0;
}

const char *xv_fixtures_dir(void) {
    const char *d = getenv("XV_FIXTURES");
    struct stat st;
    if (!d || stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return d;
}

int xv_test_skip(const char *why) {
    printf("SKIPPED: %s\n", why);
    return 77;
}

void xv_test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed) {
    xv_rng r;
    xv_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * xv_rng_uniform(&r);
}

xv_fd_opts xv_fd_defaults(void) {
    xv_fd_opts o = {.h = 1e-2, .atol = 2e-3, .rtol = 1e-2, .max_checks = 48, .seed = 1234};
    return o;
}

xv_fd_opts xv_fd_copy_opts(int max_checks) {
    xv_fd_opts o = xv_fd_defaults();
    o.atol = 1e-6;
    o.rtol = 0;
    o.max_checks = max_checks;
    return o;
}

/* One evaluation: returns L in double; if grads != NULL, runs backward and
 * copies each differentiable input's gradient there. */
static int evaluate(xv_fd_fn f, void *ctx, const xv_fd_input *in, int n, float **vals,
                    const xv_fd_opts *o, const float *r, int64_t *rn, double *L, float **grads) {
    xv_graph *g = xv_graph_new(1 << 20);
    xv_graph_set_training(g, o->training);
    xv_rng_seed(xv_graph_rng(g), o->seed); /* same dropout masks every evaluation */
    xv_tensor *leaves[16];
    for (int i = 0; i < n; i++) {
        leaves[i] = xv_tensor_wrap_f32(g, vals[i], in[i].shape, in[i].ndim);
        leaves[i]->requires_grad = in[i].differentiable;
    }
    xv_tensor *y = f(g, leaves, ctx);
    if (!y) {
        fprintf(stderr, "fd: forward failed: %s\n", xv_error_message());
        xv_graph_free(g);
        return -1;
    }
    if (*rn < 0) *rn = y->numel;
    if (*rn != y->numel) {
        xv_graph_free(g);
        return -1;
    }
    double s = 0;
    for (int64_t i = 0; i < y->numel; i++) s += (double)r[i] * y->data[i];
    *L = s;
    if (grads) {
        if (xv_backward_with(g, y, r) != XV_OK) {
            fprintf(stderr, "fd: backward failed: %s\n", xv_error_message());
            xv_graph_free(g);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            if (!in[i].differentiable) continue;
            int64_t cnt = xv_shape_numel(in[i].shape, in[i].ndim);
            if (leaves[i]->grad) memcpy(grads[i], leaves[i]->grad, sizeof(float) * (size_t)cnt);
            else memset(grads[i], 0, sizeof(float) * (size_t)cnt);
        }
    }
    xv_graph_free(g);
    return 0;
}

int xv_fd_check(const char *name, xv_fd_fn f, void *ctx, const xv_fd_input *in, int n,
                const xv_fd_opts *opts) {
    xv_fd_opts o = opts ? *opts : xv_fd_defaults();
    float *vals[16], *grads[16];
    if (n > 16) return 1;
    for (int i = 0; i < n; i++) {
        int64_t cnt = xv_shape_numel(in[i].shape, in[i].ndim);
        vals[i] = malloc(sizeof(float) * (size_t)(cnt ? cnt : 1));
        grads[i] = malloc(sizeof(float) * (size_t)(cnt ? cnt : 1));
        memcpy(vals[i], in[i].data, sizeof(float) * (size_t)cnt);
    }
    /* First pass to learn the output size, then the weighted pass with r. */
    int64_t rn = -1;
    double L;
    float dummy_r[1] = {0};
    int bad = 0;
    float *r = NULL;
    {
        /* Output size probe with a zero-size r is not possible: do a plain forward. */
        xv_graph *g = xv_graph_new(1 << 20);
        xv_graph_set_training(g, o.training);
        xv_rng_seed(xv_graph_rng(g), o.seed);
        xv_tensor *leaves[16];
        for (int i = 0; i < n; i++) leaves[i] = xv_tensor_wrap_f32(g, vals[i], in[i].shape, in[i].ndim);
        xv_tensor *y = f(g, leaves, ctx);
        if (!y) {
            fprintf(stderr, "FAIL %s: forward failed: %s\n", name, xv_error_message());
            xv_graph_free(g);
            bad = 1;
            goto done;
        }
        rn = y->numel;
        xv_graph_free(g);
    }
    (void)dummy_r;
    r = malloc(sizeof(float) * (size_t)rn);
    xv_test_fill_uniform(r, rn, -1.f, 1.f, o.seed + 7);
    if (evaluate(f, ctx, in, n, vals, &o, r, &rn, &L, grads) != 0) {
        fprintf(stderr, "FAIL %s: analytic pass failed\n", name);
        bad = 1;
        goto done;
    }
    xv_rng pick;
    xv_rng_seed(&pick, o.seed + 99);
    for (int i = 0; i < n; i++) {
        if (!in[i].differentiable) continue;
        int64_t cnt = xv_shape_numel(in[i].shape, in[i].ndim);
        int64_t checks = cnt < o.max_checks ? cnt : o.max_checks;
        for (int64_t c = 0; c < checks; c++) {
            int64_t e = cnt <= o.max_checks ? c : (int64_t)xv_rng_below(&pick, (uint64_t)cnt);
            float x0 = vals[i][e];
            double Lp, Lm;
            vals[i][e] = (float)(x0 + o.h);
            double hp = (double)vals[i][e] - x0;
            evaluate(f, ctx, in, n, vals, &o, r, &rn, &Lp, NULL);
            vals[i][e] = (float)(x0 - o.h);
            double hm = x0 - (double)vals[i][e];
            evaluate(f, ctx, in, n, vals, &o, r, &rn, &Lm, NULL);
            vals[i][e] = x0;
            double num = (Lp - Lm) / (hp + hm);
            double ana = grads[i][e];
            double tol = o.atol + o.rtol * fmax(fabs(num), fabs(ana));
            if (!(fabs(num - ana) <= tol)) {
                if (bad < 8)
                    fprintf(stderr, "FAIL %s: input %d element %lld: analytic %.6g numeric %.6g\n",
                            name, i, (long long)e, ana, num);
                bad++;
            }
        }
    }
done:
    xv_test_checks++;
    if (bad) xv_test_failures++;
    for (int i = 0; i < n; i++) {
        free(vals[i]);
        free(grads[i]);
    }
    free(r);
    return bad;
}

void xv_test_release_font_caches(void) {
    cairo_debug_reset_static_data();
    /* fontconfig comes in through cairo: looked up rather than linked */
    void (*fc_fini)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "FcFini");
    if (fc_fini) fc_fini();
}

double xv_test_env_num(const char *name, double dflt) {
    const char *v = getenv(name);
    return v ? atof(v) : dflt;
}

int xv_test_cli_status(const char *scratch, const char *cmd, const char *args, char *err, size_t errlen) {
    char full[16384];
    snprintf(full, sizeof full, "%s %s", cmd, args);
    xv_test_cli_result r = xv_test_cli(scratch, full, NULL);
    snprintf(err, errlen, "%s", r.err);
    xv_test_cli_free(&r);
    return r.status;
}

cJSON *xv_test_cli_json(const char *scratch, const char *args) {
    xv_test_cli_result r = xv_test_cli(scratch, args, NULL);
    CHECK(r.status == 0, "xvlm %s: exit %d, stderr: %s", args, r.status, r.err);
    cJSON *j = r.status == 0 ? cJSON_Parse(r.out) : NULL;
    CHECK(r.status != 0 || j, "xvlm %s: stdout is not JSON: %s", args, r.out);
    xv_test_cli_free(&r);
    return j;
}

void xv_test_cli_refused(const char *scratch, const char *args, int status, const char *words) {
    xv_test_cli_result r = xv_test_cli(scratch, args, NULL);
    CHECK(r.status == status && strstr(r.err, words), "xvlm %s: exit %d (want %d), stderr \"%s\" should say \"%s\"",
          args, r.status, status, r.err, words);
    xv_test_cli_free(&r);
}

int xv_test_run(const char *cmd) {
    printf("$ %s\n", cmd);
    fflush(stdout);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

void xv_test_tiny_pretrain_model_yaml(FILE *f, int n_vocab) {
    fprintf(f,
            "model_config:\n"
            "  vision: {image_res: 32, swin_patch_size: 4, patch_size: 8, embed_dim: 16, depths: [1, 1],\n"
            "           num_heads: [1, 2], window_size: 4, vision_width: 32}\n"
            "  text: {hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64,\n"
            "         vocab_size: %d, max_position_embeddings: 24, fusion_layer: 1, encoder_width: 32}\n"
            "embed_dim: 16\n"
            "max_words: 30\nmax_tokens: 24\nmax_masks: 5\n",
            n_vocab);
}

const char *xv_test_mpirun(int np) {
    static char cmd[1200];
    const char *mpirun = getenv("XV_MPIRUN");
    if (!mpirun || !*mpirun || access(mpirun, X_OK) != 0) return NULL;
    /* Open MPI refuses root without these (the CI container runs as root). */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np %d ", mpirun, np);
    return cmd;
}

double xv_test_compare_values(const xv_st_file *ref, const char *name, const void *values, int64_t n, bool ints,
                              bool relative, double tol) {
    const xv_st_tensor *r = xv_st_find(ref, name);
    CHECK(r != NULL, "reference %s is missing", name);
    CHECK(r == NULL || r->numel == n, "%s: %lld values, the reference has %lld", name, (long long)n,
          (long long)(r ? r->numel : 0));
    CHECK(values != NULL, "%s: not computed", name);
    if (!r || r->numel != n || !values) return INFINITY;
    size_t count = (size_t)(n ? n : 1);
    if (ints) {
        int32_t *a = malloc(sizeof(int32_t) * count);
        CHECK_OK(xv_st_read_i32(ref, r, a));
        int64_t differ = 0, first = -1;
        for (int64_t k = 0; k < n; k++)
            if (a[k] != ((const int32_t *)values)[k] && differ++ == 0) first = k;
        printf("  %-72s %lld of %lld differ (exact)\n", name, (long long)differ, (long long)n);
        CHECK(differ == 0, "%s: integers differ, first at flat index %lld (reference %d, got %d)", name,
              (long long)first, first >= 0 ? a[first] : 0, first >= 0 ? ((const int32_t *)values)[first] : 0);
        free(a);
        return differ ? INFINITY : 0;
    }
    double *a = malloc(sizeof(double) * count);
    if (r->dtype == XV_ST_F64) {
        memcpy(a, r->data, sizeof(double) * (size_t)n); /* safetensors data is little-endian, as here */
    } else {
        float *af = malloc(sizeof(float) * count);
        CHECK_OK(xv_st_read_f32(ref, r, af));
        for (int64_t k = 0; k < n; k++) a[k] = af[k];
        free(af);
    }
    const float *v = values;
    double maxref = 0, maxdiff = 0;
    for (int64_t k = 0; k < n; k++) {
        double d = fabs(a[k] - (double)v[k]);
        if (!(d <= maxdiff)) maxdiff = d; /* NaN propagates */
        if (fabs(a[k]) > maxref) maxref = fabs(a[k]);
    }
    free(a);
    double scale = relative ? maxref : (maxref > 1 ? maxref : 1), err = scale > 0 ? maxdiff / scale : maxdiff;
    printf("  %-72s max|diff| %.3e  %s %.3e\n", name, maxdiff, relative ? "rel(own max)" : "rel", err);
    CHECK(err <= tol, "%s: max|diff| %.3e exceeds %g · %.3g", name, maxdiff, tol, scale);
    return err;
}

int xv_test_compare_st(const char *ref_path, const char *out_path, const char *prefix, const char *skip,
                       double tol) {
    xv_st_file *ref = NULL, *out = NULL;
    if (xv_st_open(ref_path, &ref) != XV_OK || xv_st_open(out_path, &out) != XV_OK) {
        CHECK(0, "cannot open %s / %s: %s", ref_path, out_path, xv_error_message());
        xv_st_close(ref);
        return -1;
    }
    int compared = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < xv_st_count(ref); i++) {
        const xv_st_tensor *r = xv_st_at(ref, i);
        if (strncmp(r->name, prefix, strlen(prefix)) || (skip && strstr(r->name, skip))) continue;
        if (r->dtype != XV_ST_F32) continue;
        const xv_st_tensor *o = xv_st_find(out, r->name);
        CHECK(o != NULL, "output %s is missing", r->name);
        if (!o) continue;
        bool same = o->ndim == r->ndim && o->numel == r->numel &&
                    !memcmp(o->shape, r->shape, sizeof(int64_t) * (size_t)r->ndim);
        CHECK(same, "%s: shape differs", r->name);
        if (!same) continue;
        float *b = malloc(sizeof(float) * (size_t)(r->numel ? r->numel : 1));
        CHECK_OK(xv_st_read_f32(out, o, b));
        double err = xv_test_compare_values(ref, r->name, b, r->numel, false, false, tol);
        if (!(err <= worst)) {
            worst = err;
            worst_name = r->name;
        }
        free(b);
        compared++;
    }
    printf("  worst for %s*%s%s: %.3e (%s) over %d tensors\n", prefix, skip ? " without " : "", skip ? skip : "",
           worst, worst_name, compared);
    xv_st_close(ref);
    xv_st_close(out);
    return compared;
}

void xv_test_loss_window_means(const char *log_path, int64_t from, int64_t to, double mean[XV_N_LOSSES]) {
    static const char *const keys[XV_N_LOSSES] = {"loss_itc", "loss_itm", "loss_mlm", "loss_bbox", "loss_giou"};
    double sum[XV_N_LOSSES] = {0};
    int n[XV_N_LOSSES] = {0};
    FILE *f = fopen(log_path, "rb");
    CHECK(f != NULL, "cannot open %s", log_path);
    char *line = NULL;
    size_t cap = 0;
    while (f && getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
        CHECK(cJSON_IsNumber(step) && cJSON_IsString(kind), "%s: record without step or kind: %s", log_path, line);
        if (cJSON_IsNumber(step) && cJSON_IsString(kind) && step->valuedouble >= from && step->valuedouble < to) {
            const bool region = !strcmp(kind->valuestring, "region");
            for (int k = 0; k < XV_N_LOSSES; k++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
                if (region != (k >= XV_LOSS_BBOX) || !cJSON_IsNumber(v)) continue;
                sum[k] += v->valuedouble;
                n[k]++;
            }
        }
        cJSON_Delete(j);
    }
    free(line);
    if (f) fclose(f);
    for (int k = 0; k < XV_N_LOSSES; k++) mean[k] = n[k] ? sum[k] / n[k] : NAN;
}

void xv_test_pretrain_losses_fall(const char *yaml, const char *out_dir, int64_t steps, int64_t first_window,
                                  int64_t last_window, const double fraction[XV_N_LOSSES],
                                  double first[XV_N_LOSSES], double last[XV_N_LOSSES]) {
    xv_pretrain_run_opts o = xv_pretrain_run_opts_default();
    o.config_path = yaml;
    o.output_dir = out_dir;
    o.seed = getenv("XV_LEARN_SEED") ? strtoull(getenv("XV_LEARN_SEED"), NULL, 10) : 1;
    o.progress = false;
    xv_pretrain_run_result r;
    CHECK_OK(xv_pretrain_run(&o, &r));
    CHECK(r.steps_done == steps && r.skipped_updates == 0, "%lld steps, %lld skipped", (long long)r.steps_done,
          (long long)r.skipped_updates);
    printf("%lld steps (%lld updates) in %.1f s\n", (long long)r.steps_done, (long long)r.updates, r.seconds);
    char log_path[1024];
    snprintf(log_path, sizeof log_path, "%s/log.jsonl", out_dir);
    xv_test_loss_window_means(log_path, 0, first_window, first);
    xv_test_loss_window_means(log_path, steps - last_window, steps, last);
    static const char *const names[XV_N_LOSSES] = {"ITC", "ITM", "MLM", "box L1", "box GIoU"};
    for (int k = 0; k < XV_N_LOSSES; k++) {
        printf("%-8s first %lld steps %.4f, last %lld steps %.4f (%.2f)", names[k], (long long)first_window, first[k],
               (long long)last_window, last[k], last[k] / first[k]);
        if (!isfinite(fraction[k])) {
            printf(" (reported)\n");
            continue;
        }
        printf(" < %.2f required\n", fraction[k]);
        CHECK(last[k] < fraction[k] * first[k], "%s did not fall below %.2f of its start: %.4f -> %.4f", names[k],
              fraction[k], first[k], last[k]);
    }
}

const char *const xv_test_colour_names[8] = {"red", "orange", "yellow", "green", "blue", "purple", "white", "black"};
const uint8_t xv_test_colour_rgb[8][3] = {{220, 30, 30}, {245, 140, 20}, {235, 220, 30},  {30, 180, 50},
                                          {30, 60, 225}, {150, 40, 190}, {250, 250, 250}, {10, 10, 10}};

bool xv_test_world_open(const char *dir, FILE **captions, FILE **regions) {
    char path[1024];
    snprintf(path, sizeof path, "%s/images", dir);
    bool ok = mkdir(path, 0755) == 0;
    CHECK(ok, "mkdir %s", path);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    if (ok) ok = xv_synth_write_vocab(path) == XV_OK;
    CHECK(ok, "%s: %s", path, xv_error_message());
    snprintf(path, sizeof path, "%s/captions.jsonl", dir);
    *captions = ok ? fopen(path, "w") : NULL;
    snprintf(path, sizeof path, "%s/regions.jsonl", dir);
    *regions = *captions ? fopen(path, "w") : NULL;
    if (*regions) return true;
    CHECK(false, "open the JSON-lines files in %s", dir);
    if (*captions) fclose(*captions);
    *captions = NULL;
    return false;
}

FILE *xv_test_pretrain_yaml_open(const char *dir, const char *prefix, const char *yaml, int dataset_size,
                                 int *n_vocab) {
    char vocab[1024];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", dir);
    *n_vocab = xv_test_count_lines(vocab);
    FILE *f = fopen(yaml, "w");
    CHECK(f != NULL, "cannot write %s", yaml);
    if (f)
        fprintf(f,
                "train_file: ['%s/%scaptions.jsonl']\n"
                "train_file_regions: ['%s/%sregions.jsonl']\n"
                "train_dataset_size: %d\n"
                "image_root: '%s'\n"
                "vocab: '%s'\n",
                dir, prefix, dir, prefix, dataset_size, dir, vocab);
    return f;
}

bool xv_test_learning_setup(const char *stem, const char *yaml_name, xv_test_learning_dirs *d) {
    if (!xv_test_scratch_dir(stem, d->root, sizeof d->root)) return false;
    xv_set_threads(1);
    snprintf(d->world, sizeof d->world, "%s/world", d->root);
    snprintf(d->yaml, sizeof d->yaml, "%s/%s", d->root, yaml_name);
    snprintf(d->out, sizeof d->out, "%s/run", d->root);
    snprintf(d->model, sizeof d->model, "%s/model", d->root);
    snprintf(d->vocab, sizeof d->vocab, "%s/vocab.txt", d->world);
    bool ok = mkdir(d->world, 0755) == 0;
    CHECK(ok, "cannot create %s", d->world);
    return ok;
}

bool xv_test_synth_world(const char *world, const char *args) {
    const char *bin = getenv("XV_BIN");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' synth --out '%s' %s 2>/dev/null", bin ? bin : "xvlm", world, args);
    const bool ok = bin && system(cmd) == 0;
    CHECK(ok, "%s", cmd);
    return ok;
}

void xv_test_learning_model_yaml(FILE *f, int depth, bool ape, int n_vocab) {
    fprintf(f,
            "model_config:\n"
            "  vision: {image_res: 32, swin_patch_size: 4, patch_size: 8, embed_dim: 32, depths: [%d, %d],\n"
            "           num_heads: [2, 4], window_size: 4, vision_width: 64%s}\n"
            "  text: {hidden_size: 64, num_hidden_layers: 4, num_attention_heads: 2, intermediate_size: 128,\n"
            "         vocab_size: %d, max_position_embeddings: 16, fusion_layer: 2, encoder_width: 64,\n"
            "         initializer_range: 0.07}\n"
            "embed_dim: 32\n"
            "optimizer: {opt: adamW, lr: 2e-3, weight_decay: 0.01, lr_mult: 2}\n",
            depth, depth, ape ? ", ape: true" : "", n_vocab);
}

int xv_test_count_lines(const char *path) {
    int n = 0;
    FILE *f = fopen(path, "r");
    for (int c; f && (c = fgetc(f)) != EOF;) n += c == '\n';
    if (f) fclose(f);
    return n;
}

bool xv_test_tmp_path(const char *name, char *out, size_t cap) {
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(out, cap, "%s/%s", tmp && *tmp ? tmp : "/tmp", name);
    bool ok = n > 0 && (size_t)n < cap;
    CHECK(ok, "$TMPDIR/%s does not fit in %zu bytes", name, cap);
    return ok;
}

bool xv_test_scratch_dir(const char *stem, char *out, size_t cap) {
    char name[256];
    snprintf(name, sizeof name, "%s_XXXXXX", stem);
    bool ok = xv_test_tmp_path(name, out, cap) && mkdtemp(out) != NULL;
    CHECK(ok, "cannot make a scratch folder %s", out);
    return ok;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void xv_test_remove_dir(const char *dir) {
    if (dir && *dir && nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

char *xv_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

bool xv_test_write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    bool ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0) ok = false;
    CHECK(ok, "cannot write %s", path);
    return ok;
}

xv_test_cli_result xv_test_cli(const char *scratch, const char *args, const char *input) {
    char in[1024] = "/dev/null", out[1024], err[1024];
    if (input) {
        snprintf(in, sizeof in, "%s/cli_stdin", scratch);
        xv_test_write_file(in, input);
    }
    snprintf(out, sizeof out, "%s/cli_stdout", scratch);
    snprintf(err, sizeof err, "%s/cli_stderr", scratch);
    size_t cap = strlen(args) + 4 * 1024 + 64;
    char *cmd = malloc(cap);
    snprintf(cmd, cap, "'%s' %s < '%s' > '%s' 2> '%s'", getenv("XV_BIN"), args, in, out, err);
    fflush(stdout);
    int rc = system(cmd);
    free(cmd);
    xv_test_cli_result r = {.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1};
    r.out = xv_test_read_file(out, NULL);
    r.err = xv_test_read_file(err, NULL);
    if (!r.out) r.out = calloc(1, 1);
    if (!r.err) r.err = calloc(1, 1);
    return r;
}

void xv_test_cli_free(xv_test_cli_result *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

int xv_test_cli_ok(const char *scratch, const char *args) {
    xv_test_cli_result r = xv_test_cli(scratch, args, NULL);
    CHECK(r.status == 0, "xvlm %s: exit %d: %s", args, r.status, r.err);
    const int st = r.status;
    xv_test_cli_free(&r);
    return st;
}

/* The words the test texts use; every other word becomes [UNK] pieces. */
static const char *const TINY_WORDS[] = {
    "a", "an", "the", "red", "green", "blue", "yellow", "white", "black", "square", "circle", "triangle",
    "on", "of", "in", "left", "right", "top", "bottom", "big", "small", "and", "with", "picture",
    "shape", "next", "to", "two", "one", "car", "bus", "dog", "cat", "##s", "##ed", "man", "horse",
};

bool xv_test_tiny_vocab(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", f);
    for (size_t i = 0; i < sizeof TINY_WORDS / sizeof *TINY_WORDS; i++) fprintf(f, "%s\n", TINY_WORDS[i]);
    return fclose(f) == 0;
}

xv_model *xv_test_random_model(const char *js, uint64_t seed, xv_model_config *cfg) {
    xv_model_config c;
    xv_model *m = NULL;
    xv_model_parts parts = xv_model_parts_pretrain();
    xv_status st = xv_config_parse_json(js, "test model", &c);
    if (st == XV_OK) st = xv_model_create(&c, &parts, &m);
    if (st == XV_OK) st = xv_model_init_random(m, seed);
    CHECK(st == XV_OK, "random model: %s", xv_error_message());
    if (st != XV_OK) {
        xv_model_free(m);
        return NULL;
    }
    if (cfg) *cfg = c;
    return m;
}

bool xv_test_save_model_dir(const xv_model *m, const xv_model_config *cfg, const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    bool ok = xv_model_save(m, path) == XV_OK;
    char *cj = ok ? xv_config_to_json(cfg) : NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    ok = ok && cj && xv_test_write_file(path, cj);
    free(cj);
    return ok;
}

bool xv_test_model_dir_from_json(const char *dir, const char *js, uint64_t seed) {
    xv_model_config c;
    xv_model *m = xv_test_random_model(js, seed, &c);
    bool ok = m && xv_test_save_model_dir(m, &c, dir);
    xv_model_free(m);
    return ok;
}

const char *const xv_test_tiny_model_json =
    "{\"vision\": {\"image_res\": 64, \"window_size\": 8, \"embed_dim\": 8, \"depths\": [2, 2, 1, 1],"
    " \"num_heads\": [1, 2, 2, 4], \"vision_width\": 64, \"patch_size\": 32},"
    " \"text\": {\"hidden_size\": 16, \"num_hidden_layers\": 3, \"num_attention_heads\": 2,"
    " \"intermediate_size\": 32, \"vocab_size\": 64, \"max_position_embeddings\": 24, \"fusion_layer\": 1},"
    " \"embed_dim\": 8}";

bool xv_test_tiny_model_dir(const char *dir, uint64_t seed, bool with_vocab) {
    bool ok = xv_test_model_dir_from_json(dir, xv_test_tiny_model_json, seed);
    char path[1024];
    if (ok && with_vocab) {
        snprintf(path, sizeof path, "%s/vocab.txt", dir);
        ok = xv_test_tiny_vocab(path);
    }
    CHECK(ok, "tiny model folder %s: %s", dir, xv_error_message());
    return ok;
}

bool xv_test_tiny_image(const char *path, int w, int h, int k) {
    uint8_t *px = malloc((size_t)w * (size_t)h * 3);
    if (!px) return false;
    int x0 = (k * 7) % (w / 2), y0 = (k * 5) % (h / 2), x1 = x0 + w / 3, y1 = y0 + h / 3;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + 3 * ((size_t)y * (size_t)w + (size_t)x);
            int in = x >= x0 && x < x1 && y >= y0 && y < y1;
            p[0] = (uint8_t)(in ? 230 : (40 * k + 3 * x) % 256);
            p[1] = (uint8_t)(in ? 200 - 20 * (k % 5) : (90 + 2 * y) % 256);
            p[2] = (uint8_t)(in ? 40 * (k % 6) : (150 + x * y) % 256);
        }
    xv_status st = xv_jpeg_write(path, px, w, h, 90);
    free(px);
    return st == XV_OK;
}

/* `xvlm synth ARGS` (its --out under dir) and a random model of model_json
 * with the world's vocabulary in dir/model_name. */
static bool synth_world_and_model(const char *dir, const char *args, const char *model_json, const char *model_name) {
    char path[512], model[400], err[512];
    const int st = xv_test_cli_status(dir, "synth", args, err, sizeof err);
    CHECK(st == 0, "xvlm synth %s: exit %d: %s", args, st, err);
    snprintf(model, sizeof model, "%s/%s", dir, model_name);
    bool ok = st == 0 && mkdir(model, 0755) == 0 && xv_test_model_dir_from_json(model, model_json, 7);
    snprintf(path, sizeof path, "%s/world/vocab.txt", dir);
    char *vocab = ok ? xv_test_read_file(path, NULL) : NULL;
    snprintf(path, sizeof path, "%s/vocab.txt", model);
    ok = vocab && xv_test_write_file(path, vocab);
    free(vocab);
    return ok;
}

bool xv_test_vqacap_world(const char *dir, int images) {
    static const char *const model_json =
        "{\"vision\": {\"image_res\": 32, \"window_size\": 4, \"embed_dim\": 16, \"depths\": [1, 1, 1],"
        " \"num_heads\": [1, 2, 4], \"vision_width\": 64, \"patch_size\": 16, \"ape\": true},"
        " \"text\": {\"hidden_size\": 32, \"num_hidden_layers\": 3, \"num_attention_heads\": 2,"
        " \"intermediate_size\": 64, \"vocab_size\": 192, \"max_position_embeddings\": 40, \"fusion_layer\": 1},"
        " \"embed_dim\": 16}";
    char args[512];
    snprintf(args, sizeof args, "--out %s/world --seed 3 --images %d --test-images 8 --size 64", dir, images);
    const bool ok = synth_world_and_model(dir, args, model_json, "tiny");
    CHECK(ok, "VQA / captioning world in %s", dir);
    return ok;
}

bool xv_test_nlvr_world(const char *dir, int images, int test_images, int epochs) {
    static const char *const model_json =
        "{\"vision\": {\"image_res\": 64, \"window_size\": 8, \"embed_dim\": 8, \"depths\": [2, 2, 1, 1],"
        " \"num_heads\": [1, 2, 2, 4], \"vision_width\": 64, \"patch_size\": 32},"
        " \"text\": {\"hidden_size\": 32, \"num_hidden_layers\": 3, \"num_attention_heads\": 2,"
        " \"intermediate_size\": 64, \"vocab_size\": 256, \"max_position_embeddings\": 32, \"fusion_layer\": 1},"
        " \"embed_dim\": 8}";
    char args[512], path[512];
    snprintf(args, sizeof args, "--out %s/world --seed 5 --images %d --test-images %d --size 64", dir, images,
             test_images);
    bool ok = synth_world_and_model(dir, args, model_json, "model");
    char y[1600];
    snprintf(y, sizeof y,
             "train_file: ['%s/world/nlvr_train.json']\nval_file: '%s/world/nlvr_dev.json'\n"
             "test_file: '%s/world/nlvr_test.json'\nimage_root: '%s/world'\nimage_res: 64\nbatch_size: 8\n"
             "optimizer: {opt: adamW, lr: 0.003, weight_decay: 0.01, lr_mult: 2}\n"
             "schedular: {sched: linear, lr: 0.003, epochs: %d, num_warmup_steps: 0.1}\n",
             dir, dir, dir, dir, epochs);
    snprintf(path, sizeof path, "%s/nlvr.yaml", dir);
    ok = ok && xv_test_write_file(path, y);
    CHECK(ok, "NLVR world in %s", dir);
    return ok;
}

bool xv_test_same_file(const char *a, const char *b, const char *name) {
    char pa[512], pb[512];
    size_t la = 0, lb = 0;
    snprintf(pa, sizeof pa, "%s/%s", a, name);
    snprintf(pb, sizeof pb, "%s/%s", b, name);
    char *da = xv_test_read_file(pa, &la), *db = xv_test_read_file(pb, &lb);
    const bool same = da && db && la == lb && !memcmp(da, db, la);
    free(da), free(db);
    return same;
}
