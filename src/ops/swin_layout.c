/* Swin token layouts: cyclic shift + window partition and its inverse, patch
 * merging, and patch embedding as im2col. All four are permutations (patchify
 * and merge: bijective gathers), so each backward is the inverse permutation
 * and distinct rows never collide: parallel loops need no atomics.
 * Window partition / reverse accept I32 tensors as well (the shift-mask label
 * map is partitioned exactly like the features). */
#include <string.h>

#include "ops/op_args.h"
#include "ops/ops.h"

/* ---------------------------------------------------------------- windows */

typedef struct {
    int64_t H, W, win, shift;
    int64_t nwc;      /* windows per window-row (W / win) */
    int64_t per_img;  /* windows per image */
} window_geom;

/* Token row in [B, H·W] layout held by windowed row r of [B·nW, win², C]:
 * window w of image b covers shifted rows wr·win.., cols wc·win.., and
 * shifted[h][w] = x[(h + s) mod H][(w + s) mod W]. */
static inline int64_t window_token_row(const window_geom *q, int64_t r) {
    int64_t win2 = q->win * q->win;
    int64_t t = r % win2, wi = (r / win2) % q->per_img, b = r / (win2 * q->per_img);
    int64_t hs = (wi / q->nwc) * q->win + t / q->win;
    int64_t ws = (wi % q->nwc) * q->win + t % q->win;
    int64_t h = (hs + q->shift) % q->H, w = (ws + q->shift) % q->W;
    return (b * q->H + h) * q->W + w;
}

/* Copy rows of C elements through the window map: to_windows gives
 * dst[r] = src[token(r)] (partition), otherwise dst[token(r)] = src[r] (reverse). */
static void window_copy(void *dst, const void *src, const window_geom *q, int64_t rows, int64_t C,
                        bool to_windows) {
    size_t rb = (size_t)C * 4;
#pragma omp parallel for schedule(static) if (rows * C >= XV_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = window_token_row(q, r);
        int64_t di = to_windows ? r : t, si = to_windows ? t : r;
        memcpy((char *)dst + (size_t)di * rb, (const char *)src + (size_t)si * rb, rb);
    }
}

static void window_add(float *dst, const float *src, const window_geom *q, int64_t rows, int64_t C,
                       bool to_windows) {
#pragma omp parallel for schedule(static) if (rows * C >= XV_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = window_token_row(q, r);
        float *d = dst + (to_windows ? r : t) * C;
        const float *s = src + (to_windows ? t : r) * C;
        for (int64_t c = 0; c < C; c++) d[c] += s[c];
    }
}

static bool window_geom_check(xv_graph *g, const char *op, int H, int W, int win, int shift,
                              window_geom *q) {
    if (win <= 0 || H <= 0 || W <= 0 || H % win || W % win || shift < 0) {
        xv_graph_fail(g, XV_ERR_SHAPE,
                      "%s: a %dx%d map does not split into %dx%d windows (shift %d): need H, W "
                      "multiples of the window and shift >= 0",
                      op, H, W, win, win, shift);
        return false;
    }
    q->H = H;
    q->W = W;
    q->win = win;
    q->shift = shift; /* taken mod H and mod W per axis by window_token_row */
    q->nwc = W / win;
    q->per_img = (int64_t)(H / win) * (W / win);
    return true;
}

static void window_backward(xv_graph *g, xv_node *node, bool partition) {
    xv_tensor *x = node->in[0];
    const window_geom *q = node->saved;
    bool fresh; /* the map is a permutation: a first writer copies every row */
    float *gx = xv_grad_for_write(g, x, &fresh);
    if (!gx) return;
    /* The gradient flows back along the same map in the opposite direction. */
    const int64_t C = xv_last_dim(x), rows = x->numel / C;
    if (fresh) window_copy(gx, node->out->grad, q, rows, C, !partition);
    else window_add(gx, node->out->grad, q, rows, C, !partition);
}

