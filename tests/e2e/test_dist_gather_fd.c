/* The backward of the ITC all-gather over 2 ranks, by finite differences
 * (docs/distributed.md): every rank computes the same global ITC loss L over
 * the image and text features of both ranks; the gather's backward hands rank
 * r only the rows of its own items, with no sum over the ranks (the official
 * AllGather). So rank r's gradient of its own feature x_r[k] must equal
 * (L(x_r[k] + h) - L(x_r[k] - h)) / 2h with only rank r's feature moved; a
 * backward that summed the ranks' slices would give twice that. The
 * temperature, which every rank holds in full, gets dL/dtemp on every rank.
 *
 * The test starts itself under `mpirun --oversubscribe -np 2` (skipped
 * without MPI in the build or without mpirun); each rank checks its own
 * gradients and the job fails when one rank does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "model/losses.h"
#include "testutil.h"

enum { B = 3, E = 4 };

typedef struct {
    xv_params p;
    xv_tensor *img, *txt, *temp;
    xv_model m; /* only parts.itc and temp are read by the ITC loss */
} setup;

static void make(setup *s) {
    xv_params_init(&s->p);
    s->img = xv_params_add(&s->p, "image_feat", XV_SHAPE(B, E));
    s->txt = xv_params_add(&s->p, "text_feat", XV_SHAPE(B, E));
    s->temp = xv_params_add(&s->p, "temp", NULL, 0);
    CHECK(s->img && s->txt && s->temp, "parameters");
    /* different features on each rank, the same temperature */
    xv_test_fill_uniform(s->img->data, B * E, -1, 1, 11 + (uint64_t)xv_dist_rank());
    xv_test_fill_uniform(s->txt->data, B * E, -1, 1, 23 + (uint64_t)xv_dist_rank());
    s->temp->data[0] = 0.3f;
    memset(&s->m, 0, sizeof s->m);
    s->m.parts.itc = true;
    s->m.temp = s->temp;
}

/* The global loss (a collective); with grad, its backward into the params. */
static double loss(setup *s, bool grad) {
    xv_graph *g = xv_graph_new(0);
    xv_graph_set_grad(g, grad);
    xv_tensor *l = xv_itc_loss_global(g, &s->m, s->img, s->txt, NULL, NULL, NULL);
    CHECK(l != NULL, "ITC loss: %s", xv_error_message());
    double v = l ? (double)l->data[0] : NAN;
    if (l && grad) {
        xv_params_zero_grad(&s->p);
        CHECK_OK(xv_backward(g, l));
    }
    xv_graph_free(g);
    return v;
}

/* Moving `t`[k] on rank `owner` only (every rank: owner -1) by ±h: the central difference of L,
 * compared on the owner with its gradient. */
static void check_coordinate(setup *s, xv_tensor *t, int64_t k, int owner, float h, const char *what) {
    const float x = t->data[k];
    const bool mine = owner == xv_dist_rank() || owner < 0;
    if (mine) t->data[k] = x + h;
    const double up = loss(s, false);
    if (mine) t->data[k] = x - h;
    const double down = loss(s, false);
    if (mine) t->data[k] = x;
    const double fd = (up - down) / (2.0 * (double)h), an = t->grad[k];
    /* fp32 losses of order 1: their rounding (~1e-7) over 2h, plus the
     * curvature term h^2 f''' / 6 */
    const double tol = 2e-3 * fmax(1.0, fabs(fd));
    if (owner < 0 || mine) {
        CHECK(fabs(fd - an) <= tol, "rank %d, %s[%lld] moved on %s: backward %.6f, finite difference %.6f",
              xv_dist_rank(), what, (long long)k, owner < 0 ? "every rank" : "this rank", an, fd);
        printf("rank %d: %s[%lld]: backward %+.6f, finite difference %+.6f\n", xv_dist_rank(), what, (long long)k, an,
               fd);
    }
}

static int child(void) {
    setup s;
    make(&s);
    if (xv_test_failures) return xv_test_finish("test_dist_gather_fd (rank)");
    const double l = loss(&s, true);
    CHECK(isfinite(l), "loss %g", l);
    /* the gradients of this backward, kept: the finite differences below run forwards only */
    for (int owner = 0; owner < 2; owner++)
        for (int64_t k = 0; k < B * E; k += 5) {
            check_coordinate(&s, s.img, k, owner, 1e-2f, "image_feat");
            check_coordinate(&s, s.txt, k + 1, owner, 1e-2f, "text_feat");
        }
    check_coordinate(&s, s.temp, 0, -1, 1e-3f, "temp"); /* logits scale as 1/temp: a smaller step */
    xv_params_free(&s.p);
    return xv_test_finish("test_dist_gather_fd (rank)");
}

int main(int argc, char **argv) {
    if (xv_dist_init(&argc, &argv) != XV_OK) {
        fprintf(stderr, "%s\n", xv_error_message());
        return 1;
    }
    if (xv_dist_world() > 1) {
        const int rc = child();
        if (rc != 0) xv_dist_abort(rc, "test_dist_gather_fd failed");
        xv_dist_finalize();
        return rc;
    }
    const char *mpirun = xv_test_mpirun(2);
    if (!xv_dist_has_mpi() || !mpirun) return xv_test_skip("no MPI in this build, or mpirun absent");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s'%s'", mpirun, argv[0]);
    CHECK(xv_test_run(cmd) == 0, "the 2-rank finite-difference check failed");
    return xv_test_finish("test_dist_gather_fd");
}
