/* Comparisons of computed tensors with the official golden data
 * (shared/fixtures/<name>/{inputs,outputs}.safetensors, config.json), for the
 * parity tests that run the library in-process. One opening of a fixture, one
 * reading of its inputs, and two comparison rules, as the fixture README
 * gives them:
 *
 * golden_*: the NLVR2 and Grad-CAM rule (README nlvr/ and gradcam/): max|diff|
 * <= 1e-4 · max(1, max|ref|) per tensor, and the small-magnitude tensors
 * (layer output gradients, attention gradients, Grad-CAM maps and what comes
 * from them, values ~1e-5) relative to their own maximum. The references agree
 * with a float64 recomputation to <= 1.5e-6, so 1e-4 leaves room for fp32
 * summation order only. Shapes must match too.
 *
 * fx_*: the VQA and captioning rule: a tolerance per call (forward values and
 * gradients differ), integers exact; the worst difference of a section is
 * printed by fx_section. */
#ifndef XV_TESTS_GOLDEN_H
#define XV_TESTS_GOLDEN_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "core/params.h"
#include "io/safetensors.h"
#include "testutil.h"

#define GOLDEN_TOL 1e-4

/* ---- fixtures ---- */

/* FIXTURES/<name> into dir, with its inputs and golden outputs opened (NULL
 * and a failed CHECK when they cannot be). false when the fixtures are
 * absent: the test skips. */
bool golden_open(const char *name, char *dir, size_t n, xv_st_file **in, xv_st_file **ref);
/* DIR/NAME (config.json, conversion.json) parsed; NULL and a failed CHECK
 * when it cannot be. */
cJSON *golden_json(const char *dir, const char *name);
/* Input `name` of f as a graph tensor (F32, or I32 from I64/I32); NULL and a
 * failed CHECK when absent. */
xv_tensor *golden_input(xv_graph *g, const xv_st_file *f, const char *name, bool f32);
/* Tensor `name` of f as malloc'd floats, its count in *numel when numel is not
 * NULL (NULL and a failed CHECK when absent). */
float *golden_floats(const xv_st_file *f, const char *name, int64_t *numel);

/* `xvlm forward ARGS` on FIXTURES/<name> (its model and inputs), written to
 * a scratch file named by name and tag whose path goes into out; the golden
 * outputs' path into ref. false (a failed CHECK) when the command fails: the
 * caller still removes out. */
bool golden_forward_cli(const char *name, const char *tag, const char *args, char *out, size_t n_out, char *ref,
                        size_t n_ref);

/* ---- the NLVR2 / Grad-CAM rule ---- */

typedef struct {
    const char *section; /* label of the worst line */
    double worst;
    char worst_name[160];
    int compared;
} golden_section;

/* values [numel] (float, or int32 when `ints`) against ref tensor `name`. */
void golden_check(golden_section *s, const xv_st_file *ref, const char *name, const void *values,
                  const int64_t *shape, int ndim, bool ints);
/* A graph tensor (F32 values or I32) against the reference of that name. */
void golden_tensor(golden_section *s, const xv_st_file *ref, const char *name, const xv_tensor *t);
/* The gradient held by a graph tensor. */
void golden_grad(golden_section *s, const xv_st_file *ref, const char *name, const xv_tensor *t);
/* Every reference "<prefix>grad.<key>" against the gradient of parameter key
 * (found by name or alias; zeros when it has none). */
void golden_param_grads(golden_section *s, const xv_st_file *ref, const char *prefix, const xv_params *p);
/* Number of tensors of f whose name starts with prefix. */
int golden_count(const xv_st_file *f, const char *prefix);
/* <prefix>text_embedding_output and <prefix>layer_out.<i> (values), or with
 * grads their _grad counterparts (the gradients those tensors hold). */
void golden_layers(golden_section *s, const xv_st_file *ref, const char *prefix, xv_tensor *emb,
                   xv_tensor *const *layer_out, int layers, bool grads);
void golden_report(const golden_section *s);

/* ---- the VQA / captioning rule ---- */

/* got[0..n) against golden tensor `name` of ref: integers exactly, floats
 * within tol·max(1, max|ref|). Returns the relative difference. */
double fx_values(const xv_st_file *ref, const char *name, const float *got_f, const int32_t *got_i, int64_t n,
                 double tol);
/* Tensor t (F32 data or I32 idata) against golden `name`. */
double fx_tensor(const xv_st_file *ref, const char *name, const xv_tensor *t, double tol);
/* t's gradient against golden `name`. */
double fx_grad(const xv_st_file *ref, const char *name, const xv_tensor *t, double tol);
/* Every golden tensor `prefix` + <parameter name> with a parameter name
 * starting with `params` against that parameter's gradient (aliases
 * included). Returns how many were compared. */
int fx_param_grads(const xv_st_file *ref, const char *prefix, const char *params, const xv_params *p, double tol);
/* Print and reset the section's worst relative difference. */
void fx_section(const char *section);

#endif