static void window_partition_backward(xv_graph *g, xv_node *node) { window_backward(g, node, true); }
static void window_reverse_backward(xv_graph *g, xv_node *node) { window_backward(g, node, false); }

static xv_tensor *window_op(xv_graph *g, xv_tensor *x, int H, int W, int win, int shift,
                            bool partition) {
    const char *op = partition ? "window_partition" : "window_reverse";
    if (!xv_arg_present(g, op, "x", x)) return NULL;
    window_geom q;
    if (!window_geom_check(g, op, H, W, win, shift, &q)) return NULL;
    char buf[64];
    int64_t C = x->ndim == 3 ? x->shape[2] : 0, B;
    if (partition) {
        if (x->ndim != 3 || x->shape[1] != (int64_t)H * W)
            return xv_graph_fail(g, XV_ERR_SHAPE, "%s: x must be [B, %d·%d, C], got %s", op, H, W,
                                 xv_shape_str(x, buf, sizeof buf));
        B = x->shape[0];
    } else {
        if (x->ndim != 3 || x->shape[1] != (int64_t)win * win || x->shape[0] % q.per_img)
            return xv_graph_fail(g, XV_ERR_SHAPE,
                                 "%s: x must be [B·%lld, %d·%d, C] windows, got %s", op,
                                 (long long)q.per_img, win, win, xv_shape_str(x, buf, sizeof buf));
        B = x->shape[0] / q.per_img;
    }
    xv_tensor *out = partition ? xv_tensor_new(g, x->dtype, XV_SHAPE(B * q.per_img, (int64_t)win * win, C))
                               : xv_tensor_new(g, x->dtype, XV_SHAPE(B, (int64_t)H * W, C));
    if (!out) return NULL;
    int64_t rows = B * H * W;
    window_copy(xv_arg_storage(out), xv_arg_storage(x), &q, rows, C, partition);
    if (x->dtype == XV_F32 &&
        !xv_record_saved(g, op, out, partition ? window_partition_backward : window_reverse_backward, &x, 1, &q,
                         sizeof q))
        return NULL;
    return out;
}

xv_tensor *xv_window_partition(xv_graph *g, xv_tensor *x, int H, int W, int win, int shift) {
    return window_op(g, x, H, W, win, shift, true);
}

xv_tensor *xv_window_reverse(xv_graph *g, xv_tensor *x, int H, int W, int win, int shift) {
    return window_op(g, x, H, W, win, shift, false);
}

/* ---------------------------------------------------------------- patch merging */

/* Quadrant k of a 2x2 block, in the official concat order
 * (even,even), (odd row,even col), (even row,odd col), (odd,odd). */
static inline int64_t merge_src_row(int64_t b, int64_t i, int64_t j, int k, int64_t H, int64_t W) {
    return (b * H + 2 * i + (k & 1)) * W + 2 * j + (k >> 1);
}

static void patch_merge_backward(xv_graph *g, xv_node *node) {
    xv_tensor *x = node->in[0];
    int64_t H = node->iarg[0], W = node->iarg[1], C = x->shape[2];
    int64_t rows = x->shape[0] * (H / 2) * (W / 2);
    float *gx = xv_grad(g, x);
    if (!gx) return;
    const float *gy = node->out->grad;
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < rows; r++) {
        int64_t j = r % (W / 2), i = (r / (W / 2)) % (H / 2), b = r / ((W / 2) * (H / 2));
        for (int k = 0; k < 4; k++) {
            float *d = gx + merge_src_row(b, i, j, k, H, W) * C;
            const float *s = gy + (r * 4 + k) * C;
            for (int64_t c = 0; c < C; c++) d[c] += s[c];
        }
    }
}

