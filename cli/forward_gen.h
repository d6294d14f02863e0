/* `xvlm forward` on the VQA and captioning models (forward_gen.c). */
#ifndef XV_CLI_FORWARD_GEN_H
#define XV_CLI_FORWARD_GEN_H

#include "io/safetensors.h"
#include "model/task_source.h"

/* VQA steps "train." (train.answer_ids present) and "eval." (eval.question_ids
 * present); k <= 0: config.json task_config.k_test of `dir`, else min(128,
 * answers). *steps gets how many ran. */
xv_status xv_forward_vqa(xv_vqa_model *m, const char *dir, const xv_st_file *in, bool grads, int k, xv_st_writer *w,
                         int *steps);
/* Captioning steps "train.", "pretrain.", "gen." (gen.prompt_ids present) and
 * "scst." (scst.forced_tokens; references from dir/config.json info.scst). */
xv_status xv_forward_captioning(xv_caption_model *m, const char *dir, const xv_st_file *in, bool grads,
                                xv_st_writer *w, int *steps);

#endif
