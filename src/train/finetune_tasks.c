/* The fine-tuning tasks, found by name (finetune.h, finetune_task.h). A new
 * task adds its line to the table. */
#include <stdio.h>
#include <string.h>

#include "train/finetune_task.h"

static const xv_finetune_task *const tasks[] = {&xv_ft_retrieval, &xv_ft_grounding, &xv_ft_vqa, &xv_ft_captioning,
                                                &xv_ft_captioning_scst, &xv_ft_nlvr, &xv_ft_nlvr_pretrain,
                                                &xv_ft_bbox_pretrain, &xv_ft_weak_grounding, NULL};

const xv_finetune_task *const *xv_finetune_tasks(void) { return tasks; }

const xv_finetune_task *xv_finetune_task_find(const char *name) {
    for (int i = 0; name && tasks[i]; i++)
        if (!strcmp(tasks[i]->name, name)) return tasks[i];
    return NULL;
}

const char *xv_finetune_task_names(void) {
    static char names[256];
    if (!names[0])
        for (int i = 0; tasks[i]; i++) {
            const size_t n = strlen(names);
            snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", tasks[i]->name);
        }
    return names;
}
