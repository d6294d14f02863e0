/* Layout ops: concat, slice, reshape, permute, window partition / reverse,
 * patch merging, patchify.
 *
 * These ops only move values, so they are checked exactly: the input holds
 * 0, 1, 2, ... and every output element must equal the input index given by a
 * formula written here independently of the library (e.g. the roll + window
 * view of docs/architecture.md, §2.4). Backward must be the transpose of
 * that map: with output gradient k+1 at position k, every input gradient must
 * equal the sum of the k+1 that read it (integers, so exact in float).
 * Finite differences then check the same ops through the generic harness. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef xv_tensor *(*unary_op)(xv_graph *g, xv_tensor *x, const void *ctx);

/* Forward equals x[src[k]] at every output k; backward scatters exactly along src. */
static void check_gather_map(const char *name, unary_op op, const void *ctx, const int64_t *shape,
                             int ndim, const int64_t *src, int64_t n_out) {
    int64_t n = xv_shape_numel(shape, ndim);
    float *xd = malloc(sizeof(float) * (size_t)n);
    float *dout = malloc(sizeof(float) * (size_t)(n_out ? n_out : 1));
    double *expect = calloc((size_t)n, sizeof(double));
    for (int64_t i = 0; i < n; i++) xd[i] = (float)i;
    xv_graph *g = xv_graph_new(0);
    xv_tensor *x = xv_tensor_wrap_f32(g, xd, shape, ndim);
    x->requires_grad = true;
    xv_tensor *y = op(g, x, ctx);
    CHECK(y && y->numel == n_out, "%s: output has %lld elements, want %lld (%s)", name,
          y ? (long long)y->numel : -1LL, (long long)n_out, xv_error_message());
    if (y && y->numel == n_out) {
        int64_t bad = 0, first = -1;
        for (int64_t k = 0; k < n_out; k++)
            if (y->data[k] != (float)src[k]) {
                if (first < 0) first = k;
                bad++;
            }
        CHECK(bad == 0, "%s forward: %lld mismatches, first at %lld: %g want %lld", name,
              (long long)bad, (long long)first, first >= 0 ? y->data[first] : 0.0,
              first >= 0 ? (long long)src[first] : 0LL);
        for (int64_t k = 0; k < n_out; k++) {
            dout[k] = (float)(k + 1);
            expect[src[k]] += k + 1;
        }
        CHECK_OK(xv_backward_with(g, y, dout));
        bad = 0;
        for (int64_t i = 0; i < n; i++) {
            double got = x->grad ? x->grad[i] : 0.0;
            if (got != expect[i]) bad++;
        }
        CHECK(bad == 0, "%s backward: %lld gradients differ from the inverse map", name, (long long)bad);
    }
    xv_graph_free(g);
    free(xd);
    free(dout);
    free(expect);
}

/* ---------------------------------------------------------------- windows */

typedef struct {
    int B, H, W, win, shift, C;
} win_case;

static xv_tensor *op_partition(xv_graph *g, xv_tensor *x, const void *ctx) {
    const win_case *c = ctx;
    return xv_window_partition(g, x, c->H, c->W, c->win, c->shift);
}

static xv_tensor *op_reverse(xv_graph *g, xv_tensor *x, const void *ctx) {
    const win_case *c = ctx;
    return xv_window_reverse(g, x, c->H, c->W, c->win, c->shift);
}

/* Independent construction, two steps as in docs/architecture.md:
 * 1. roll: rolled[b][h][w] = index of x[b][(h+s) mod H][(w+s) mod W];
 * 2. view [B, H/win, win, W/win, win, C] and permute to (b, wr, wc, i, j, c). */
static int64_t *partition_src(const win_case *c) {
    int64_t n = (int64_t)c->B * c->H * c->W * c->C;
    int64_t *rolled = malloc(sizeof(int64_t) * (size_t)n), *src = malloc(sizeof(int64_t) * (size_t)n);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int w = 0; w < c->W; w++)
                for (int ch = 0; ch < c->C; ch++) {
                    int hh = (h + c->shift) % c->H, ww = (w + c->shift) % c->W;
                    rolled[(((int64_t)b * c->H + h) * c->W + w) * c->C + ch] =
                        (((int64_t)b * c->H + hh) * c->W + ww) * c->C + ch;
                }
    int nr = c->H / c->win, nc = c->W / c->win;
    int64_t k = 0;
    for (int b = 0; b < c->B; b++)
        for (int wr = 0; wr < nr; wr++)
            for (int wc = 0; wc < nc; wc++)
                for (int i = 0; i < c->win; i++)
                    for (int j = 0; j < c->win; j++)
                        for (int ch = 0; ch < c->C; ch++) {
                            int h = wr * c->win + i, w = wc * c->win + j;
                            src[k++] = rolled[(((int64_t)b * c->H + h) * c->W + w) * c->C + ch];
                        }
    free(rolled);
    return src;
}

