/* Parity of NLVR2 and its text-assignment domain pretraining with the official
 * code (shared/fixtures/nlvr): the fixture weights through the normal model
 * loader (paired layout, shared cross-attention key/value), one NLVR step and
 * one text-assignment step forward and backward, every output and gradient
 * compared by name (golden.h gives the tolerance rule); then the official
 * pretraining -> NLVR renaming against conversion.json key for key, and the
 * converted weights against the pretraining tensors they came from. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "model/nlvr.h"

static void nlvr_step(xv_model *m, const xv_st_file *in, const xv_st_file *ref) {
    xv_graph *g = xv_graph_new(0);
    xv_nlvr_batch b = {
        .images = golden_input(g, in, "nlvr.images", true),
        .text_ids = golden_input(g, in, "nlvr.text_ids", false),
        .text_atts = golden_input(g, in, "nlvr.text_atts", false),
        .targets = golden_input(g, in, "nlvr.targets", false),
    };
    xv_nlvr_out o;
    CHECK_OK(xv_nlvr_forward(g, m, &b, &o));
    xv_params_zero_grad(&m->params);
    if (o.loss) CHECK_OK(xv_backward(g, o.loss));
    if (xv_graph_status(g) == XV_OK && o.loss) {
        golden_section fwd = {.section = "nlvr forward"}, bwd = {.section = "nlvr gradients"};
        golden_tensor(&fwd, ref, "nlvr.vision_embeds", o.vision_embeds);
        golden_layers(&fwd, ref, "nlvr.", o.text_embedding_output, o.layer_out, m->cfg.text.layers, false);
        golden_tensor(&fwd, ref, "nlvr.cross_cls", o.cross_cls);
        golden_tensor(&fwd, ref, "nlvr.logits", o.logits);
        golden_tensor(&fwd, ref, "nlvr.loss", o.loss);
        golden_tensor(&fwd, ref, "nlvr.pred_class", o.pred_class);
        const xv_st_tensor *acc = xv_st_find(ref, "nlvr.accuracy");
        float want = 0;
        if (acc) CHECK_OK(xv_st_read_f32(ref, acc, &want));
        CHECK(acc && o.accuracy->data[0] == want, "nlvr.accuracy %g, reference %g (exact)", o.accuracy->data[0], want);
        golden_layers(&bwd, ref, "nlvr.", o.text_embedding_output, o.layer_out, m->cfg.text.layers, true);
        golden_param_grads(&bwd, ref, "nlvr.", &m->params);
        golden_report(&fwd);
        golden_report(&bwd);
        /* Every reference tensor of the step (accuracy checked above). */
        int n = fwd.compared + bwd.compared + 1;
        CHECK(n == golden_count(ref, "nlvr."), "compared %d of %d nlvr.* tensors", n, golden_count(ref, "nlvr."));
    }
    xv_graph_free(g);
}

static void ta_step(xv_model *m, const xv_st_file *in, const xv_st_file *ref) {
    xv_graph *g = xv_graph_new(0);
    xv_ta_batch b = {
        .images = golden_input(g, in, "nlvr.images", true), /* the same 2B images */
        .text_ids = golden_input(g, in, "ta.text_ids", false),
        .text_atts = golden_input(g, in, "ta.text_atts", false),
        .left_idx = golden_input(g, in, "ta.left_idx", false),
        .right_idx = golden_input(g, in, "ta.right_idx", false),
        .labels = golden_input(g, in, "ta.labels", false),
    };
    xv_ta_out o;
    CHECK_OK(xv_ta_forward(g, m, &b, &o));
    xv_params_zero_grad(&m->params);
    if (o.loss) CHECK_OK(xv_backward(g, o.loss));
    if (xv_graph_status(g) == XV_OK && o.loss) {
        golden_section fwd = {.section = "text assignment forward"}, bwd = {.section = "text assignment gradients"};
        golden_tensor(&fwd, ref, "ta.image_feat", o.image_feat);
        golden_tensor(&fwd, ref, "ta.sim", o.sim);
        golden_tensor(&fwd, ref, "ta.weights", o.weights);
        golden_layers(&fwd, ref, "ta.", o.text_embedding_output, o.layer_out, m->cfg.text.layers, false);
        golden_tensor(&fwd, ref, "ta.cross_cls", o.cross_cls);
        golden_tensor(&fwd, ref, "ta.logits", o.logits);
        golden_tensor(&fwd, ref, "ta.loss", o.loss);
        golden_layers(&bwd, ref, "ta.", o.text_embedding_output, o.layer_out, m->cfg.text.layers, true);
        golden_param_grads(&bwd, ref, "ta.", &m->params);
        golden_report(&fwd);
        golden_report(&bwd);
        int n = fwd.compared + bwd.compared;
        CHECK(n == golden_count(ref, "ta."), "compared %d of %d ta.* tensors", n, golden_count(ref, "ta."));
    }
    xv_graph_free(g);
}

