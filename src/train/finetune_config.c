/* Reading the official Retrieval.yaml / Grounding_bbox.yaml keys (finetune.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/yaml_tree.h"
#include "train/finetune.h"

typedef struct {
    const char *path;
    const xv_yaml_node *root;
} ctx;

static xv_status type_error(const ctx *c, const char *key, const xv_yaml_node *n, const char *want) {
    return xv_error(XV_ERR_FORMAT, "%s:%d: \"%s\" must be %s (got %s)", c->path, n->line, key, want,
                    xv_yaml_kind_name(n->kind));
}

static xv_status get_int(const ctx *c, const xv_yaml_node *map, const char *key, int lo, int *out) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_INT) return type_error(c, key, n, "an integer");
    if (n->i < lo || n->i > 1000000000)
        return xv_error(XV_ERR_INVALID_ARG, "%s:%d: \"%s\" = %lld must be in [%d, 1e9]", c->path, n->line, key,
                        (long long)n->i, lo);
    *out = (int)n->i;
    return XV_OK;
}

static xv_status get_num(const ctx *c, const xv_yaml_node *map, const char *key, double lo, double hi,
                         double *out, bool *was_int) {
    const xv_yaml_node *n = xv_yaml_get(map, key);
    if (!n) return XV_OK;
    if (n->kind != XV_YAML_INT && n->kind != XV_YAML_FLOAT) return type_error(c, key, n, "a number");
    if (!(n->f >= lo && n->f <= hi))
        return xv_error(XV_ERR_INVALID_ARG, "%s:%d: \"%s\" = %g outside [%g, %g]", c->path, n->line, key, n->f, lo,
                        hi);
    *out = n->f;
    if (was_int) *was_int = n->kind == XV_YAML_INT;
    return XV_OK;
}

/* Relative paths are taken from the YAML file's directory. */
static xv_status resolve(const ctx *c, const char *rel, char **out) {
    const char *slash = strrchr(c->path, '/');
    size_t dir = rel[0] == '/' || !slash ? 0 : (size_t)(slash - c->path) + 1;
    char *s = malloc(dir + strlen(rel) + 1);
    if (!s) return xv_error(XV_ERR_NOMEM, "out of memory");
    memcpy(s, c->path, dir);
    strcpy(s + dir, rel);
    *out = s;
    return XV_OK;
}

/* A path, or a list of paths of which the first is used (the official
 * train_file is a list; test_file a string). */
static xv_status get_path(const ctx *c, const char *key, bool required, char **out) {
    const xv_yaml_node *n = xv_yaml_get(c->root, key);
    if (!n) return required ? xv_error(XV_ERR_FORMAT, "%s: \"%s\" is required", c->path, key) : XV_OK;
    if (n->kind == XV_YAML_SEQ && n->n >= 1) n = n->items[0];
    if (n->kind != XV_YAML_STRING) return type_error(c, key, n, "a path or a list of paths");
    return resolve(c, n->text, out);
}

static void note_unused(const ctx *c, FILE *notes) {
    static const char *const used[] = {"train_file", "test_file", "image_root", "image_res", "batch_size_train",
                                       "batch_size", "k_test", "max_words", "max_tokens", "optimizer",
                                       "schedular", "careful_hflip", NULL};
    if (!notes) return;
    for (int i = 0; i < c->root->n; i++) {
        int known = 0;
        for (int k = 0; used[k]; k++) known |= !strcmp(used[k], c->root->keys[i]);
        if (!known) fprintf(notes, "note: %s: key \"%s\" not used by this fine-tuning\n", c->path, c->root->keys[i]);
    }
}

xv_status xv_finetune_config_load(const char *path, xv_finetune_task task, xv_finetune_config *out, FILE *notes) {
    memset(out, 0, sizeof *out);
    out->task = task;
    out->batch_size = 20;
    out->k_test = 256;
    out->max_words = 30;
    out->max_tokens = 40;
    out->lr = 3e-5;
    out->weight_decay = 0.01;
    out->epochs = 10;
    out->warmup = 0.1;
    out->warmup_is_fraction = true;
    out->careful_hflip = true;
    xv_yaml_node *root = NULL;
    XV_TRY(xv_yaml_load(path, &root));
    ctx c = {path, root};
    xv_status st = get_path(&c, "train_file", true, &out->train_file);
    if (st == XV_OK) st = get_path(&c, "test_file", true, &out->test_file);
    if (st == XV_OK) st = get_path(&c, "image_root", false, &out->image_root);
    if (st == XV_OK) st = get_int(&c, root, "image_res", 1, &out->image_res);
    if (st == XV_OK)
        st = get_int(&c, root, task == XV_FINETUNE_RETRIEVAL ? "batch_size_train" : "batch_size", 2,
                     &out->batch_size);
    if (st == XV_OK) st = get_int(&c, root, "k_test", 1, &out->k_test);
    if (st == XV_OK) st = get_int(&c, root, "max_words", 1, &out->max_words);
    if (st == XV_OK) st = get_int(&c, root, "max_tokens", 2, &out->max_tokens);
    const xv_yaml_node *opt = xv_yaml_get(root, "optimizer"), *sch = xv_yaml_get(root, "schedular");
    if (st == XV_OK && opt && opt->kind != XV_YAML_MAP) st = type_error(&c, "optimizer", opt, "a mapping");
    if (st == XV_OK && sch && sch->kind != XV_YAML_MAP) st = type_error(&c, "schedular", sch, "a mapping");
    if (st == XV_OK) st = get_num(&c, opt, "lr", 0, 1, &out->lr, NULL);
    if (st == XV_OK) st = get_num(&c, opt, "weight_decay", 0, 1, &out->weight_decay, NULL);
    if (st == XV_OK) st = get_int(&c, sch, "epochs", 1, &out->epochs);
    bool warm_int = false;
    if (st == XV_OK && xv_yaml_get(sch, "num_warmup_steps")) {
        st = get_num(&c, sch, "num_warmup_steps", 0, 1e12, &out->warmup, &warm_int);
        out->warmup_is_fraction = !warm_int;
        if (st == XV_OK && !warm_int && out->warmup >= 1)
            st = xv_error(XV_ERR_INVALID_ARG, "%s: schedular.num_warmup_steps as a float is a fraction in [0, 1)",
                          path);
    }
    const xv_yaml_node *ch = xv_yaml_get(root, "careful_hflip");
    if (st == XV_OK && ch) {
        if (ch->kind != XV_YAML_BOOL) st = type_error(&c, "careful_hflip", ch, "true or false");
        else out->careful_hflip = ch->b;
    }
    if (st == XV_OK) note_unused(&c, notes);
    xv_yaml_free(root);
    if (st != XV_OK) xv_finetune_config_free(out);
    return st;
}

void xv_finetune_config_free(xv_finetune_config *c) {
    free(c->train_file);
    free(c->test_file);
    free(c->image_root);
    memset(c, 0, sizeof *c);
}
