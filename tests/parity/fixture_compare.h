/* Helpers of the task-model parity tests (VQA, captioning): read fixture
 * inputs into graph tensors and compare results with the golden outputs by
 * name, one line per tensor with its worst difference. Header-only: each
 * parity test is one program. */
#ifndef XV_TESTS_FIXTURE_COMPARE_H
#define XV_TESTS_FIXTURE_COMPARE_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/params.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "testutil.h"

/* The fixture folder FIXTURES/<name> into dir, with its inputs and golden
 * outputs opened (NULL and a failed CHECK when they cannot be). false when
 * the fixtures are absent: the test skips. */
static bool fx_open(const char *name, char *dir, size_t n, xv_st_file **in, xv_st_file **ref) {
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

/* DIR/config.json parsed (NULL and a failed CHECK when it cannot be). */
static cJSON *fx_config(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    uint8_t *text = NULL;
    size_t len = 0;
    CHECK_OK(xv_fs_read_file(path, 1 << 24, &text, &len));
    cJSON *root = text ? cJSON_ParseWithLength((const char *)text, len) : NULL;
    free(text);
    CHECK(root != NULL, "%s: not JSON", path);
    return root;
}

/* Input `name` of f as an F32 or I32 tensor of g (NULL + failed CHECK if absent). */
static xv_tensor *fx_input(xv_graph *g, const xv_st_file *f, const char *name, bool f32) {
    const xv_st_tensor *t = xv_st_find(f, name);
    CHECK(t != NULL, "fixture input %s is missing", name);
    if (!t) return NULL;
    xv_tensor *x = xv_tensor_new(g, f32 ? XV_F32 : XV_I32, t->shape, t->ndim);
    if (!x) return NULL;
    CHECK_OK(f32 ? xv_st_read_f32(f, t, x->data) : xv_st_read_i32(f, t, x->idata));
    return x;
}

/* Worst relative difference seen by fx_values, per section. */
static double fx_worst;
static const char *fx_worst_name = "";

/* got[0..n) against golden tensor `name` of ref: integers exactly, floats
 * within tol·max(1, max|ref|). Returns the relative difference. */
static double fx_values(const xv_st_file *ref, const char *name, const float *got_f, const int32_t *got_i,
                        int64_t n, double tol) {
    const xv_st_tensor *r = xv_st_find(ref, name);
    bool integer = r && (r->dtype == XV_ST_I64 || r->dtype == XV_ST_I32);
    double rel = xv_test_compare_values(ref, name, integer ? (const void *)got_i : (const void *)got_f, n, integer,
                                        false, tol);
    if (!integer && !(rel <= fx_worst)) fx_worst = rel, fx_worst_name = name;
    return rel;
}

/* Tensor t (F32 data or I32 idata) against golden `name`. */
static double fx_tensor(const xv_st_file *ref, const char *name, const xv_tensor *t, double tol) {
    CHECK(t != NULL, "%s: not computed (%s)", name, xv_error_message());
    if (!t) return INFINITY;
    return fx_values(ref, name, t->dtype == XV_F32 ? t->data : NULL, t->dtype == XV_I32 ? t->idata : NULL, t->numel,
                     tol);
}

/* t's gradient against golden `name`. */
static double fx_grad(const xv_st_file *ref, const char *name, const xv_tensor *t, double tol) {
    CHECK(t && t->grad, "%s: no gradient", name);
    if (!t || !t->grad) return INFINITY;
    return fx_values(ref, name, t->grad, NULL, t->numel, tol);
}

/* Every golden tensor `prefix` + <parameter name> with a parameter name
 * starting with `params` against that parameter's gradient (aliases
 * included). Returns how many were compared. */
static int fx_param_grads(const xv_st_file *ref, const char *prefix, const char *params, const xv_params *p,
                          double tol) {
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

/* Print and reset the section's worst relative difference. */
static void fx_section(const char *section) {
    printf("worst rel diff for %s: %.3e (%s)\n", section, fx_worst, fx_worst_name);
    fx_worst = 0;
    fx_worst_name = "";
}

#endif
