/* Model configuration: defaults, the project's config.json, the official
 * Swin/BERT JSON files, validation and serialisation. The official YAML
 * reader lives in config_yaml.c. */
#include "model/config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"

void xv_config_defaults(xv_model_config *c) {
    memset(c, 0, sizeof *c);
    xv_swin_config_defaults(&c->vision);
    xv_bert_config_defaults(&c->text);
    c->embed_dim = 0; /* 0 = no ITC projections (models built without them) */
    c->temp = 0.07f;
    c->temp_min = 0.001f;
    c->temp_max = 0.5f;
    c->head_ln_eps = 1e-5f;
}

/* ---- cJSON accessors with errors naming file and key ---- */

/* A whole number within ±1e9 (what an int config value may be). */
static bool is_config_int(const cJSON *it) {
    return cJSON_IsNumber(it) && isfinite(it->valuedouble) && it->valuedouble == floor(it->valuedouble) &&
           fabs(it->valuedouble) <= 1e9;
}

/* The number under `key`: *out untouched when the key is absent and not
 * required; integers must be whole and within ±1e9. */
static xv_status get_number(const cJSON *obj, const char *key, const char *where, bool required, bool integer,
                            double *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *what = integer ? "an integer" : "a finite number";
    if (!it) return required ? xv_error(XV_ERR_MISSING, "%s: key \"%s\" is missing (%s)", where, key, what) : XV_OK;
    if (integer ? !is_config_int(it) : !(cJSON_IsNumber(it) && isfinite(it->valuedouble)))
        return xv_error(XV_ERR_FORMAT, "%s: \"%s\" must be %s", where, key, what);
    *out = it->valuedouble;
    return XV_OK;
}

static xv_status get_int(const cJSON *obj, const char *key, const char *where, bool required, int *out) {
    double v = *out;
    XV_TRY(get_number(obj, key, where, required, true, &v));
    *out = (int)v;
    return XV_OK;
}

static xv_status get_float(const cJSON *obj, const char *key, const char *where, bool required, float *out) {
    double v = *out;
    XV_TRY(get_number(obj, key, where, required, false, &v));
    *out = (float)v;
    return XV_OK;
}

/* The scalar keys of a config object, one row each: read in table order into
 * the struct at `base`. */
typedef enum { FIELD_INT, FIELD_INT_REQUIRED, FIELD_FLOAT } field_kind;
typedef struct {
    const char *key;
    field_kind kind;
    size_t offset; /* of the int or float member */
} config_field;

static xv_status get_fields(const cJSON *obj, const char *where, const config_field *fields, size_t n, void *base) {
    for (size_t i = 0; i < n; i++) {
        const config_field *f = &fields[i];
        char *field = (char *)base + f->offset;
        XV_TRY(f->kind == FIELD_FLOAT ? get_float(obj, f->key, where, false, (float *)field)
                                      : get_int(obj, f->key, where, f->kind == FIELD_INT_REQUIRED, (int *)field));
    }
    return XV_OK;
}

static xv_status get_int_list(const cJSON *obj, const char *key, const char *where, int *out, int *n) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return xv_error(XV_ERR_MISSING, "%s: key \"%s\" is missing (a list of integers)", where, key);
    if (!cJSON_IsArray(it)) return xv_error(XV_ERR_FORMAT, "%s: \"%s\" must be a list of integers", where, key);
    int k = cJSON_GetArraySize(it);
    if (k < 1 || k > XV_SWIN_MAX_STAGES)
        return xv_error(XV_ERR_FORMAT, "%s: \"%s\" has %d entries (expected 1..%d)", where, key, k,
                        XV_SWIN_MAX_STAGES);
    for (int i = 0; i < k; i++) {
        const cJSON *e = cJSON_GetArrayItem(it, i);
        if (!is_config_int(e))
            return xv_error(XV_ERR_FORMAT, "%s: \"%s\"[%d] must be an integer", where, key, i);
        out[i] = (int)e->valuedouble;
    }
    *n = k;
    return XV_OK;
}