/* Reverse: x[h][w] = windows at shifted position ((h - s) mod H, (w - s) mod W). */
static int64_t *reverse_src(const win_case *c) {
    int64_t n = (int64_t)c->B * c->H * c->W * c->C;
    int64_t *src = malloc(sizeof(int64_t) * (size_t)n);
    int nr = c->H / c->win, nc = c->W / c->win;
    int64_t k = 0;
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int w = 0; w < c->W; w++) {
                int hs = ((h - c->shift) % c->H + c->H) % c->H, ws = ((w - c->shift) % c->W + c->W) % c->W;
                int64_t window = ((int64_t)b * nr + hs / c->win) * nc + ws / c->win;
                int64_t token = (int64_t)(hs % c->win) * c->win + ws % c->win;
                for (int ch = 0; ch < c->C; ch++)
                    src[k++] = (window * c->win * c->win + token) * c->C + ch;
            }
    return src;
}

static void test_window_maps(const win_case *c) {
    char name[96];
    int64_t n = (int64_t)c->B * c->H * c->W * c->C;
    int nw = (c->H / c->win) * (c->W / c->win);
    int64_t *src = partition_src(c);
    snprintf(name, sizeof name, "partition %dx%d win %d shift %d C %d", c->H, c->W, c->win, c->shift, c->C);
    check_gather_map(name, op_partition, c, XV_SHAPE(c->B, (int64_t)c->H * c->W, c->C), src, n);
    free(src);
    src = reverse_src(c);
    snprintf(name, sizeof name, "reverse %dx%d win %d shift %d C %d", c->H, c->W, c->win, c->shift, c->C);
    check_gather_map(name, op_reverse, c, XV_SHAPE((int64_t)c->B * nw, (int64_t)c->win * c->win, c->C),
                     src, n);
    free(src);
}

/* Hand-picked positions for 14x14, window 7, shift 3 (C = 1): the first token
 * of window 0 is x[3][3]; the last token of the last window sits at shifted
 * (13, 13), i.e. x[(13+3) mod 14][..] = x[2][2]; window 1 starts at shifted
 * (0, 7) = x[3][10]. */
static void test_window_spot_values(void) {
    xv_graph *g = xv_graph_new(0);
    float xd[196];
    for (int i = 0; i < 196; i++) xd[i] = (float)i;
    xv_tensor *x = xv_tensor_wrap_f32(g, xd, XV_SHAPE(1, 196, 1));
    xv_tensor *w = xv_window_partition(g, x, 14, 14, 7, 3);
    CHECK(w && w->shape[0] == 4 && w->shape[1] == 49 && w->shape[2] == 1, "partition shape");
    if (w) {
        CHECK(w->data[0] == 3 * 14 + 3, "window 0 token 0 = x[3][3], got %g", w->data[0]);
        CHECK(w->data[3 * 49 + 48] == 2 * 14 + 2, "last token = x[2][2], got %g", w->data[3 * 49 + 48]);
        CHECK(w->data[49] == 3 * 14 + 10, "window 1 token 0 = x[3][10], got %g", w->data[49]);
    }
    xv_graph_free(g);
}

/* Partition with shift s equals partition of a tensor the test rolled itself
 * with shift 0; partition∘reverse and reverse∘partition are identities. */
