/* Fresh weights for pretraining from scratch, as the official modules
 * initialise themselves when nothing is loaded:
 * - BERT (text and fusion encoders, MLM head): N(0, initializer_range)
 *   matrices and embeddings (the BERT config's key, 0.02 in config_bert.json),
 *   biases 0, LayerNorm 1/0, padding row 0;
 * - Swin: trunc_normal(std 0.02, cut at ±2) Linear weights and relative-
 *   position tables, biases 0, LayerNorm 1/0 — the cut at ±2 is 100 standard
 *   deviations, beyond any value the normal sampler draws, so these are the
 *   same N(0, 0.02) values;
 * - PyTorch's default init for the modules the official code builds without
 *   one: the patch-embedding Conv2d and the Linear layers of vision_proj,
 *   text_proj, itm_head and bbox_head get weight and bias ~ U(±1/sqrt(fan_in))
 *   (kaiming_uniform with a = sqrt(5)).
 * temp starts at the config's value. Deterministic for a seed whatever the
 * thread count. */
#ifndef XV_TRAIN_PRETRAIN_INIT_H
#define XV_TRAIN_PRETRAIN_INIT_H

#include "model/model.h"

xv_status xv_pretrain_init_weights(xv_model *m, uint64_t seed);

#endif