/* A boolean feature the implementation does not have: refuse it when set to `bad`. */
static xv_status refuse_bool(const cJSON *obj, const char *key, const char *where, bool bad, const char *why) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (it && cJSON_IsBool(it) && (cJSON_IsTrue(it) ? true : false) == bad)
        return xv_error(XV_ERR_UNSUPPORTED, "%s: \"%s\": %s is not supported (%s)", where, key,
                        bad ? "true" : "false", why);
    return XV_OK;
}

/* Keys of an official Swin JSON (also the `vision` object of config.json). */
static xv_status parse_swin(const cJSON *o, const char *where, xv_swin_config *v) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "swin") != 0))
        return xv_error(XV_ERR_UNSUPPORTED, "%s: vision \"type\" %s: only \"swin\" is implemented", where,
                        cJSON_IsString(type) ? type->valuestring : "(not a string)");
    const cJSON *ape = cJSON_GetObjectItemCaseSensitive(o, "ape");
    if (ape && !cJSON_IsBool(ape)) return xv_error(XV_ERR_FORMAT, "%s: \"ape\" must be true or false", where);
    v->ape = cJSON_IsTrue(ape);
    const cJSON *ape_init = cJSON_GetObjectItemCaseSensitive(o, "ape_init");
    if (ape_init) {
        bool sincos = cJSON_IsString(ape_init) && !strcmp(ape_init->valuestring, "sincos");
        if (!sincos && !(cJSON_IsString(ape_init) && !strcmp(ape_init->valuestring, "normal")))
            return xv_error(XV_ERR_FORMAT, "%s: \"ape_init\" must be \"normal\" or \"sincos\"", where);
        if (sincos && !v->ape) return xv_error(XV_ERR_FORMAT, "%s: \"ape_init\" \"sincos\" needs \"ape\": true", where);
        v->ape_sincos = sincos;
    }
    XV_TRY(refuse_bool(o, "patch_norm", where, false, "X-VLM always normalises patches"));
    XV_TRY(refuse_bool(o, "qkv_bias", where, false, "X-VLM always has q/k/v biases"));
    static const config_field fields[] = {
        {"image_res", FIELD_INT_REQUIRED, offsetof(xv_swin_config, image_res)},
        {"window_size", FIELD_INT_REQUIRED, offsetof(xv_swin_config, window)},
        {"embed_dim", FIELD_INT_REQUIRED, offsetof(xv_swin_config, embed_dim)},
        {"vision_width", FIELD_INT_REQUIRED, offsetof(xv_swin_config, vision_width)},
        {"swin_patch_size", FIELD_INT, offsetof(xv_swin_config, patch)},
        {"in_chans", FIELD_INT, offsetof(xv_swin_config, in_chans)},
        {"patch_size", FIELD_INT, offsetof(xv_swin_config, region_stride)},
        {"mlp_ratio", FIELD_FLOAT, offsetof(xv_swin_config, mlp_ratio)},
        {"drop_path_rate", FIELD_FLOAT, offsetof(xv_swin_config, drop_path_rate)},
        {"layer_norm_eps", FIELD_FLOAT, offsetof(xv_swin_config, ln_eps)},
    };
    XV_TRY(get_fields(o, where, fields, sizeof fields / sizeof fields[0], v));
    int nd = 0, nh = 0;
    XV_TRY(get_int_list(o, "depths", where, v->depths, &nd));
    XV_TRY(get_int_list(o, "num_heads", where, v->heads, &nh));
    if (nd != nh)
        return xv_error(XV_ERR_FORMAT, "%s: \"depths\" has %d stages but \"num_heads\" has %d", where, nd, nh);
    v->n_stages = nd;
    return XV_OK;
}

