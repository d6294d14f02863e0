/* The parity tests' golden comparisons (golden.h). */
#include "golden.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"

/* ---- fixtures ---- */

bool golden_open(const char *name, char *dir, size_t n, xv_st_file **in, xv_st_file **ref) {
    *in = *ref = NULL;
    const char *fx = xv_fixtures_dir();
    if (!fx) return false;
    char path[1400];
    snprintf(dir, n, "%s/%s", fx, name);
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    CHECK_OK(xv_st_open(path, in));
    snprintf(path, sizeof path, "%s/outputs.safetensors", dir);
    CHECK_OK(xv_st_open(path, ref));
    return true;
}

cJSON *golden_json(const char *dir, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *text = NULL;
    size_t len = 0;
    CHECK_OK(xv_fs_read_file(path, 64 << 20, &text, &len));
    cJSON *root = text ? cJSON_ParseWithLength((const char *)text, len) : NULL;
    free(text);
    CHECK(root != NULL, "%s: not JSON", path);
    return root;
}

xv_tensor *golden_input(xv_graph *g, const xv_st_file *f, const char *name, bool f32) {
    const xv_st_tensor *t = xv_st_find(f, name);
    CHECK(t != NULL, "fixture input %s is missing", name);
    if (!t) return NULL;
    xv_tensor *x = xv_tensor_new(g, f32 ? XV_F32 : XV_I32, t->shape, t->ndim);
    if (!x) return NULL;
    CHECK_OK(f32 ? xv_st_read_f32(f, t, x->data) : xv_st_read_i32(f, t, x->idata));
    return x;
}

float *golden_floats(const xv_st_file *f, const char *name, int64_t *numel) {
    const xv_st_tensor *t = xv_st_find(f, name);
    CHECK(t != NULL, "%s present", name);
    if (!t) return NULL;
    float *v = malloc(sizeof *v * (size_t)(t->numel ? t->numel : 1));
    CHECK_OK(xv_st_read_f32(f, t, v));
    if (numel) *numel = t->numel;
    return v;
}

bool golden_forward_cli(const char *name, const char *tag, const char *args, char *out, size_t n_out, char *ref,
                        size_t n_ref) {
    const char *fx = xv_fixtures_dir(), *bin = getenv("XV_BIN");
    CHECK(fx && bin, "fixtures and XV_BIN needed");
    if (!fx || !bin) return false;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(out, n_out, "%s/xv_forward_%s_%s_%d.safetensors", tmp, name, tag, (int)getpid());
    snprintf(ref, n_ref, "%s/%s/outputs.safetensors", fx, name);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' forward --model '%s/%s' --inputs '%s/%s/inputs.safetensors' --out '%s' %s", bin,
             fx, name, fx, name, out, args);
    const bool ok = xv_test_run(cmd) == 0;
    CHECK(ok, "xvlm forward %s on %s failed", args, name);
    return ok;
}

/* ---- the NLVR2 / Grad-CAM rule ---- */

/* Tensors compared relative to their own maximum (the README's list). */
static bool relative_to_own_max(const char *name) {
    return strstr(name, ".layer_out_grad.") || strstr(name, ".text_embedding_output_grad") ||
           strstr(name, "gradcam.attn_grads") || strstr(name, "gradcam.map") || strstr(name, "gradcam.upsampled.") ||
           strstr(name, "gradcam.box_scores");
}

void golden_check(golden_section *s, const xv_st_file *ref, const char *name, const void *values,
                  const int64_t *shape, int ndim, bool ints) {
    const xv_st_tensor *r = xv_st_find(ref, name);
    CHECK(r != NULL, "reference %s missing", name);
    CHECK(values != NULL, "%s: not computed", name);
    if (!r || !values) return;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    bool same = r->numel == n && (r->ndim == ndim || (r->numel == 1 && n == 1));
    for (int d = 0; same && d < ndim && r->ndim == ndim; d++) same = r->shape[d] == shape[d];
    CHECK(same, "%s: shape differs from the reference", name);
    if (!same) return;
    double err = xv_test_compare_values(ref, name, values, n, ints, relative_to_own_max(name), GOLDEN_TOL);
    if (!ints && !(err <= s->worst)) {
        s->worst = err;
        snprintf(s->worst_name, sizeof s->worst_name, "%s", name);
    }
    s->compared++;
}

void golden_tensor(golden_section *s, const xv_st_file *ref, const char *name, const xv_tensor *t) {
    CHECK(t != NULL, "%s: not computed", name);
    if (!t) return;
    golden_check(s, ref, name, t->dtype == XV_F32 ? (const void *)t->data : (const void *)t->idata, t->shape, t->ndim,
                 t->dtype == XV_I32);
}

