/* Fine-tuning for NLVR2 (the official NLVR.py with models/model_nlvr.py;
 * shared/docs/xvlm-nlvr-grounding.md §1.5-1.6), until the per-task
 * interface of train/finetune_task.h takes it in.
 *
 * Config (configs/NLVR.yaml keys, read by xv_finetune_config_load with
 * XV_FINETUNE_NLVR): train_file, val_file (dev), test_file, image_root,
 * image_res (must be the model's), batch_size, max_words,
 * optimizer{lr, weight_decay}, schedular{epochs, num_warmup_steps}.
 * Data: JSON lists of {images: [left, right], sentence, label "True"/"False"}.
 * Start: an NLVR2 model folder (cls_head), or a pretraining one converted as
 * NLVR.py's load_pretrained does (model/nlvr.h xv_nlvr_from_pretrained).
 * Training: both images of a pair drawn independently through
 * RandomResizedCrop(0.5..1) + flip + RandAug (no left/right swap), the text
 * pre_caption'd and tokenized without a cut, cross-entropy over cls_head;
 * AdamW, linear schedule with warmup, fp32, no clipping, the last partial
 * batch dropped. After every epoch: accuracy on dev and test (mean of
 * argmax == label; Resize test transform); model_best/ = the epoch of the
 * best dev accuracy, as NLVR.py keeps checkpoint_best.pth.
 * Output: log.jsonl (one line per epoch: epoch, train_loss, val_acc,
 * test_acc, lr), model_best/, model/ (the last epoch), result.json. */
#ifndef XV_TRAIN_FINETUNE_NLVR_H
#define XV_TRAIN_FINETUNE_NLVR_H

#include "train/finetune.h"

typedef struct {
    int64_t steps;
    double first_loss, last_loss;          /* mean loss of the first / last epoch */
    double val_before, test_before;        /* accuracy before training (NaN: not evaluated) */
    double val_after, test_after;          /* after the last epoch */
    int64_t best_epoch;                    /* by dev accuracy */
    double best_val, best_test;
    double seconds_train;
} xv_nlvr_finetune_result;

/* Uses o->config_path, init_dir, output_dir, seed, max_steps, eval_before,
 * progress and notes (resume is not offered yet: refused). */
xv_status xv_finetune_nlvr(const xv_finetune_opts *o, xv_nlvr_finetune_result *out);

#endif