static void test_window_roll_and_inverse(void) {
    const int B = 2, H = 14, W = 21, win = 7, s = 3, C = 4;
    int64_t n = (int64_t)B * H * W * C;
    float *xd = malloc(sizeof(float) * (size_t)n), *rolled = malloc(sizeof(float) * (size_t)n);
    xv_test_fill_uniform(xd, n, -1, 1, 11);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++)
                memcpy(rolled + (((int64_t)b * H + h) * W + w) * C,
                       xd + (((int64_t)b * H + (h + s) % H) * W + (w + s) % W) * C, sizeof(float) * C);
    xv_graph *g = xv_graph_new(0);
    xv_tensor *x = xv_tensor_wrap_f32(g, xd, XV_SHAPE(B, H * W, C));
    xv_tensor *xr = xv_tensor_wrap_f32(g, rolled, XV_SHAPE(B, H * W, C));
    xv_tensor *a = xv_window_partition(g, x, H, W, win, s);
    xv_tensor *b = xv_window_partition(g, xr, H, W, win, 0);
    CHECK(a && b && memcmp(a->data, b->data, sizeof(float) * (size_t)n) == 0,
          "shifted partition = partition of the rolled map");
    xv_tensor *back = xv_window_reverse(g, a, H, W, win, s);
    CHECK(back && memcmp(back->data, xd, sizeof(float) * (size_t)n) == 0, "reverse(partition(x)) = x");
    xv_tensor *pw = xv_window_partition(g, xv_window_reverse(g, a, H, W, win, s), H, W, win, s);
    CHECK(pw && memcmp(pw->data, a->data, sizeof(float) * (size_t)n) == 0, "partition(reverse(w)) = w");
    /* I32 tensors (the shift-mask label map) move the same way. */
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)H * W);
    for (int i = 0; i < H * W; i++) lab[i] = i;
    xv_tensor *li = xv_tensor_wrap_i32(g, lab, XV_SHAPE(1, H * W, 1));
    xv_tensor *lw = xv_window_partition(g, li, H, W, win, s);
    CHECK(lw && lw->dtype == XV_I32 && lw->idata[0] == s * W + s && lw->idata[48] == (s + 6) * W + s + 6,
          "I32 partition");
    CHECK_OK(xv_graph_status(g));
    xv_graph_free(g);
    free(lab);
    free(xd);
    free(rolled);
}

static xv_tensor *fd_partition(xv_graph *g, xv_tensor **in, void *ctx) {
    const win_case *c = ctx;
    return xv_window_partition(g, in[0], c->H, c->W, c->win, c->shift);
}

static xv_tensor *fd_reverse(xv_graph *g, xv_tensor **in, void *ctx) {
    const win_case *c = ctx;
    return xv_window_reverse(g, in[0], c->H, c->W, c->win, c->shift);
}

/* x partitioned twice: the later partition's backward copies into x's fresh
 * gradient, the earlier one adds into it. */
static xv_tensor *fd_partition_twice(xv_graph *g, xv_tensor **in, void *ctx) {
    xv_tensor *first = fd_partition(g, in, ctx);
    return xv_add(g, first, fd_partition(g, in, ctx));
}

static void test_window_fd(void) {
    win_case c = {3, 6, 9, 3, 2, 5};
    int64_t n = (int64_t)c.B * c.H * c.W * c.C;
    float *xd = malloc(sizeof(float) * (size_t)n);
    xv_test_fill_uniform(xd, n, -1, 1, 5);
    xv_fd_opts o = xv_fd_copy_opts(200);
    xv_fd_input in = {XV_SHAPE(c.B, c.H * c.W, c.C), xd, true};
    CHECK(xv_fd_check("fd window_partition", fd_partition, &c, &in, 1, &o) == 0, "fd partition");
    CHECK(xv_fd_check("fd window_partition twice", fd_partition_twice, &c, &in, 1, &o) == 0, "fd partition twice");
    xv_fd_input inw = {XV_SHAPE((int64_t)c.B * 6, 9, c.C), xd, true};
    CHECK(xv_fd_check("fd window_reverse", fd_reverse, &c, &inw, 1, &o) == 0, "fd reverse");
    free(xd);
}

/* ---------------------------------------------------------------- patch merge */

typedef struct {
    int B, H, W, C;
} merge_case;

static xv_tensor *op_merge(xv_graph *g, xv_tensor *x, const void *ctx) {
    const merge_case *c = ctx;
    return xv_patch_merge(g, x, c->H, c->W);
}

static void test_patch_merge(const merge_case *c) {
    /* Concat order x0..x3 = (even,even), (odd row,even col), (even row,odd col), (odd,odd). */
    static const int drow[4] = {0, 1, 0, 1}, dcol[4] = {0, 0, 1, 1};
    int64_t n = (int64_t)c->B * c->H * c->W * c->C, k = 0;
    int64_t *src = malloc(sizeof(int64_t) * (size_t)n);
    for (int b = 0; b < c->B; b++)
        for (int i = 0; i < c->H / 2; i++)
            for (int j = 0; j < c->W / 2; j++)
                for (int q = 0; q < 4; q++)
                    for (int ch = 0; ch < c->C; ch++)
                        src[k++] = (((int64_t)b * c->H + 2 * i + drow[q]) * c->W + 2 * j + dcol[q]) * c->C + ch;
    char name[64];
    snprintf(name, sizeof name, "patch_merge %dx%d C %d", c->H, c->W, c->C);
    check_gather_map(name, op_merge, c, XV_SHAPE(c->B, (int64_t)c->H * c->W, c->C), src, n);
    free(src);
}

