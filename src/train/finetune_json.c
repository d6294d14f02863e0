/* Helpers of the tasks with their own models and JSON lists (VQA,
 * captioning): reading a list file, joining an image root, a scratch path
 * per rank, writing the task model. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "dist/dist.h"
#include "model/task_source.h"
#include "train/finetune_task.h"

#define MAX_JSON_BYTES (1LL << 31)

xv_status xv_ft_read_json_list(const char *path, struct cJSON **out) {
    uint8_t *buf = NULL;
    size_t len = 0;
    *out = NULL;
    XV_TRY(xv_fs_read_file(path, MAX_JSON_BYTES, &buf, &len));
    *out = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    if (!*out || !cJSON_IsArray(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return xv_error(XV_ERR_FORMAT, "%s: expected a JSON list of entries", path);
    }
    return XV_OK;
}

char *xv_ft_under_root(const char *root, const char *rel) { return root ? xv_fs_join(root, rel) : strdup(rel); }

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
