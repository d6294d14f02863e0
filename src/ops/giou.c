/* Generalised-IoU loss between matching boxes (the bbox objective, §5.4).
 *
 * Forward follows PyTorch's float arithmetic step by step (corners, areas,
 * clamped intersection and enclosing box). Backward recomputes those steps in
 * double and applies PyTorch's subgradient conventions at the kinks, so
 * gradients agree with autograd even on identical or touching boxes:
 * - max(a, b) / min(a, b) of two tensors split the gradient in half on ties;
 * - clamp(v, min = 0) passes the gradient where v >= 0. */
#include "ops/op_args.h"
#include "ops/ops.h"

typedef struct {
    float x0, y0, x1, y1;
} corners;

static corners to_corners(const float *b) {
    corners c = {b[0] - 0.5f * b[2], b[1] - 0.5f * b[3], b[0] + 0.5f * b[2], b[1] + 0.5f * b[3]};
    return c;
}

static bool degenerate(corners c) { return c.x1 < c.x0 || c.y1 < c.y0; }

static float maxf(float a, float b) { return a > b ? a : b; }
static float minf(float a, float b) { return a < b ? a : b; }
static float clamp0(float v) { return v < 0 ? 0 : v; }

static float giou_loss_forward(const float *pb, const float *tb) {
    corners a = to_corners(pb), b = to_corners(tb);
    float area_a = (a.x1 - a.x0) * (a.y1 - a.y0), area_b = (b.x1 - b.x0) * (b.y1 - b.y0);
    float iw = clamp0(minf(a.x1, b.x1) - maxf(a.x0, b.x0));
    float ih = clamp0(minf(a.y1, b.y1) - maxf(a.y0, b.y0));
    float inter = iw * ih;
    float uni = area_a + area_b - inter;
    float iou = inter / uni;
    float cw = clamp0(maxf(a.x1, b.x1) - minf(a.x0, b.x0));
    float ch = clamp0(maxf(a.y1, b.y1) - minf(a.y0, b.y0));
    float enc = cw * ch;
    return 1.0f - (iou - (enc - uni) / enc);
}

/* Share of the gradient of max(a, b) that goes to a (min: swap the comparison). */
static double max_share(double a, double b) { return a > b ? 1.0 : a == b ? 0.5 : 0.0; }

/* One axis of the backward: lower/upper corners of both boxes, the gradient
 * reaching the clamped intersection extent (d_inter_ext) and enclosing extent
 * (d_enc_ext), accumulated into the corner gradients. */
static void axis_backward(double a0, double a1, double b0, double b1, double d_inter_ext,
                          double d_enc_ext, double *da0, double *da1, double *db0, double *db1) {
    double lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1; /* intersection */
    if (hi - lo >= 0) {
        *da1 += d_inter_ext * max_share(b1, a1); /* min(a1, b1): a1 wins when smaller */
        *db1 += d_inter_ext * max_share(a1, b1);
        *da0 -= d_inter_ext * max_share(a0, b0);
        *db0 -= d_inter_ext * max_share(b0, a0);
    }
    double elo = a0 < b0 ? a0 : b0, ehi = a1 > b1 ? a1 : b1; /* enclosing */
    if (ehi - elo >= 0) {
        *da1 += d_enc_ext * max_share(a1, b1);
        *db1 += d_enc_ext * max_share(b1, a1);
        *da0 -= d_enc_ext * max_share(b0, a0);
        *db0 -= d_enc_ext * max_share(a0, b0);
    }
}

/* Gradients of (1 - GIoU) for one pair, dloss = upstream gradient; dp, dt
 * receive d/d(cx, cy, w, h). */