xv_tensor *xv_patch_merge(xv_graph *g, xv_tensor *x, int H, int W) {
    static const char op[] = "patch_merge";
    if (!xv_arg_f32(g, op, "x", x)) return NULL;
    char buf[64];
    if (H <= 0 || W <= 0 || H % 2 || W % 2 || x->ndim != 3 || x->shape[1] != (int64_t)H * W)
        return xv_graph_fail(g, XV_ERR_SHAPE,
                             "patch_merge: x must be [B, %d·%d, C] with even H and W, got %s", H, W,
                             xv_shape_str(x, buf, sizeof buf));
    int64_t B = x->shape[0], C = x->shape[2], rows = B * (H / 2) * (W / 2);
    xv_tensor *out = xv_tensor_new(g, XV_F32, XV_SHAPE(B, (int64_t)(H / 2) * (W / 2), 4 * C));
    if (!out) return NULL;
#pragma omp parallel for schedule(static) if (x->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < rows; r++) {
        int64_t j = r % (W / 2), i = (r / (W / 2)) % (H / 2), b = r / ((int64_t)(W / 2) * (H / 2));
        for (int k = 0; k < 4; k++)
            memcpy(out->data + (r * 4 + k) * C, x->data + merge_src_row(b, i, j, k, H, W) * C,
                   (size_t)C * sizeof(float));
    }
    xv_node *node = xv_record(g, op, out, patch_merge_backward, &x, 1);
    if (node) {
        node->iarg[0] = H;
        node->iarg[1] = W;
    }
    return out;
}

/* ---------------------------------------------------------------- patchify */

/* Output row r = (b, ph, pw) holds img[b, c, ph·p + kh, pw·p + kw] at feature
 * c·p² + kh·p + kw: each (c, kh) is a run of p contiguous pixels. */
static void patchify_backward(xv_graph *g, xv_node *node) {
    xv_tensor *img = node->in[0];
    int64_t p = node->iarg[0], Cin = img->shape[1], H = img->shape[2], W = img->shape[3];
    int64_t nh = H / p, nw = W / p, rows = img->shape[0] * nh * nw, F = Cin * p * p;
    float *gi = xv_grad(g, img);
    if (!gi) return;
    const float *gy = node->out->grad;
#pragma omp parallel for schedule(static) if (img->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < rows; r++) {
        int64_t pw = r % nw, ph = (r / nw) % nh, b = r / (nw * nh);
        for (int64_t c = 0; c < Cin; c++)
            for (int64_t kh = 0; kh < p; kh++) {
                float *d = gi + ((b * Cin + c) * H + ph * p + kh) * W + pw * p;
                const float *s = gy + r * F + (c * p + kh) * p;
                for (int64_t kw = 0; kw < p; kw++) d[kw] += s[kw];
            }
    }
}

xv_tensor *xv_patchify(xv_graph *g, xv_tensor *img, int p) {
    static const char op[] = "patchify";
    if (!xv_arg_f32(g, op, "img", img)) return NULL;
    char buf[64];
    if (p <= 0 || img->ndim != 4 || img->shape[2] % p || img->shape[3] % p)
        return xv_graph_fail(g, XV_ERR_SHAPE,
                             "patchify: img must be [B, Cin, H, W] with H, W multiples of the patch %d, got %s",
                             p, xv_shape_str(img, buf, sizeof buf));
    int64_t B = img->shape[0], Cin = img->shape[1], H = img->shape[2], W = img->shape[3];
    int64_t nh = H / p, nw = W / p, rows = B * nh * nw, F = Cin * p * p;
    xv_tensor *out = xv_tensor_new(g, XV_F32, XV_SHAPE(B, nh * nw, F));
    if (!out) return NULL;
#pragma omp parallel for schedule(static) if (img->numel >= XV_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < rows; r++) {
        int64_t pw = r % nw, ph = (r / nw) % nh, b = r / (nw * nh);
        for (int64_t c = 0; c < Cin; c++)
            for (int64_t kh = 0; kh < p; kh++)
                memcpy(out->data + r * F + (c * p + kh) * p,
                       img->data + ((b * Cin + c) * H + ph * p + kh) * W + pw * p,
                       (size_t)p * sizeof(float));
    }
    xv_node *node = xv_record(g, op, out, patchify_backward, &img, 1);
    if (node) node->iarg[0] = p;
    return out;
}
