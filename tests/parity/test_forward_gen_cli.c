/* `xvlm forward --grads` on the VQA and captioning fixtures: the command
 * writes every output of shared/fixtures/{vqa,captioning} under its name.
 *
 * Tolerances (fixtures/README.md): forward values and losses ≤
 * 1e-5·max(1, max|ref|), gradients (names with ".grad.") ≤ 1e-4·max(1,
 * max|ref|), integers (token ids, rankings, beam bookkeeping) exact,
 * scst.cider_d (F64) ≤ 1e-9. VQA candidates whose first-token probabilities
 * tie exactly may be listed in another order than torch.topk's (the README
 * allows it): the candidate rows are matched on eval.topk_ids_first before
 * comparing, and a reordering between unequal probabilities fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "golden.h"

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4

/* Row permutation ours -> golden of the VQA candidates: perm[q·k + j] = the
 * golden column of our j-th candidate of question q (identity without ties). */
static int *vqa_candidate_order(const xv_st_file *ref, const xv_st_file *out, int64_t *rows) {
    const xv_st_tensor *r = xv_st_find(ref, "eval.topk_ids_first"), *o = xv_st_find(out, "eval.topk_ids_first");
    const xv_st_tensor *p = xv_st_find(out, "eval.topk_probs_first");
    *rows = 0;
    if (!r) return NULL;
    CHECK(o && p && o->numel == r->numel && p->numel == r->numel && r->ndim == 2, "eval.topk_ids_first written [Q, k]");
    if (!(o && p && o->numel == r->numel && p->numel == r->numel && r->ndim == 2)) return NULL;
    const int64_t Q = r->shape[0], k = r->shape[1];
    int32_t *gold = malloc(sizeof(int32_t) * (size_t)(Q * k)), *ours = malloc(sizeof(int32_t) * (size_t)(Q * k));
    float *prob = malloc(sizeof(float) * (size_t)(Q * k));
    int *perm = malloc(sizeof(int) * (size_t)(Q * k));
    CHECK_OK(xv_st_read_i32(ref, r, gold));
    CHECK_OK(xv_st_read_i32(out, o, ours));
    CHECK_OK(xv_st_read_f32(out, p, prob));
    int reordered = 0;
    for (int64_t q = 0; q < Q; q++)
        for (int64_t j = 0; j < k; j++) {
            int64_t c = 0;
            while (c < k && gold[q * k + c] != ours[q * k + j]) c++;
            CHECK(c < k, "question %lld: candidate %d is not in the golden top-%lld", (long long)q, ours[q * k + j],
                  (long long)k);
            if (c == k) c = j;
            CHECK(c == j || prob[q * k + c] == prob[q * k + j], "question %lld: candidate %d moved from %lld to %lld "
                  "without a tie", (long long)q, ours[q * k + j], (long long)c, (long long)j);
            reordered += c != j;
            perm[q * k + j] = (int)(q * k + c);
        }
    printf("  (%d VQA candidates with tied first-token probabilities listed in the other order)\n", reordered);
    free(gold);
    free(ours);
    free(prob);
    *rows = Q * k;
    return perm;
}

static bool is_candidate_tensor(const char *name) {
    static const char *const names[] = {"eval.topk_ids_first", "eval.topk_probs_first", "eval.candidate_ids",
                                        "eval.candidate_logits", "eval.candidate_nll", "eval.rerank_log_probs"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i])) return true;
    return false;
}

/* Values v (n elements, `rows` equal blocks) moved to their golden rows. */
static void permute(void *v, size_t elem, int64_t n, const int *perm, int64_t rows) {
    const size_t block = elem * (size_t)(n / rows);
    char *tmp = malloc(block * (size_t)rows);
    for (int64_t r = 0; r < rows; r++) memcpy(tmp + block * (size_t)perm[r], (char *)v + block * (size_t)r, block);
    memcpy(v, tmp, block * (size_t)rows);
    free(tmp);
}

static void compare_f64(const xv_st_tensor *r, const xv_st_tensor *o) {
    CHECK(o->dtype == XV_ST_F64 && o->numel == r->numel, "%s: F64 [%lld] expected", r->name, (long long)r->numel);
    double worst = 0;
    for (int64_t k = 0; o->dtype == XV_ST_F64 && k < r->numel && k < o->numel; k++) {
        double a, b;
        memcpy(&a, (const char *)r->data + 8 * k, 8);
        memcpy(&b, (const char *)o->data + 8 * k, 8);
        double d = fabs(a - b) / fmax(1.0, fabs(a));
        if (!(d <= worst)) worst = d;
    }
    printf("  %-70s rel %.3e\n", r->name, worst);
    CHECK(worst <= 1e-9, "%s: worst relative difference %.3e exceeds 1e-9", r->name, worst);
}

static void compare_file(const char *ref_path, const char *out_path) {
    xv_st_file *ref = NULL, *out = NULL;
    CHECK_OK(xv_st_open(ref_path, &ref));
    CHECK_OK(xv_st_open(out_path, &out));
    int64_t rows = 0;
    int *perm = ref && out ? vqa_candidate_order(ref, out, &rows) : NULL;
    int compared = 0;
    for (int i = 0; ref && out && i < xv_st_count(ref); i++) {
        const xv_st_tensor *r = xv_st_at(ref, i), *o = xv_st_find(out, r->name);
        CHECK(o != NULL, "%s: not written", r->name);
        if (!o) continue;
        compared++;
        if (r->dtype == XV_ST_F64) {
            compare_f64(r, o);
            continue;
        }
        const bool integer = r->dtype == XV_ST_I64;
        void *v = malloc(4 * (size_t)(o->numel ? o->numel : 1));
        CHECK_OK(integer ? xv_st_read_i32(out, o, v) : xv_st_read_f32(out, o, v));
        if (perm && is_candidate_tensor(r->name) && o->numel % rows == 0) permute(v, 4, o->numel, perm, rows);
        fx_values(ref, r->name, integer ? NULL : v, integer ? v : NULL, o->numel,
                  strstr(r->name, ".grad.") ? GRAD_TOL : FWD_TOL);
        free(v);
    }
    fx_section(ref_path);
    CHECK(compared == xv_st_count(ref) && compared > 0, "%d of %d reference tensors compared", compared,
          ref ? xv_st_count(ref) : 0);
    free(perm);
    xv_st_close(ref);
    xv_st_close(out);
}

int main(void) {
    if (!xv_fixtures_dir()) return xv_test_skip("fixtures absent");
    if (!getenv("XV_BIN")) return xv_test_skip("XV_BIN not set");
    const char *cases[] = {"vqa", "captioning"};
    for (int c = 0; c < 2; c++) {
        char out[512], ref[1200];
        if (golden_forward_cli(cases[c], "grads", "--grads", out, sizeof out, ref, sizeof ref)) compare_file(ref, out);
        unlink(out);
    }
    return xv_test_finish("test_forward_gen_cli");
}