static xv_tensor *fd_merge(xv_graph *g, xv_tensor **in, void *ctx) {
    const merge_case *c = ctx;
    return xv_patch_merge(g, in[0], c->H, c->W);
}

/* ---------------------------------------------------------------- patchify */

typedef struct {
    int B, Cin, H, W, p;
} patch_case;

static xv_tensor *op_patchify(xv_graph *g, xv_tensor *x, const void *ctx) {
    const patch_case *c = ctx;
    return xv_patchify(g, x, c->p);
}

static void test_patchify_map(const patch_case *c) {
    int nh = c->H / c->p, nw = c->W / c->p;
    int64_t n = (int64_t)c->B * c->Cin * c->H * c->W, k = 0;
    int64_t *src = malloc(sizeof(int64_t) * (size_t)n);
    for (int b = 0; b < c->B; b++)
        for (int ph = 0; ph < nh; ph++)
            for (int pw = 0; pw < nw; pw++)
                for (int ch = 0; ch < c->Cin; ch++)
                    for (int kh = 0; kh < c->p; kh++)
                        for (int kw = 0; kw < c->p; kw++)
                            src[k++] = (((int64_t)b * c->Cin + ch) * c->H + ph * c->p + kh) * c->W + pw * c->p + kw;
    char name[64];
    snprintf(name, sizeof name, "patchify %dx%d p %d", c->H, c->W, c->p);
    check_gather_map(name, op_patchify, c, XV_SHAPE(c->B, c->Cin, c->H, c->W), src, n);
    free(src);
}

/* A Conv2d(k = s = p) weight [out, Cin, p, p] read as a Linear [out, Cin·p·p]
 * on patchify's rows gives the convolution computed directly. Both sides sum
 * the same products in double; 1e-5 covers the final float roundings. */
static void test_patchify_is_conv(void) {
    const int B = 2, Cin = 3, H = 8, W = 12, p = 4, O = 5, nh = H / p, nw = W / p, F = Cin * p * p;
    float img[2 * 3 * 8 * 12], wt[5 * 3 * 4 * 4];
    xv_test_fill_uniform(img, B * Cin * H * W, -1, 1, 21);
    xv_test_fill_uniform(wt, O * F, -1, 1, 22);
    xv_graph *g = xv_graph_new(0);
    xv_tensor *rows = xv_patchify(g, xv_tensor_wrap_f32(g, img, XV_SHAPE(B, Cin, H, W)), p);
    CHECK(rows && rows->shape[1] == nh * nw && rows->shape[2] == F, "patchify shape");
    double worst = 0;
    for (int b = 0; rows && b < B; b++)
        for (int o = 0; o < O; o++)
            for (int ph = 0; ph < nh; ph++)
                for (int pw = 0; pw < nw; pw++) {
                    double conv = 0, lin = 0;
                    for (int c = 0; c < Cin; c++)
                        for (int kh = 0; kh < p; kh++)
                            for (int kw = 0; kw < p; kw++)
                                conv += (double)wt[((o * Cin + c) * p + kh) * p + kw] *
                                        img[((b * Cin + c) * H + ph * p + kh) * W + pw * p + kw];
                    for (int f = 0; f < F; f++)
                        lin += (double)wt[o * F + f] * rows->data[((int64_t)b * nh * nw + ph * nw + pw) * F + f];
                    worst = fmax(worst, fabs(conv - lin));
                }
    CHECK(worst < 1e-5, "patchify + Linear = Conv2d, max diff %g", worst);
    xv_graph_free(g);
}

static xv_tensor *fd_patchify(xv_graph *g, xv_tensor **in, void *ctx) {
    const patch_case *c = ctx;
    return xv_patchify(g, in[0], c->p);
}

/* ---------------------------------------------------------------- permute, slice, reshape */

typedef struct {
    int ndim;
    int64_t shape[XV_MAX_DIMS];
    int perm[XV_MAX_DIMS];
} perm_case;

static xv_tensor *op_permute(xv_graph *g, xv_tensor *x, const void *ctx) {
    return xv_permute(g, x, ((const perm_case *)ctx)->perm);
}

