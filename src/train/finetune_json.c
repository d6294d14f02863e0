/* Helpers of the tasks with their own models and JSON lists (VQA,
 * captioning): reading a list file, joining an image root, a scratch path
 * per rank, writing the task model. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/jsonl.h"
#include "dist/dist.h"
#include "model/task_source.h"
#include "tasks/eval_data.h"
#include "train/finetune_task.h"

#define MAX_JSON_BYTES (1LL << 31)

xv_status xv_ft_read_json_list(const char *path, struct cJSON **out) {
    return xv_json_read_list(path, MAX_JSON_BYTES, out);
}

xv_status xv_ft_image_path(const xv_finetune_config *cfg, const char *root, const char *name, const char *file,
                           int entry, char **out) {
    const xv_fs_root images = {.root = root ? root : cfg->image_root, .allow_outside_root = cfg->allow_outside_root};
    xv_status st = xv_dataset_image_path(&images, name, out);
    return st == XV_OK ? XV_OK : xv_error(st, "%s: entry %d: %s", file, entry, xv_error_message());
}

xv_status xv_ft_write_task_model(const xv_ft *f, const xv_model_config *cfg, const char *dir) {
    char *vocab = xv_fs_join(f->o->init, "vocab.txt");
    xv_status st = vocab ? xv_task_model_write(dir, cfg, f->params, vocab) : xv_error(XV_ERR_NOMEM, "out of memory");
    free(vocab);
    return st;
}

char *xv_ft_scratch_path(const xv_ft *f, const char *name) {
    if (xv_dist_world() == 1) return xv_fs_join(f->o->output_dir, name);
    char own[256];
    snprintf(own, sizeof own, "rank%d.%s", xv_dist_rank(), name);
    return xv_fs_join(f->o->output_dir, own);
}

xv_status xv_ft_init_scratch(const xv_ft *f, char **out) {
    *out = NULL;
    if (!f->o->output_dir) return XV_OK;
    XV_TRY(xv_fs_mkdir_p(f->o->output_dir));
    if (!(*out = xv_ft_scratch_path(f, "init_weights.safetensors"))) return xv_error(XV_ERR_NOMEM, "out of memory");
    return XV_OK;
}