/* Keys of an official BERT JSON (also the `text` object of config.json). */
static xv_status parse_bert(const cJSON *o, const char *where, xv_bert_config *t) {
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu") != 0))
        return xv_error(XV_ERR_UNSUPPORTED, "%s: \"hidden_act\" must be \"gelu\" (exact erf GELU)", where);
    const cJSON *pe = cJSON_GetObjectItemCaseSensitive(o, "position_embedding_type");
    if (pe && (!cJSON_IsString(pe) || strcmp(pe->valuestring, "absolute") != 0))
        return xv_error(XV_ERR_UNSUPPORTED, "%s: \"position_embedding_type\" must be \"absolute\"", where);
    static const config_field fields[] = {
        {"hidden_size", FIELD_INT, offsetof(xv_bert_config, hidden)},
        {"num_hidden_layers", FIELD_INT, offsetof(xv_bert_config, layers)},
        {"num_attention_heads", FIELD_INT, offsetof(xv_bert_config, heads)},
        {"intermediate_size", FIELD_INT, offsetof(xv_bert_config, intermediate)},
        {"vocab_size", FIELD_INT, offsetof(xv_bert_config, vocab)},
        {"max_position_embeddings", FIELD_INT, offsetof(xv_bert_config, max_positions)},
        {"type_vocab_size", FIELD_INT, offsetof(xv_bert_config, type_vocab)},
        {"fusion_layer", FIELD_INT_REQUIRED, offsetof(xv_bert_config, fusion_layer)},
        {"encoder_width", FIELD_INT, offsetof(xv_bert_config, encoder_width)},
        {"pad_token_id", FIELD_INT, offsetof(xv_bert_config, pad_id)},
        {"layer_norm_eps", FIELD_FLOAT, offsetof(xv_bert_config, ln_eps)},
        {"hidden_dropout_prob", FIELD_FLOAT, offsetof(xv_bert_config, hidden_dropout)},
        {"attention_probs_dropout_prob", FIELD_FLOAT, offsetof(xv_bert_config, attn_dropout)},
        {"initializer_range", FIELD_FLOAT, offsetof(xv_bert_config, init_range)},
    };
    return get_fields(o, where, fields, sizeof fields / sizeof fields[0], t);
}

/* Configs are tiny; anything over 16 MiB is refused. */
static char *read_text_file(const char *path, xv_status *st) {
    uint8_t *text = NULL;
    size_t len = 0;
    *st = xv_fs_read_file(path, INT64_C(16) << 20, &text, &len);
    return (char *)text;
}

static cJSON *parse_json_file(const char *path, xv_status *st) {
    char *text = read_text_file(path, st);
    if (!text) return NULL;
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at ? (long)(at - text) : -1;
        *st = xv_error(XV_ERR_FORMAT, "%s: invalid JSON near byte %ld", path, off);
    } else if (!cJSON_IsObject(root)) {
        *st = xv_error(XV_ERR_FORMAT, "%s: expected a JSON object at the top level", path);
        cJSON_Delete(root);
        root = NULL;
    }
    free(text);
    return root;
}

/* An official Swin JSON (into swin) or BERT JSON (into bert): one of the two is given. */
static xv_status load_official_json(const char *path, xv_swin_config *swin, xv_bert_config *bert) {
    xv_status st;
    cJSON *root = parse_json_file(path, &st);
    if (root) st = swin ? parse_swin(root, path, swin) : parse_bert(root, path, bert);
    cJSON_Delete(root);
    return st;
}

xv_status xv_config_load_swin_json(const char *path, xv_swin_config *out) {
    return load_official_json(path, out, NULL);
}

xv_status xv_config_load_bert_json(const char *path, xv_bert_config *out) {
    return load_official_json(path, NULL, out);
}

