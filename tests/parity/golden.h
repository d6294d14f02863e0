/* Golden comparisons for the parity tests that run the library in-process
 * (NLVR2, Grad-CAM): inputs read from a fixture file into graph tensors, and
 * computed tensors checked against the fixture's tensor of the same name.
 *
 * Tolerances (shared/fixtures/README.md, nlvr/ and gradcam/): max|diff| <=
 * 1e-4 · max(1, max|ref|) per tensor; the small-magnitude tensors (layer
 * output gradients, attention gradients, Grad-CAM maps and what comes from
 * them, values ~1e-5) relative to their own maximum, max|diff| <= 1e-4 ·
 * max|ref|. The references agree with a float64 recomputation to <= 1.5e-6,
 * so 1e-4 leaves room for fp32 summation order only. */
#ifndef XV_TESTS_PARITY_GOLDEN_H
#define XV_TESTS_PARITY_GOLDEN_H

#include <stdlib.h>
#include <string.h>

#include "core/params.h"
#include "io/safetensors.h"
#include "testutil.h"

#define GOLDEN_TOL 1e-4

typedef struct {
    const char *section; /* label of the worst line */
    double worst;
    char worst_name[160];
    int compared;
} golden_section;

/* Tensors compared relative to their own maximum (the README's list). */
static inline bool golden_relative(const char *name) {
    return strstr(name, ".layer_out_grad.") || strstr(name, ".text_embedding_output_grad") ||
           strstr(name, "gradcam.attn_grads") || strstr(name, "gradcam.map") || strstr(name, "gradcam.upsampled.") ||
           strstr(name, "gradcam.box_scores");
}

/* Input `name` of f as a graph tensor (F32, or I32 from I64/I32). */
static inline xv_tensor *golden_input(xv_graph *g, const xv_st_file *f, const char *name, bool f32) {
    const xv_st_tensor *t = xv_st_find(f, name);
    CHECK(t != NULL, "input %s missing", name);
    if (!t) return NULL;
    xv_tensor *x = xv_tensor_new(g, f32 ? XV_F32 : XV_I32, t->shape, t->ndim);
    if (!x) return NULL;
    CHECK_OK(f32 ? xv_st_read_f32(f, t, x->data) : xv_st_read_i32(f, t, x->idata));
    return x;
}

/* values [numel] (float, or int32 when `ints`) against ref tensor `name`. */
static inline void golden_check(golden_section *s, const xv_st_file *ref, const char *name, const void *values,
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
    double err = xv_test_compare_values(ref, name, values, n, ints, golden_relative(name), GOLDEN_TOL);
    if (!ints && !(err <= s->worst)) {
        s->worst = err;
        snprintf(s->worst_name, sizeof s->worst_name, "%s", name);
    }
    s->compared++;
}

/* A graph tensor (F32 values or I32) against the reference of that name. */
static inline void golden_tensor(golden_section *s, const xv_st_file *ref, const char *name, const xv_tensor *t) {
    CHECK(t != NULL, "%s: not computed", name);
    if (!t) return;
    golden_check(s, ref, name, t->dtype == XV_F32 ? (const void *)t->data : (const void *)t->idata, t->shape, t->ndim,
                 t->dtype == XV_I32);
}

/* The gradient held by a graph tensor. */
static inline void golden_grad(golden_section *s, const xv_st_file *ref, const char *name, const xv_tensor *t) {
    CHECK(t && t->grad, "%s: no gradient", name);
    if (t && t->grad) golden_check(s, ref, name, t->grad, t->shape, t->ndim, false);
}

/* Every reference "<prefix>grad.<key>" against the gradient of parameter key
 * (found by name or alias; zeros when it has none). */
static inline void golden_param_grads(golden_section *s, const xv_st_file *ref, const char *prefix,
                                      const xv_params *p) {
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

/* Number of tensors of f whose name starts with prefix. */
static inline int golden_count(const xv_st_file *f, const char *prefix) {
    int n = 0;
    for (int i = 0; i < xv_st_count(f); i++) n += !strncmp(xv_st_at(f, i)->name, prefix, strlen(prefix));
    return n;
}

/* <prefix>text_embedding_output and <prefix>layer_out.<i> (values), or with
 * grads their _grad counterparts (the gradients those tensors hold). */
static inline void golden_layers(golden_section *s, const xv_st_file *ref, const char *prefix, xv_tensor *emb,
                                 xv_tensor *const *layer_out, int layers, bool grads) {
    char name[128];
    snprintf(name, sizeof name, "%stext_embedding_output%s", prefix, grads ? "_grad" : "");
    (grads ? golden_grad : golden_tensor)(s, ref, name, emb);
    for (int i = 0; i < layers; i++) {
        snprintf(name, sizeof name, "%slayer_out%s.%d", prefix, grads ? "_grad" : "", i);
        (grads ? golden_grad : golden_tensor)(s, ref, name, layer_out[i]);
    }
}

static inline void golden_report(const golden_section *s) {
    printf("  worst for %s: %.3e (%s) over %d tensors\n", s->section, s->worst, s->worst_name, s->compared);
}

#endif
