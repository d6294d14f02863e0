/* Helpers of the tasks with their own models and JSON lists (VQA,
 * captioning): reading a list file, joining an image root, writing the
 * task model. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
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

xv_status xv_ft_init_scratch(const xv_ft *f, char **out) {
    *out = NULL;
    if (!f->o->output_dir) return XV_OK;
    XV_TRY(xv_fs_mkdir_p(f->o->output_dir));
    if (!(*out = xv_fs_join(f->o->output_dir, "init_weights.safetensors"))) return xv_error(XV_ERR_NOMEM, "out of memory");
    return XV_OK;
}