static xv_status parse_model_json(const cJSON *root, const char *label, xv_model_config *c) {
    char where[512];
    const cJSON *vis = cJSON_GetObjectItemCaseSensitive(root, "vision");
    const cJSON *txt = cJSON_GetObjectItemCaseSensitive(root, "text");
    if (!cJSON_IsObject(vis))
        return xv_error(XV_ERR_MISSING, "%s: object \"vision\" (Swin settings) is missing", label);
    if (!cJSON_IsObject(txt))
        return xv_error(XV_ERR_MISSING, "%s: object \"text\" (BERT settings) is missing", label);
    snprintf(where, sizeof where, "%s: vision", label);
    XV_TRY(parse_swin(vis, where, &c->vision));
    snprintf(where, sizeof where, "%s: text", label);
    XV_TRY(parse_bert(txt, where, &c->text));
    XV_TRY(get_int(root, "embed_dim", label, false, &c->embed_dim));
    XV_TRY(get_float(root, "temp", label, false, &c->temp));
    XV_TRY(get_float(root, "head_layer_norm_eps", label, false, &c->head_ln_eps));
    const cJSON *clamp = cJSON_GetObjectItemCaseSensitive(root, "temp_clamp");
    if (clamp) {
        if (!cJSON_IsArray(clamp) || cJSON_GetArraySize(clamp) != 2 ||
            !cJSON_IsNumber(cJSON_GetArrayItem(clamp, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(clamp, 1)))
            return xv_error(XV_ERR_FORMAT, "%s: \"temp_clamp\" must be [min, max]", label);
        c->temp_min = (float)cJSON_GetArrayItem(clamp, 0)->valuedouble;
        c->temp_max = (float)cJSON_GetArrayItem(clamp, 1)->valuedouble;
    }
    return XV_OK;
}

xv_status xv_config_parse_json(const char *text, const char *label, xv_model_config *out) {
    xv_model_config c;
    xv_config_defaults(&c);
    cJSON *root = cJSON_Parse(text);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return xv_error(XV_ERR_FORMAT, "%s: not a JSON object", label);
    }
    xv_status st = parse_model_json(root, label, &c);
    cJSON_Delete(root);
    if (st != XV_OK) return st;
    /* The official builder overwrites encoder_width with the vision width. */
    c.text.encoder_width = c.vision.vision_width;
    st = xv_config_validate(&c);
    if (st != XV_OK) return xv_error_wrap(st, "%s", label);
    *out = c;
    return XV_OK;
}

xv_status xv_config_load_yaml(const char *path, xv_model_config *out); /* config_yaml.c */

xv_status xv_config_load(const char *path, xv_model_config *out) {
    size_t n = strlen(path);
    if ((n > 5 && !strcmp(path + n - 5, ".yaml")) || (n > 4 && !strcmp(path + n - 4, ".yml")))
        return xv_config_load_yaml(path, out);
    xv_status st;
    char *text = read_text_file(path, &st);
    if (!text) return st;
    st = xv_config_parse_json(text, path, out);
    free(text);
    return st;
}

/* ---- validation ---- */

int xv_config_num_patches(const xv_model_config *c) {
    int r = (c->vision.image_res / c->vision.patch) >> (c->vision.n_stages - 1);
    return r * r;
}

xv_status xv_config_validate(const xv_model_config *c) {
    XV_TRY(xv_swin_config_validate(&c->vision));
    XV_TRY(xv_bert_config_validate(&c->text));
    if (c->text.encoder_width != c->vision.vision_width)
        return xv_error(XV_ERR_INVALID_ARG, "text: encoder_width %d differs from vision_width %d",
                        c->text.encoder_width, c->vision.vision_width);
    if (c->embed_dim < 0) return xv_error(XV_ERR_INVALID_ARG, "embed_dim %d must be >= 0", c->embed_dim);
    if (!(c->temp > 0)) return xv_error(XV_ERR_INVALID_ARG, "temp %g must be > 0", c->temp);
    if (!(c->temp_min > 0 && c->temp_min <= c->temp_max))
        return xv_error(XV_ERR_INVALID_ARG, "temp_clamp [%g, %g] must satisfy 0 < min <= max", c->temp_min,
                        c->temp_max);
    if (!(c->head_ln_eps > 0)) return xv_error(XV_ERR_INVALID_ARG, "head_layer_norm_eps must be > 0");
    return XV_OK;
}

/* ---- serialisation ---- */

/* Adds `item` under `key`; false (and `item` freed) when either is missing:
 * every addition is checked, so a shortage of memory never writes a config
 * with keys left out. */
static bool add_item(cJSON *obj, const char *key, cJSON *item) {
    if (item && cJSON_AddItemToObject(obj, key, item)) return true;
    cJSON_Delete(item);
    return false;
}

