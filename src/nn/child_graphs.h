/* What nn/ uses the child graphs of a graph for (core/tensor.h,
 * xv_graph_child): two scratch graphs of the inference relay (nn/relay.h),
 * then one per worker of an inference batch split (nn/batch_split.h). */
#ifndef XV_NN_CHILD_GRAPHS_H
#define XV_NN_CHILD_GRAPHS_H

#include "core/tensor.h"

#define XV_MAX_WORKERS 64
enum { XV_CHILD_RELAY0 = 0, XV_CHILD_RELAY1 = 1, XV_CHILD_WORKER0 = 2 };
_Static_assert(XV_CHILD_WORKER0 + XV_MAX_WORKERS <= XV_GRAPH_CHILDREN, "core/tensor.h has too few child slots");

#endif
