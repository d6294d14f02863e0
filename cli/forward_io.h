/* Shared pieces of `xvlm forward`: reading step inputs, writing outputs under
 * the golden data's names, and the task steps (NLVR2, text assignment,
 * Grad-CAM, weak grounding, box domain pretraining) beside the pretraining
 * steps of cmd_forward.c. */
#ifndef XV_CLI_FORWARD_IO_H
#define XV_CLI_FORWARD_IO_H

#include <stdint.h>

#include "io/safetensors.h"
#include "model/model.h"

/* Graph tensor of input `name` (F32, or I32 from any integer type); NULL
 * and XV_OK when absent and not required. */
xv_status xv_forward_input(const xv_st_file *in, xv_graph *g, const char *name, bool f32, bool required,
                           xv_tensor **out);
/* t (F32, or I32 written as I64) under prefix + name; nothing when t is NULL. */
xv_status xv_forward_put(xv_st_writer *w, const char *prefix, const char *name, const xv_tensor *t);
/* prefix + "grad." + name for every parameter (tied names repeated; zeros where none). */
xv_status xv_forward_put_grads(xv_st_writer *w, const char *prefix, const xv_params *p);

/* A step's outputs by name, written under prefix + name (NULL ones skipped). */
typedef struct {
    const char *name;
    const xv_tensor *t;
} xv_forward_named;
xv_status xv_forward_put_all(xv_st_writer *w, const char *prefix, const xv_forward_named *outs, size_t n);
/* The gradient activation t holds, under prefix + name (an error when none reached it). */
xv_status xv_forward_put_grad(xv_st_writer *w, const char *prefix, const char *name, const xv_tensor *t);
/* A fresh graph for one step: eval mode, recording when gradients are asked
 * for, every activation gradient kept (the layer gradients are outputs). */
xv_graph *xv_forward_step_graph(bool grads);

/* Runs every task step present in `in` for the parts m has (NLVR2 "nlvr.",
 * text assignment "ta.", Grad-CAM "gradcam." with block_num, weak grounding
 * "train.", box domain pretraining "bbox_pretrain.") and writes their
 * outputs; *steps gets how many ran. block_num < 0: Grad-CAM needs the input
 * gradcam.block_num. */
xv_status xv_forward_tasks(xv_model *m, const xv_st_file *in, bool grads, uint64_t seed, int block_num,
                           xv_st_writer *w, int *steps);

#endif
