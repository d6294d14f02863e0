/* Named parameters: persistent tensors that outlive graph steps and carry
 * their official state_dict key. Data is either owned (malloc) or borrowed
 * (e.g. an mmapped, read-only safetensors file for inference). */
#ifndef XV_CORE_PARAMS_H
#define XV_CORE_PARAMS_H

#include "core/tensor.h"

typedef struct {
    xv_tensor **items;   /* unique parameters, in creation order */
    bool *owns_data;
    int n, cap;
    /* Extra names for a parameter (tied weights: the MLM decoder = word embeddings). */
    char **alias_names;
    xv_tensor **alias_targets;
    int n_alias, cap_alias;
} xv_params;

void xv_params_init(xv_params *p);
void xv_params_free(xv_params *p);
/* New zero-filled parameter named `name` (copied). NULL + xv_error on failure
 * (out of memory, or the name already exists). */
xv_tensor *xv_params_add(xv_params *p, const char *name, const int64_t *shape, int ndim);
/* Register another name for an existing parameter. */
xv_status xv_params_alias(xv_params *p, const char *alias, xv_tensor *target);
/* By name or alias; NULL if absent. */
xv_tensor *xv_params_find(const xv_params *p, const char *name);
/* Total number of values in unique parameters. */
int64_t xv_params_count(const xv_params *p);
/* Zero every parameter gradient that has been allocated. */
void xv_params_zero_grad(xv_params *p);
/* Make every parameter require (or not) gradient. */
void xv_params_set_requires_grad(xv_params *p, bool on);

#endif
