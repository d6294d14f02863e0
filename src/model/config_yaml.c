/* The official task YAML (e.g. Pretrain_XVLM_base_4m.yaml, Retrieval_coco.yaml),
 * read with the project's one YAML reader (io/yaml_tree.h): only the top-level
 * keys that shape the model; everything else (data paths, optimiser settings)
 * belongs to other modules. */
#include <stdlib.h>

#include "core/error.h"
#include "io/yaml_tree.h"
#include "model/config.h"

/* Read the model keys of the parsed task YAML into *c (defaults filled). */
static xv_status read_model_keys(const char *path, const xv_yaml_node *root, xv_model_config *c) {
    bool clip = false, swin = false, roberta = false;
    XV_TRY(xv_yaml_get_bool(root, "use_clip_vit", &clip));
    if (clip) return xv_error(XV_ERR_UNSUPPORTED, "%s: use_clip_vit: only the Swin vision encoder is implemented", path);
    XV_TRY(xv_yaml_get_bool(root, "use_swin", &swin));
    if (!swin)
        return xv_error(XV_ERR_UNSUPPORTED, "%s: use_swin must be true (the DeiT/CLIP encoders are not implemented)",
                        path);
    XV_TRY(xv_yaml_get_bool(root, "use_roberta", &roberta));
    if (roberta) return xv_error(XV_ERR_UNSUPPORTED, "%s: use_roberta: only the BERT text encoder is implemented", path);
    const char *vrel = NULL, *trel = NULL;
    XV_TRY(xv_yaml_require(root, "vision_config", "the Swin config JSON"));
    XV_TRY(xv_yaml_require(root, "text_config", "the BERT config JSON"));
    XV_TRY(xv_yaml_get_string(root, "vision_config", &vrel));
    XV_TRY(xv_yaml_get_string(root, "text_config", &trel));
    char *vpath = NULL, *tpath = NULL;
    xv_status st = xv_yaml_find_file(path, vrel, &vpath);
    if (st == XV_OK) st = xv_yaml_find_file(path, trel, &tpath);
    if (st == XV_OK) st = xv_config_load_swin_json(vpath, &c->vision);
    if (st == XV_OK) st = xv_config_load_bert_json(tpath, &c->text);
    int image_res = 0;
    if (st == XV_OK) st = xv_yaml_require(root, "image_res", "an integer");
    if (st == XV_OK) st = xv_yaml_get_int(root, "image_res", 1, 65536, &image_res);
    if (st == XV_OK && image_res != c->vision.image_res)
        st = xv_error(XV_ERR_INVALID_ARG, "%s: image_res %d differs from %d in %s", path, image_res,
                      c->vision.image_res, vpath);
    if (st == XV_OK) st = xv_yaml_require(root, "patch_size", "an integer");
    if (st == XV_OK) st = xv_yaml_get_int(root, "patch_size", 1, 65536, &c->vision.region_stride);
    if (st == XV_OK) st = xv_yaml_get_int(root, "embed_dim", 1, 1 << 20, &c->embed_dim);
    double temp = c->temp;
    if (st == XV_OK) st = xv_yaml_get_double(root, "temp", -1e30, 1e30, &temp);
    c->temp = (float)temp;
    free(vpath);
    free(tpath);
    return st;
}

xv_status xv_config_load_yaml(const char *path, xv_model_config *out) {
    xv_yaml_node *root = NULL;
    XV_TRY(xv_yaml_load(path, &root));
    xv_model_config c;
    xv_config_defaults(&c);
    xv_status st = read_model_keys(path, root, &c);
    xv_yaml_free(root);
    if (st != XV_OK) return st;
    c.text.encoder_width = c.vision.vision_width; /* as the official builder does */
    st = xv_config_validate(&c);
    if (st != XV_OK) return xv_error_wrap(st, "%s", path);
    *out = c;
    return XV_OK;
}