static void test_permute_map(const perm_case *c) {
    int64_t n = xv_shape_numel(c->shape, c->ndim), out_shape[XV_MAX_DIMS];
    for (int k = 0; k < c->ndim; k++) out_shape[k] = c->shape[c->perm[k]];
    int64_t *src = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t k = 0; k < n; k++) {
        /* Output multi-index o; the input index has i[perm[d]] = o[d]. */
        int64_t o[XV_MAX_DIMS], in[XV_MAX_DIMS], r = k;
        for (int d = c->ndim - 1; d >= 0; d--) {
            o[d] = r % out_shape[d];
            r /= out_shape[d];
        }
        for (int d = 0; d < c->ndim; d++) in[c->perm[d]] = o[d];
        int64_t flat = 0;
        for (int d = 0; d < c->ndim; d++) flat = flat * c->shape[d] + in[d];
        src[k] = flat;
    }
    char name[64] = "permute (";
    for (int d = 0; d < c->ndim; d++) snprintf(name + strlen(name), sizeof name - strlen(name), "%d", c->perm[d]);
    strncat(name, ")", sizeof name - strlen(name) - 1);
    check_gather_map(name, op_permute, c, c->shape, c->ndim, src, n);
    free(src);
}

static xv_tensor *fd_permute(xv_graph *g, xv_tensor **in, void *ctx) {
    return xv_permute(g, in[0], ((const perm_case *)ctx)->perm);
}

typedef struct {
    int dim;
    int64_t start, len;
} slice_case;

static xv_tensor *op_slice(xv_graph *g, xv_tensor *x, const void *ctx) {
    const slice_case *c = ctx;
    return xv_slice(g, x, c->dim, c->start, c->len);
}

static xv_tensor *fd_slice(xv_graph *g, xv_tensor **in, void *ctx) {
    const slice_case *c = ctx;
    return xv_slice(g, in[0], c->dim, c->start, c->len);
}

static void test_slice(void) {
    /* x [3, 7, 5]: narrow dim 1 to [2, 6). */
    slice_case c = {1, 2, 4};
    int64_t src[3 * 4 * 5], k = 0;
    for (int a = 0; a < 3; a++)
        for (int j = 0; j < 4; j++)
            for (int e = 0; e < 5; e++) src[k++] = (a * 7 + 2 + j) * 5 + e;
    check_gather_map("slice dim 1", op_slice, &c, XV_SHAPE(3, 7, 5), src, k);
    slice_case last = {-1, 4, 1}; /* negative dim = last */
    k = 0;
    for (int r = 0; r < 21; r++) src[k++] = r * 5 + 4;
    check_gather_map("slice dim -1", op_slice, &last, XV_SHAPE(3, 7, 5), src, k);

    float xd[105];
    xv_test_fill_uniform(xd, 105, -1, 1, 3);
    xv_fd_opts o = xv_fd_copy_opts(200);
    xv_fd_input in = {XV_SHAPE(3, 7, 5), xd, true};
    CHECK(xv_fd_check("fd slice", fd_slice, &c, &in, 1, &o) == 0, "fd slice");

    xv_graph *g = xv_graph_new(0);
    xv_tensor *x = xv_tensor_wrap_f32(g, xd, XV_SHAPE(3, 7, 5));
    CHECK(xv_slice(g, x, 1, 5, 3) == NULL && xv_graph_status(g) == XV_ERR_SHAPE, "slice past the end");
    CHECK(strstr(xv_error_message(), "slice") != NULL, "message names the op: %s", xv_error_message());
    xv_graph_reset(g);
    CHECK(xv_slice(g, x, 3, 0, 1) == NULL && xv_graph_status(g) == XV_ERR_INVALID_ARG, "dim out of range");
    xv_graph_free(g);
}

static xv_tensor *op_reshape(xv_graph *g, xv_tensor *x, const void *ctx) {
    (void)ctx;
    return xv_reshape(g, x, XV_SHAPE(5, -1, 3));
}

static xv_tensor *fd_reshape_permute(xv_graph *g, xv_tensor **in, void *ctx) {
    (void)ctx;
    /* [4,15] -> [5,4,3] -> permute (2,0,1): reshape's gradient flows through another op. */
    return xv_permute(g, xv_reshape(g, in[0], XV_SHAPE(5, 4, 3)), (const int[]){2, 0, 1});
}

