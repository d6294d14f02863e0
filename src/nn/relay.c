#include "nn/relay.h"

#include <string.h>

#include "nn/child_graphs.h"

bool xv_relay_begin(xv_relay *r, xv_graph *g) {
    memset(r, 0, sizeof *r);
    r->main = g;
    if (xv_graph_grad_enabled(g) || xv_graph_training(g)) return true;
    r->tmp[0] = xv_graph_child(g, XV_CHILD_RELAY0);
    r->tmp[1] = xv_graph_child(g, XV_CHILD_RELAY1);
    if (!r->tmp[0] || !r->tmp[1]) {
        r->tmp[0] = r->tmp[1] = NULL;
        xv_graph_fail(g, XV_ERR_NOMEM, "out of memory creating scratch graphs");
        return false;
    }
    return true;
}

xv_graph *xv_relay_next(xv_relay *r, xv_tensor **x) {
    if (!r->tmp[0] || !*x) return r->main;
    xv_graph *t = r->tmp[r->turn];
    r->turn ^= 1;
    xv_graph_reset(t); /* it held the unit before the previous one */
    *x = xv_tensor_wrap_f32(t, (*x)->data, (*x)->shape, (*x)->ndim);
    return t;
}

bool xv_relay_ok(xv_relay *r, xv_graph *cg, const xv_tensor *x) {
    if (cg != r->main && xv_graph_status(cg) != XV_OK) {
        xv_status st = xv_graph_status(cg); /* also sets xv_error_message() to its message */
        xv_graph_fail(r->main, st, "%s", xv_error_message());
        return false;
    }
    return x != NULL && xv_graph_status(r->main) == XV_OK;
}

xv_tensor *xv_relay_keep(xv_relay *r, xv_graph *cg, xv_tensor *x) {
    if (cg == r->main || !x) return x;
    xv_tensor *y = xv_tensor_new(r->main, XV_F32, x->shape, x->ndim);
    if (y) memcpy(y->data, x->data, sizeof(float) * (size_t)x->numel);
    return y;
}

void xv_relay_end(xv_relay *r) {
    /* The scratch graphs belong to the main graph, which keeps their memory
     * for the next relay; only their errors and tensors are dropped. */
    if (r->tmp[0]) xv_graph_reset(r->tmp[0]);
    if (r->tmp[1]) xv_graph_reset(r->tmp[1]);
    r->tmp[0] = r->tmp[1] = NULL;
}