static void giou_loss_backward_one(const float *pb, const float *tb, double dloss, double dp[4],
                                   double dt[4]) {
    corners ca = to_corners(pb), cb = to_corners(tb);
    double a[4] = {ca.x0, ca.y0, ca.x1, ca.y1}, b[4] = {cb.x0, cb.y0, cb.x1, cb.y1};
    double aw = a[2] - a[0], ah = a[3] - a[1], bw = b[2] - b[0], bh = b[3] - b[1];
    double iw = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
    double ih = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
    iw = iw < 0 ? 0 : iw;
    ih = ih < 0 ? 0 : ih;
    double cw = (a[2] > b[2] ? a[2] : b[2]) - (a[0] < b[0] ? a[0] : b[0]);
    double ch = (a[3] > b[3] ? a[3] : b[3]) - (a[1] < b[1] ? a[1] : b[1]);
    cw = cw < 0 ? 0 : cw;
    ch = ch < 0 ? 0 : ch;
    double I = iw * ih, U = aw * ah + bw * bh - I, E = cw * ch;
    /* loss = 1 - I/U + (E - U)/E = 2 - I/U - U/E. */
    double dI = -dloss / U;
    double dU = dloss * (I / (U * U) - 1.0 / E);
    double dE = dloss * U / (E * E);
    dI -= dU; /* U = area_a + area_b - I */
    double da[4] = {0}, db[4] = {0};
    /* area_a = (a1x - a0x)(a1y - a0y), same for b. */
    da[2] += dU * ah, da[0] -= dU * ah, da[3] += dU * aw, da[1] -= dU * aw;
    db[2] += dU * bh, db[0] -= dU * bh, db[3] += dU * bw, db[1] -= dU * bw;
    axis_backward(a[0], a[2], b[0], b[2], dI * ih, dE * ch, &da[0], &da[2], &db[0], &db[2]);
    axis_backward(a[1], a[3], b[1], b[3], dI * iw, dE * cw, &da[1], &da[3], &db[1], &db[3]);
    /* Corners (c - w/2, c + w/2) back to centre and size. */
    for (int k = 0; k < 2; k++) {
        dp[k] = da[k] + da[k + 2];
        dp[k + 2] = 0.5 * (da[k + 2] - da[k]);
        dt[k] = db[k] + db[k + 2];
        dt[k + 2] = 0.5 * (db[k + 2] - db[k]);
    }
}

static void giou_backward(xv_graph *g, xv_node *node) {
    xv_tensor *pred = node->in[0], *target = node->in[1];
    int64_t N = pred->shape[0];
    float *gp = pred->requires_grad ? xv_grad(g, pred) : NULL;
    float *gt = target->requires_grad ? xv_grad(g, target) : NULL;
    if ((pred->requires_grad && !gp) || (target->requires_grad && !gt)) return;
    for (int64_t n = 0; n < N; n++) {
        double dp[4], dt[4];
        giou_loss_backward_one(pred->data + 4 * n, target->data + 4 * n, node->out->grad[n], dp, dt);
        for (int k = 0; k < 4; k++) {
            if (gp) gp[4 * n + k] += (float)dp[k];
            if (gt) gt[4 * n + k] += (float)dt[k];
        }
    }
}

xv_tensor *xv_giou_loss(xv_graph *g, xv_tensor *pred, xv_tensor *target) {
    static const char op[] = "giou_loss";
    if (!xv_arg_f32(g, op, "pred", pred) || !xv_arg_f32(g, op, "target", target)) return NULL;
    char bp[64], bt[64];
    if (pred->ndim != 2 || pred->shape[1] != 4 || !xv_same_shape(pred, target))
        return xv_graph_fail(g, XV_ERR_SHAPE, "giou_loss: pred %s and target %s must both be [N, 4]",
                             xv_shape_str(pred, bp, sizeof bp), xv_shape_str(target, bt, sizeof bt));
    int64_t N = pred->shape[0];
    xv_tensor *out = xv_tensor_new(g, XV_F32, XV_SHAPE(N));
    if (!out) return NULL;
    /* Official rule: one degenerate box anywhere zeroes the whole term (no gradient). */
    for (int64_t n = 0; n < N; n++)
        if (degenerate(to_corners(pred->data + 4 * n)) || degenerate(to_corners(target->data + 4 * n))) {
            for (int64_t i = 0; i < N; i++) out->data[i] = 0.0f;
            return out;
        }
    for (int64_t n = 0; n < N; n++) out->data[n] = giou_loss_forward(pred->data + 4 * n, target->data + 4 * n);
    xv_tensor *in[2] = {pred, target};
    xv_record(g, op, out, giou_backward, in, 2);
    return out;
}
