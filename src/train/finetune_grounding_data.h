/* The training data of both grounding tasks (finetune_grounding.c: boxes;
 * finetune_weak_grounding.c: images as labels): the expressions of every
 * train_file ({image, text, ref_id} with REFER, or boxes inline), read as
 * grounding_dataset does, and their images for the batches. */
#ifndef XV_TRAIN_FINETUNE_GROUNDING_DATA_H
#define XV_TRAIN_FINETUNE_GROUNDING_DATA_H

#include "tasks/eval_data.h"
#include "tasks/refer.h"
#include "train/finetune_task.h"

typedef struct {
    xv_refer refer; /* with refcoco_data: REFER(refcoco_data, 'refcoco+', 'unc'), boxes and splits */
    xv_grounding_set set;
    xv_ft_batch b;
} xv_ft_grounding_data;

/* Reads the train files into d and sets f->n (d->b is left empty when there
 * are fewer expressions than a batch: the loop refuses, naming the file). */
xv_status xv_ft_grounding_data_read(xv_ft *f, xv_ft_grounding_data *d);
void xv_ft_grounding_data_free(xv_ft_grounding_data *d);

/* The REFER index for an evaluation: d's when the task was set up, else read
 * into *own (the caller frees it with xv_refer_free); NULL without
 * refcoco_data. */
xv_status xv_ft_grounding_refer(const xv_ft *f, const xv_ft_grounding_data *d, xv_refer *own,
                                const xv_refer **refer);

#endif
