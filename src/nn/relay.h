/* Inference relay: when a graph records nothing (no gradient, eval mode), a
 * stack of units (Swin blocks, BERT layers) runs unit by unit in the two
 * scratch graphs of the main graph (xv_graph_child), which take turns, so
 * activation memory is two units instead of the whole stack. A unit's input is the previous unit's output, living in the
 * other scratch graph; tensors of the main graph (masks, image tokens) and
 * parameters may be read directly. With recording on, every unit runs on the
 * main graph and the relay changes nothing. */
#ifndef XV_NN_RELAY_H
#define XV_NN_RELAY_H

#include "core/tensor.h"

typedef struct {
    xv_graph *main, *tmp[2];
    int turn;
} xv_relay;

/* false (error recorded in g) only when scratch graphs cannot be created. */
bool xv_relay_begin(xv_relay *r, xv_graph *g);
/* The graph the next unit runs on; *x is re-wrapped into it. */
xv_graph *xv_relay_next(xv_relay *r, xv_tensor **x);
/* Whether the unit that ran on cg succeeded (a scratch graph's error is moved
 * to the main graph). */
bool xv_relay_ok(xv_relay *r, xv_graph *cg, const xv_tensor *x);
/* x (produced on cg) as a tensor of the main graph: copied out of scratch. */
xv_tensor *xv_relay_keep(xv_relay *r, xv_graph *cg, xv_tensor *x);
void xv_relay_end(xv_relay *r);

#endif