static void test_reshape(void) {
    int64_t src[60];
    for (int i = 0; i < 60; i++) src[i] = i;
    check_gather_map("reshape", op_reshape, NULL, XV_SHAPE(4, 15), src, 60);
    xv_graph *g = xv_graph_new(0);
    float xd[60] = {0};
    xv_tensor *x = xv_tensor_wrap_f32(g, xd, XV_SHAPE(4, 15));
    xv_tensor *y = xv_reshape(g, x, XV_SHAPE(-1, 6));
    CHECK(y && y->ndim == 2 && y->shape[0] == 10 && y->data == x->data, "-1 inferred, data shared");
    CHECK(xv_reshape(g, x, XV_SHAPE(7, 9)) == NULL && xv_graph_status(g) == XV_ERR_SHAPE, "numel mismatch");
    xv_graph_free(g);
    float xr[60];
    xv_test_fill_uniform(xr, 60, -1, 1, 8);
    xv_fd_opts o = xv_fd_copy_opts(200);
    xv_fd_input in = {XV_SHAPE(4, 15), xr, true};
    CHECK(xv_fd_check("fd reshape+permute", fd_reshape_permute, NULL, &in, 1, &o) == 0, "fd reshape");
}

/* ---------------------------------------------------------------- concat */

typedef struct {
    int n, dim;
} concat_case;

static xv_tensor *fd_concat(xv_graph *g, xv_tensor **in, void *ctx) {
    const concat_case *c = ctx;
    return xv_concat(g, in, c->n, c->dim);
}

/* n inputs [2, len_i, 3] on dim 1 (len_i = i+1), input i holding 1000·i + j. */
static void test_concat_exact(int n) {
    xv_graph *g = xv_graph_new(0);
    xv_tensor *xs[10];
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        xs[i] = xv_tensor_new(g, XV_F32, XV_SHAPE(2, i + 1, 3));
        for (int64_t j = 0; j < xs[i]->numel; j++) xs[i]->data[j] = (float)(1000 * i + j);
        xs[i]->requires_grad = i != 1; /* a constant input among them */
        total += i + 1;
    }
    xv_tensor *y = xv_concat(g, xs, n, 1);
    CHECK(y && y->shape[0] == 2 && y->shape[1] == total && y->shape[2] == 3, "concat of %d: shape", n);
    if (!y) {
        xv_graph_free(g);
        return;
    }
    int bad = 0;
    float *dout = malloc(sizeof(float) * (size_t)y->numel);
    for (int64_t k = 0; k < y->numel; k++) dout[k] = (float)k;
    for (int b = 0; b < 2; b++) {
        int64_t row = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i + 1; j++, row++)
                for (int c = 0; c < 3; c++)
                    bad += y->data[(b * total + row) * 3 + c] != (float)(1000 * i + (b * (i + 1) + j) * 3 + c);
    }
    CHECK(bad == 0, "concat of %d: %d forward mismatches", n, bad);
    CHECK_OK(xv_backward_with(g, y, dout));
    bad = 0;
    for (int b = 0; b < 2; b++) {
        int64_t row = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i + 1; j++, row++)
                for (int c = 0; c < 3; c++) {
                    float want = i == 1 ? 0.0f : dout[(b * total + row) * 3 + c];
                    float got = xs[i]->grad ? xs[i]->grad[(b * (i + 1) + j) * 3 + c] : 0.0f;
                    bad += got != want;
                }
    }
    CHECK(bad == 0, "concat of %d: %d backward mismatches", n, bad);
    CHECK(xs[1]->grad == NULL, "constant input gets no gradient buffer");
    free(dout);
    xv_graph_free(g);
}