static bool append(cJSON *arr, cJSON *item) {
    if (item && cJSON_AddItemToArray(arr, item)) return true;
    cJSON_Delete(item);
    return false;
}

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        if (!append(a, cJSON_CreateNumber(v[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

char *xv_config_to_json(const xv_model_config *c) {
    cJSON *root = cJSON_CreateObject();
    cJSON *v = cJSON_AddObjectToObject(root, "vision");
    cJSON *t = cJSON_AddObjectToObject(root, "text");
    bool ok = v && t;
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    const xv_swin_config *s = &c->vision;
    ok = ok && cJSON_AddStringToObject(v, "type", "swin");
    ok = ok && cJSON_AddNumberToObject(v, "image_res", s->image_res);
    ok = ok && cJSON_AddNumberToObject(v, "swin_patch_size", s->patch);
    ok = ok && cJSON_AddNumberToObject(v, "patch_size", s->region_stride);
    ok = ok && cJSON_AddNumberToObject(v, "in_chans", s->in_chans);
    ok = ok && cJSON_AddNumberToObject(v, "embed_dim", s->embed_dim);
    ok = ok && add_item(v, "depths", int_array(s->depths, s->n_stages));
    ok = ok && add_item(v, "num_heads", int_array(s->heads, s->n_stages));
    ok = ok && cJSON_AddNumberToObject(v, "window_size", s->window);
    ok = ok && cJSON_AddNumberToObject(v, "mlp_ratio", s->mlp_ratio);
    ok = ok && cJSON_AddNumberToObject(v, "drop_path_rate", s->drop_path_rate);
    ok = ok && cJSON_AddNumberToObject(v, "layer_norm_eps", s->ln_eps);
    ok = ok && cJSON_AddNumberToObject(v, "vision_width", s->vision_width);
    if (s->ape) ok = ok && cJSON_AddBoolToObject(v, "ape", true); /* absent = false, as X-VLM builds it */
    if (s->ape_sincos) ok = ok && cJSON_AddStringToObject(v, "ape_init", "sincos");
    const xv_bert_config *b = &c->text;
    ok = ok && cJSON_AddNumberToObject(t, "hidden_size", b->hidden);
    ok = ok && cJSON_AddNumberToObject(t, "num_hidden_layers", b->layers);
    ok = ok && cJSON_AddNumberToObject(t, "num_attention_heads", b->heads);
    ok = ok && cJSON_AddNumberToObject(t, "intermediate_size", b->intermediate);
    ok = ok && cJSON_AddNumberToObject(t, "vocab_size", b->vocab);
    ok = ok && cJSON_AddNumberToObject(t, "max_position_embeddings", b->max_positions);
    ok = ok && cJSON_AddNumberToObject(t, "type_vocab_size", b->type_vocab);
    ok = ok && cJSON_AddNumberToObject(t, "fusion_layer", b->fusion_layer);
    ok = ok && cJSON_AddNumberToObject(t, "encoder_width", b->encoder_width);
    ok = ok && cJSON_AddNumberToObject(t, "pad_token_id", b->pad_id);
    ok = ok && cJSON_AddNumberToObject(t, "layer_norm_eps", b->ln_eps);
    ok = ok && cJSON_AddNumberToObject(t, "hidden_dropout_prob", b->hidden_dropout);
    ok = ok && cJSON_AddNumberToObject(t, "attention_probs_dropout_prob", b->attn_dropout);
    ok = ok && cJSON_AddNumberToObject(t, "initializer_range", b->init_range);
    ok = ok && cJSON_AddStringToObject(t, "hidden_act", "gelu");
    ok = ok && cJSON_AddNumberToObject(root, "embed_dim", c->embed_dim);
    ok = ok && cJSON_AddNumberToObject(root, "temp", c->temp);
    cJSON *clamp = cJSON_AddArrayToObject(root, "temp_clamp");
    ok = ok && clamp && append(clamp, cJSON_CreateNumber(c->temp_min)) && append(clamp, cJSON_CreateNumber(c->temp_max));
    ok = ok && cJSON_AddNumberToObject(root, "head_layer_norm_eps", c->head_ln_eps);
    char *out = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return out;
}