/* conversion.json pretrain_to_nlvr: the renaming of every source key, which
 * target key it fills, what is missing and what is left over. */
static void conversion_map(const char *fx, int fusion_layer) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/nlvr", fx);
    cJSON *root = golden_json(dir, "conversion.json");
    cJSON *conv = cJSON_GetObjectItem(root, "pretrain_to_nlvr");
    CHECK(conv != NULL, "%s/conversion.json: no pretrain_to_nlvr", dir);
    if (!conv) goto done;
    cJSON *sources = cJSON_GetObjectItem(conv, "source_keys"), *targets = cJSON_GetObjectItem(conv, "target_keys");
    cJSON *loaded = cJSON_GetObjectItem(conv, "loaded_from"), *unexpected = cJSON_GetObjectItem(conv, "unexpected_after_renaming");
    cJSON *missing = cJSON_GetObjectItem(conv, "missing_in_target"), *dropped = cJSON_GetObjectItem(conv, "source_keys_dropped_by_loader");
    cJSON *mine = cJSON_CreateObject(); /* target -> source by xv_nlvr_rename */
    int n_unexpected = 0, agree = 0;
    cJSON *src;
    cJSON_ArrayForEach(src, sources) {
        bool was_dropped = false;
        cJSON *d;
        cJSON_ArrayForEach(d, dropped) was_dropped |= !strcmp(d->valuestring, src->string);
        if (was_dropped) continue; /* the generic vision step deletes these buffers first */
        char names[2][256];
        int k = xv_nlvr_rename(src->string, fusion_layer, names);
        CHECK(k >= 1, "%s: not renamed", src->string);
        for (int j = 0; j < k; j++) {
            if (cJSON_GetObjectItem(targets, names[j])) {
                cJSON_AddStringToObject(mine, names[j], src->string);
                continue;
            }
            bool listed = false;
            cJSON *u;
            cJSON_ArrayForEach(u, unexpected) listed |= !strcmp(u->valuestring, names[j]);
            CHECK(listed, "%s -> %s: not a target key and not listed as unexpected", src->string, names[j]);
            n_unexpected++;
        }
    }
    CHECK(n_unexpected == cJSON_GetArraySize(unexpected), "%d unexpected keys, official %d", n_unexpected,
          cJSON_GetArraySize(unexpected));
    cJSON *want;
    cJSON_ArrayForEach(want, loaded) {
        cJSON *got = cJSON_GetObjectItem(mine, want->string);
        bool ok = got && !strcmp(got->valuestring, want->valuestring);
        CHECK(ok, "%s: filled from %s, official %s", want->string, got ? got->valuestring : "(nothing)",
              want->valuestring);
        agree += ok;
    }
    CHECK(cJSON_GetArraySize(mine) == cJSON_GetArraySize(loaded), "%d target keys filled, official %d",
          cJSON_GetArraySize(mine), cJSON_GetArraySize(loaded));
    cJSON *t;
    int n_missing = 0;
    cJSON_ArrayForEach(t, targets) {
        if (cJSON_GetObjectItem(mine, t->string)) continue;
        bool listed = false;
        cJSON *mm;
        cJSON_ArrayForEach(mm, missing) listed |= !strcmp(mm->valuestring, t->string);
        CHECK(listed, "%s: not filled and not listed as missing", t->string);
        n_missing++;
    }
    CHECK(n_missing == cJSON_GetArraySize(missing), "%d missing, official %d", n_missing, cJSON_GetArraySize(missing));
    printf("conversion pretrain_to_nlvr: %d of %d target keys filled from the official source key, %d unexpected, "
           "%d missing\n",
           agree, cJSON_GetArraySize(loaded), n_unexpected, n_missing);
    cJSON_Delete(mine);