static void test_concat(void) {
    test_concat_exact(3);
    test_concat_exact(8); /* more inputs than a tape node holds */
    /* FD on dim 0 and dim 2 with odd sizes. */
    float a[3 * 5 * 2], b[1 * 5 * 2], c[4 * 5 * 2];
    xv_test_fill_uniform(a, 30, -1, 1, 31);
    xv_test_fill_uniform(b, 10, -1, 1, 32);
    xv_test_fill_uniform(c, 40, -1, 1, 33);
    xv_fd_input in[3] = {{XV_SHAPE(3, 5, 2), a, true}, {XV_SHAPE(1, 5, 2), b, false}, {XV_SHAPE(4, 5, 2), c, true}};
    concat_case c0 = {3, 0};
    xv_fd_opts o = xv_fd_copy_opts(200);
    CHECK(xv_fd_check("fd concat dim 0", fd_concat, &c0, in, 3, &o) == 0, "fd concat 0");
    xv_fd_input in2[2] = {{XV_SHAPE(5, 3, 2), a, true}, {XV_SHAPE(5, 1, 2), b, true}};
    concat_case c2 = {2, -2};
    CHECK(xv_fd_check("fd concat dim -2", fd_concat, &c2, in2, 2, &o) == 0, "fd concat -2");

    xv_graph *g = xv_graph_new(0);
    xv_tensor *p = xv_tensor_wrap_f32(g, a, XV_SHAPE(3, 5, 2)), *q = xv_tensor_wrap_f32(g, c, XV_SHAPE(4, 4, 2));
    CHECK(xv_concat(g, (xv_tensor *[]){p, q}, 2, 0) == NULL && xv_graph_status(g) == XV_ERR_SHAPE,
          "mismatched dims refused");
    CHECK(strstr(xv_error_message(), "[4,4,2]") != NULL, "message names the shape: %s", xv_error_message());
    xv_graph_reset(g);
    /* I32 (attention masks) concatenate too. */
    int32_t m1[2] = {1, 0}, m2[3] = {7, 8, 9};
    xv_tensor *i1 = xv_tensor_wrap_i32(g, m1, XV_SHAPE(2)), *i2 = xv_tensor_wrap_i32(g, m2, XV_SHAPE(3));
    xv_tensor *mi = xv_concat(g, (xv_tensor *[]){i1, i2}, 2, 0);
    CHECK(mi && mi->dtype == XV_I32 && mi->numel == 5 && mi->idata[1] == 0 && mi->idata[4] == 9, "I32 concat");
    xv_graph_free(g);
}

/* ---------------------------------------------------------------- reuse */

static xv_tensor *fd_two_consumers(xv_graph *g, xv_tensor **in, void *ctx) {
    (void)ctx;
    /* x [2, 36, 3] feeds a shifted window partition and a slice. */
    xv_tensor *w = xv_reshape(g, xv_window_partition(g, in[0], 6, 6, 3, 1), XV_SHAPE(2, 36, 3));
    xv_tensor *s = xv_slice(g, in[0], 1, 4, 9);
    return xv_concat(g, (xv_tensor *[]){w, s}, 2, 1);
}

static void test_two_consumers(void) {
    float xd[2 * 36 * 3];
    xv_test_fill_uniform(xd, 216, -1, 1, 41);
    xv_fd_opts o = xv_fd_copy_opts(200);
    o.max_checks = 216;
    xv_fd_input in = {XV_SHAPE(2, 36, 3), xd, true};
    CHECK(xv_fd_check("fd two consumers", fd_two_consumers, NULL, &in, 1, &o) == 0, "fd reuse");
    /* With an all-ones output gradient: 1 from the partition everywhere, +1 in the slice. */
    xv_graph *g = xv_graph_new(0);
    xv_tensor *x = xv_tensor_wrap_f32(g, xd, XV_SHAPE(2, 36, 3));
    x->requires_grad = true;
    xv_tensor *y = fd_two_consumers(g, &x, NULL);
    float ones[2 * 45 * 3];
    for (int i = 0; i < 270; i++) ones[i] = 1;
    CHECK_OK(xv_backward_with(g, y, ones));
    int bad = 0;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 36; t++)
            for (int c = 0; c < 3; c++) bad += x->grad[(b * 36 + t) * 3 + c] != (t >= 4 && t < 13 ? 2.0f : 1.0f);
    CHECK(bad == 0, "gradients of both consumers add up (%d wrong)", bad);
    xv_graph_free(g);
}

/* ---------------------------------------------------------------- errors */