void golden_grad(golden_section *s, const xv_st_file *ref, const char *name, const xv_tensor *t) {
    CHECK(t && t->grad, "%s: no gradient", name);
    if (t && t->grad) golden_check(s, ref, name, t->grad, t->shape, t->ndim, false);
}

void golden_param_grads(golden_section *s, const xv_st_file *ref, const char *prefix, const xv_params *p) {
    char want[64];
    snprintf(want, sizeof want, "%sgrad.", prefix);
    for (int i = 0; i < xv_st_count(ref); i++) {
        const char *name = xv_st_at(ref, i)->name;
        if (strncmp(name, want, strlen(want))) continue;
        const xv_tensor *t = xv_params_find(p, name + strlen(want));
        CHECK(t != NULL, "%s: no such parameter", name + strlen(want));
        if (!t) continue;
        float *zeros = t->grad ? NULL : calloc((size_t)(t->numel ? t->numel : 1), sizeof(float));
        golden_check(s, ref, name, t->grad ? t->grad : zeros, t->shape, t->ndim, false);
        free(zeros);
    }
}

int golden_count(const xv_st_file *f, const char *prefix) {
    int n = 0;
    for (int i = 0; i < xv_st_count(f); i++) n += !strncmp(xv_st_at(f, i)->name, prefix, strlen(prefix));
    return n;
}

void golden_layers(golden_section *s, const xv_st_file *ref, const char *prefix, xv_tensor *emb,
                   xv_tensor *const *layer_out, int layers, bool grads) {
    char name[128];
    snprintf(name, sizeof name, "%stext_embedding_output%s", prefix, grads ? "_grad" : "");
    (grads ? golden_grad : golden_tensor)(s, ref, name, emb);
    for (int i = 0; i < layers; i++) {
        snprintf(name, sizeof name, "%slayer_out%s.%d", prefix, grads ? "_grad" : "", i);
        (grads ? golden_grad : golden_tensor)(s, ref, name, layer_out[i]);
    }
}

void golden_report(const golden_section *s) {
    printf("  worst for %s: %.3e (%s) over %d tensors\n", s->section, s->worst, s->worst_name, s->compared);
}

/* ---- the VQA / captioning rule ---- */

/* Worst relative difference seen by fx_values since the last fx_section. */
static double fx_worst;
static const char *fx_worst_name = "";

double fx_values(const xv_st_file *ref, const char *name, const float *got_f, const int32_t *got_i, int64_t n,
                 double tol) {
    const xv_st_tensor *r = xv_st_find(ref, name);
    bool integer = r && (r->dtype == XV_ST_I64 || r->dtype == XV_ST_I32);
    double rel = xv_test_compare_values(ref, name, integer ? (const void *)got_i : (const void *)got_f, n, integer,
                                        false, tol);
    if (!integer && !(rel <= fx_worst)) fx_worst = rel, fx_worst_name = name;
    return rel;
}

double fx_tensor(const xv_st_file *ref, const char *name, const xv_tensor *t, double tol) {
    CHECK(t != NULL, "%s: not computed (%s)", name, xv_error_message());
    if (!t) return INFINITY;
    return fx_values(ref, name, t->dtype == XV_F32 ? t->data : NULL, t->dtype == XV_I32 ? t->idata : NULL, t->numel,
                     tol);
}

double fx_grad(const xv_st_file *ref, const char *name, const xv_tensor *t, double tol) {
    CHECK(t && t->grad, "%s: no gradient", name);
    if (!t || !t->grad) return INFINITY;
    return fx_values(ref, name, t->grad, NULL, t->numel, tol);
}

int fx_param_grads(const xv_st_file *ref, const char *prefix, const char *params, const xv_params *p, double tol) {
    int n = 0;
    size_t k = strlen(prefix);
    for (int i = 0; i < xv_st_count(ref); i++) {
        const char *name = xv_st_at(ref, i)->name;
        if (strncmp(name, prefix, k) || strncmp(name + k, params, strlen(params))) continue;
        const xv_tensor *t = xv_params_find(p, name + k);
        CHECK(t != NULL, "%s: no parameter %s", name, name + k);
        if (!t) continue;
        fx_grad(ref, name, t, tol);
        n++;
    }
    return n;
}

void fx_section(const char *section) {
    printf("worst rel diff for %s: %.3e (%s)\n", section, fx_worst, fx_worst_name);
    fx_worst = 0;
    fx_worst_name = "";
}