done:
    cJSON_Delete(root);
}

/* The converted model holds, for every parameter, the tensor of its source
 * key in tiny/weights.safetensors (the pretraining model the fixture starts
 * from); cls_head / ta_head keep their initial values. */
static void conversion_values(const char *fx, const xv_model *nlvr) {
    char path[1200];
    snprintf(path, sizeof path, "%s/tiny/weights.safetensors", fx);
    xv_model *m = NULL;
    CHECK_OK(xv_model_create(&nlvr->cfg, &nlvr->parts, &m));
    if (!m) return;
    CHECK_OK(xv_model_init_random(m, 7));
    float head0 = m->cls_head.fc0.w->data[0];
    int loaded = 0;
    CHECK_OK(xv_nlvr_load_pretrained(m, path, &loaded));
    xv_st_file *src = NULL;
    CHECK_OK(xv_st_open(path, &src));
    int checked = 0;
    const int F = m->cfg.text.fusion_layer;
    for (int i = 0; src && i < m->params.n; i++) {
        const xv_tensor *t = m->params.items[i];
        if (!strncmp(t->name, "cls_head.", 9) || !strncmp(t->name, "ta_head.", 8)) continue;
        /* The source key, written independently of xv_nlvr_rename. */
        char key[256];
        int l;
        if (sscanf(t->name, "text_encoder.encoder.layer.%d.", &l) == 1) {
            const char *rest = strchr(t->name + strlen("text_encoder.encoder.layer."), '.');
            snprintf(key, sizeof key, "text_encoder.bert.encoder.layer.%d%s", l < F ? l : F + (l - F) / 2, rest);
        } else if (!strncmp(t->name, "text_encoder.", 13)) {
            snprintf(key, sizeof key, "text_encoder.bert.%s", t->name + 13);
        } else {
            snprintf(key, sizeof key, "%s", t->name);
        }
        const xv_st_tensor *s = xv_st_find(src, key);
        CHECK(s != NULL, "%s: source %s absent", t->name, key);
        if (!s) continue;
        float *v = malloc(sizeof(float) * (size_t)s->numel);
        CHECK_OK(xv_st_read_f32(src, s, v));
        CHECK(s->numel == t->numel && !memcmp(v, t->data, sizeof(float) * (size_t)t->numel), "%s != %s", t->name,
              key);
        free(v);
        checked++;
    }
    CHECK(m->cls_head.fc0.w->data[0] == head0, "cls_head changed by the load");
    printf("conversion values: %d parameters equal to their pretraining source (%d names filled)\n", checked, loaded);
    CHECK(checked > 0, "nothing checked");
    xv_st_close(src);
    xv_model_free(m);
}

int main(void) {
    const char *fx = xv_fixtures_dir();
    if (!fx) return xv_test_skip("fixtures absent");
    char dir[1024];
    xv_st_file *in = NULL, *ref = NULL;
    golden_open("nlvr", dir, sizeof dir, &in, &ref);
    xv_model *m = NULL;
    CHECK_OK(xv_model_load_dir(dir, false, &m));
    if (!m) {
        xv_st_close(in), xv_st_close(ref);
        return xv_test_finish("test_nlvr_fixture");
    }
    CHECK(m->parts.nlvr && m->parts.ta && xv_model_paired(&m->parts), "fixture weights: NLVR and text-assignment parts");
    /* Shared key/value: one tensor under both layer names. */
    CHECK(xv_params_find(&m->params, "text_encoder.encoder.layer.2.crossattention.self.key.weight") ==
              xv_params_find(&m->params, "text_encoder.encoder.layer.3.crossattention.self.key.weight"),
          "layers 2 and 3 share their cross-attention key");
    CHECK(xv_params_find(&m->params, "text_encoder.encoder.layer.2.crossattention.self.query.weight") !=
              xv_params_find(&m->params, "text_encoder.encoder.layer.3.crossattention.self.query.weight"),
          "queries are not shared");
    xv_params_set_requires_grad(&m->params, true);
    if (in && ref) {
        nlvr_step(m, in, ref);
        ta_step(m, in, ref);
    }
    conversion_map(fx, m->cfg.text.fusion_layer);
    conversion_values(fx, m);
    xv_st_close(in);
    xv_st_close(ref);
    xv_model_free(m);
    return xv_test_finish("test_nlvr_fixture");
}