static void test_layout_errors(void) {
    xv_graph *g = xv_graph_new(0);
    xv_tensor *x = xv_tensor_zeros(g, XV_F32, XV_SHAPE(1, 100, 2));
    CHECK(xv_window_partition(g, x, 10, 10, 7, 3) == NULL && xv_graph_status(g) == XV_ERR_SHAPE,
          "10x10 does not split into 7x7 windows");
    CHECK(strstr(xv_error_message(), "window_partition") != NULL, "message: %s", xv_error_message());
    xv_graph_reset(g);
    x = xv_tensor_zeros(g, XV_F32, XV_SHAPE(1, 100, 2));
    CHECK(xv_window_partition(g, x, 5, 10, 5, 0) == NULL, "H·W mismatch refused");
    xv_graph_reset(g);
    x = xv_tensor_zeros(g, XV_F32, XV_SHAPE(3, 49, 2));
    CHECK(xv_window_reverse(g, x, 14, 14, 7, 3) == NULL, "3 windows are not whole 14x14 images");
    xv_graph_reset(g);
    x = xv_tensor_zeros(g, XV_F32, XV_SHAPE(1, 15, 2));
    CHECK(xv_patch_merge(g, x, 3, 5) == NULL && xv_graph_status(g) == XV_ERR_SHAPE, "odd map refused");
    xv_graph_reset(g);
    x = xv_tensor_zeros(g, XV_F32, XV_SHAPE(1, 3, 10, 8));
    CHECK(xv_patchify(g, x, 4) == NULL && xv_graph_status(g) == XV_ERR_SHAPE, "10 not a multiple of 4");
    xv_graph_reset(g);
    x = xv_tensor_zeros(g, XV_F32, XV_SHAPE(2, 3));
    CHECK(xv_permute(g, x, (const int[]){0, 0}) == NULL && xv_graph_status(g) == XV_ERR_INVALID_ARG,
          "repeated dim refused");
    xv_graph_reset(g);
    CHECK(xv_permute(g, NULL, (const int[]){0}) == NULL && xv_graph_status(g) == XV_ERR_INVALID_ARG,
          "NULL input refused");
    xv_graph_free(g);
}

int main(void) {
    /* The two maps of docs/architecture.md, plus odd and non-square ones.
     * C = 16 at 56x56 crosses the parallel threshold. */
    const win_case wins[] = {{2, 14, 14, 7, 3, 3}, {2, 56, 56, 7, 3, 3}, {2, 56, 56, 7, 3, 16},
                             {1, 12, 12, 12, 0, 2}, {3, 6, 9, 3, 2, 5},  {1, 24, 24, 12, 6, 1}};
    for (size_t i = 0; i < sizeof wins / sizeof wins[0]; i++) test_window_maps(&wins[i]);
    test_window_spot_values();
    test_window_roll_and_inverse();
    test_window_fd();

    const merge_case merges[] = {{2, 4, 6, 3}, {1, 56, 56, 16}};
    for (size_t i = 0; i < 2; i++) test_patch_merge(&merges[i]);
    float xm[3 * 24 * 5];
    xv_test_fill_uniform(xm, 360, -1, 1, 51);
    merge_case mc = {3, 4, 6, 5};
    xv_fd_opts o = xv_fd_copy_opts(200);
    xv_fd_input inm = {XV_SHAPE(3, 24, 5), xm, true};
    CHECK(xv_fd_check("fd patch_merge", fd_merge, &mc, &inm, 1, &o) == 0, "fd patch_merge");

    const patch_case patches[] = {{2, 3, 8, 12, 4}, {1, 3, 224, 224, 4}, {2, 1, 9, 6, 3}};
    for (size_t i = 0; i < 3; i++) test_patchify_map(&patches[i]);
    test_patchify_is_conv();
    patch_case pc = {2, 3, 6, 9, 3};
    float xp[2 * 3 * 6 * 9];
    xv_test_fill_uniform(xp, 324, -1, 1, 52);
    xv_fd_input inp = {XV_SHAPE(2, 3, 6, 9), xp, true};
    CHECK(xv_fd_check("fd patchify", fd_patchify, &pc, &inp, 1, &o) == 0, "fd patchify");

    const perm_case perms[] = {
        {4, {2, 3, 4, 5}, {0, 2, 1, 3}}, {4, {2, 3, 4, 5}, {3, 2, 1, 0}}, {3, {3, 5, 7}, {0, 2, 1}},
        {2, {7, 3}, {0, 1}},             {1, {9}, {0}},                   {6, {2, 3, 1, 2, 3, 2}, {4, 0, 5, 2, 1, 3}},
        {4, {8, 49, 4, 32}, {0, 2, 1, 3}}};
    for (size_t i = 0; i < sizeof perms / sizeof perms[0]; i++) test_permute_map(&perms[i]);
    float xq[120];
    xv_test_fill_uniform(xq, 120, -1, 1, 53);
    xv_fd_input inq = {XV_SHAPE(2, 3, 4, 5), xq, true};
    CHECK(xv_fd_check("fd permute", fd_permute, (void *)&perms[1], &inq, 1, &o) == 0, "fd permute");

    test_slice();
    test_reshape();
    test_concat();
    test_two_consumers();
    test_layout_errors();
    return xv_test_finish("test_ops_layout");
}
