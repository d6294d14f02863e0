/* `xvlm forward --grads` on the NLVR2 and Grad-CAM fixtures: the command
 * writes every output of the golden data under its name (golden.h gives the
 * tolerance rule; integers exact). Not written by the command:
 * gradcam.accuracy, which needs the RefCOCO splits (input gradcam.splits,
 * absent from the fixture; test_gradcam_fixture checks it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "golden.h"

static void compare_file(const char *ref_path, const char *out_path, const char *skip) {
    xv_st_file *ref = NULL, *out = NULL;
    CHECK_OK(xv_st_open(ref_path, &ref));
    CHECK_OK(xv_st_open(out_path, &out));
    golden_section s = {.section = ref_path};
    int expected = 0;
    for (int i = 0; ref && out && i < xv_st_count(ref); i++) {
        const xv_st_tensor *r = xv_st_at(ref, i);
        if (skip && !strcmp(r->name, skip)) continue;
        expected++;
        const xv_st_tensor *o = xv_st_find(out, r->name);
        CHECK(o != NULL, "%s: not written", r->name);
        if (!o) continue;
        void *v = malloc(sizeof(double) * (size_t)(o->numel ? o->numel : 1));
        if (r->dtype == XV_ST_F64) { /* IoU: float32 proposals against the official float64 ones */
            CHECK(o->dtype == XV_ST_F64 && o->numel == r->numel, "%s: F64 [%lld] expected", r->name,
                  (long long)r->numel);
            double worst = 0;
            for (int64_t k = 0; o->dtype == XV_ST_F64 && k < r->numel && k < o->numel; k++)
                worst = fmax(worst, fabs(((const double *)r->data)[k] - ((const double *)o->data)[k]));
            CHECK(worst <= 1e-5, "%s differs by %.3e", r->name, worst);
            s.compared++;
        } else if (r->dtype == XV_ST_I64) {
            CHECK_OK(xv_st_read_i32(out, o, v));
            golden_check(&s, ref, r->name, v, o->shape, o->ndim, true);
        } else {
            CHECK_OK(xv_st_read_f32(out, o, v));
            golden_check(&s, ref, r->name, v, o->shape, o->ndim, false);
        }
        free(v);
    }
    golden_report(&s);
    CHECK(s.compared == expected && expected > 0, "%d of %d reference tensors compared", s.compared, expected);
    xv_st_close(ref);
    xv_st_close(out);
}

int main(void) {
    if (!xv_fixtures_dir()) return xv_test_skip("fixtures absent");
    if (!getenv("XV_BIN")) return xv_test_skip("XV_BIN not set");
    const char *cases[2][3] = {{"nlvr", "--grads", NULL}, {"gradcam", "--grads --block-num 2", "gradcam.accuracy"}};
    for (int c = 0; c < 2; c++) {
        char out[512], ref[1200];
        if (golden_forward_cli(cases[c][0], "grads", cases[c][1], out, sizeof out, ref, sizeof ref))
            compare_file(ref, out, cases[c][2]);
        unlink(out);
    }
    return xv_test_finish("test_forward_tasks_cli");
}
