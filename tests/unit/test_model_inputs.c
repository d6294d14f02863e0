/* Pretraining inputs: ITM hard-negative sampling (never a positive, follows
 * the weights, deterministic by seed) and every malformed batch refused with
 * a message naming the input, without a crash. */
#include <stdlib.h>
#include <string.h>

#include "model/pretrain.h"
#include "testutil.h"

static void test_negatives(void) {
    enum { B = 4 };
    /* Image 0 prefers text 2 strongly; text 1 prefers image 3. */
    float sim[B * B] = {0};
    sim[0 * B + 2] = 5.0f;
    sim[3 * B + 1] = 5.0f;
    int32_t ni[B], nt[B], ni2[B], nt2[B];
    int hits_t0 = 0, hits_i1 = 0, draws = 2000;
    xv_rng r;
    xv_rng_seed(&r, 3);
    for (int k = 0; k < draws; k++) {
        CHECK_OK(xv_itm_sample_negatives(sim, B, NULL, &r, ni, nt));
        for (int b = 0; b < B; b++) CHECK(ni[b] != b && nt[b] != b && ni[b] >= 0 && ni[b] < B, "never the positive");
        hits_t0 += nt[0] == 2; /* image 0 draws text 2 with p = e^5 / (e^5 + 2) ≈ 0.987 */
        hits_i1 += ni[1] == 3; /* text 1 draws image 3 (column 1 of sim) */
    }
    CHECK(hits_t0 > 0.95 * draws && hits_i1 > 0.95 * draws, "weighted draws: %d, %d of %d", hits_t0, hits_i1, draws);
    xv_rng a, b;
    xv_rng_seed(&a, 9);
    xv_rng_seed(&b, 9);
    CHECK_OK(xv_itm_sample_negatives(sim, B, NULL, &a, ni, nt));
    CHECK_OK(xv_itm_sample_negatives(sim, B, NULL, &b, ni2, nt2));
    CHECK(!memcmp(ni, ni2, sizeof ni) && !memcmp(nt, nt2, sizeof nt), "same seed, same negatives");
    /* With idx: pairs of the same group are never negatives. */
    int32_t idx[B] = {7, 7, 8, 8};
    for (int k = 0; k < 200; k++) {
        CHECK_OK(xv_itm_sample_negatives(sim, B, idx, &r, ni, nt));
        for (int j = 0; j < B; j++) CHECK(idx[ni[j]] != idx[j] && idx[nt[j]] != idx[j], "other group only");
    }
    int32_t same[B] = {1, 1, 1, 1};
    CHECK(xv_itm_sample_negatives(sim, B, same, &r, ni, nt) == XV_ERR_INVALID_ARG, "no negative at all refused");
    CHECK(xv_itm_sample_negatives(sim, 1, NULL, &r, ni, nt) == XV_ERR_INVALID_ARG, "batch of one refused");
}

static xv_model *small_model(void) {
    const char *js =
        "{\"vision\": {\"image_res\": 32, \"window_size\": 4, \"embed_dim\": 8, \"depths\": [1, 1],"
        " \"num_heads\": [1, 2], \"vision_width\": 16, \"patch_size\": 8},"
        " \"text\": {\"hidden_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,"
        " \"intermediate_size\": 32, \"vocab_size\": 50, \"max_position_embeddings\": 8, \"fusion_layer\": 1},"
        " \"embed_dim\": 8}";
    xv_model_config c;
    CHECK_OK(xv_config_parse_json(js, "small", &c));
    xv_model_parts parts = xv_model_parts_pretrain();
    xv_model *m = NULL;
    CHECK_OK(xv_model_create(&c, &parts, &m));
    if (m) CHECK_OK(xv_model_init_random(m, 1));
    return m;
}

/* A valid region batch of 2 texts over 2 images (4x4 = 16 patches each). */
static void good_batch(xv_graph *g, xv_pretrain_batch *b) {
    memset(b, 0, sizeof *b);
    b->image = xv_tensor_zeros(g, XV_F32, XV_SHAPE(2, 3, 32, 32));
    b->text_ids = xv_tensor_new(g, XV_I32, XV_SHAPE(2, 5));
    b->text_atts = xv_tensor_new(g, XV_I32, XV_SHAPE(2, 5));
    b->text_ids_masked = xv_tensor_new(g, XV_I32, XV_SHAPE(2, 5));
    for (int i = 0; i < 10; i++) {
        b->text_ids->idata[i] = b->text_ids_masked->idata[i] = 1 + i;
        b->text_atts->idata[i] = i % 5 < 4;
    }
    b->masked_pos = xv_tensor_new(g, XV_I32, XV_SHAPE(2, 2));
    b->masked_ids = xv_tensor_new(g, XV_I32, XV_SHAPE(2, 2));
    int32_t pos[4] = {1, 0, 2, 3}, ids[4] = {2, -100, 8, 9};
    memcpy(b->masked_pos->idata, pos, sizeof pos);
    memcpy(b->masked_ids->idata, ids, sizeof ids);
    b->idx_to_group_img = xv_tensor_new(g, XV_I32, XV_SHAPE(2));
    b->idx_to_group_img->idata[0] = 1;
    b->idx_to_group_img->idata[1] = 0;
    b->image_atts = xv_tensor_new(g, XV_I32, XV_SHAPE(2, 17));
    for (int i = 0; i < 34; i++) b->image_atts->idata[i] = i % 17 != 2;
    b->target_bbox = xv_tensor_new(g, XV_F32, XV_SHAPE(2, 4));
    float box[8] = {0.5f, 0.5f, 1, 1, 0.3f, 0.4f, 0.2f, 0.2f};
    memcpy(b->target_bbox->data, box, sizeof box);
    b->is_image = xv_tensor_new(g, XV_I32, XV_SHAPE(2));
    b->is_image->idata[0] = 1;
    b->is_image->idata[1] = 0;
    b->neg_image_idx = xv_tensor_new(g, XV_I32, XV_SHAPE(2));
    b->neg_text_idx = xv_tensor_new(g, XV_I32, XV_SHAPE(2));
    b->neg_image_idx->idata[0] = b->neg_text_idx->idata[0] = 1;
    b->neg_image_idx->idata[1] = b->neg_text_idx->idata[1] = 0;
}

typedef void (*breaker)(xv_graph *g, xv_pretrain_batch *b);
static void b_atts(xv_graph *g, xv_pretrain_batch *b) { (void)g; b->text_atts->idata[3] = 2; }
static void b_id(xv_graph *g, xv_pretrain_batch *b) { (void)g; b->text_ids->idata[1] = 50; }
static void b_pos(xv_graph *g, xv_pretrain_batch *b) { (void)g; b->masked_pos->idata[2] = 5; }
static void b_label(xv_graph *g, xv_pretrain_batch *b) { (void)g; b->masked_ids->idata[3] = -7; }
static void b_group(xv_graph *g, xv_pretrain_batch *b) { (void)g; b->idx_to_group_img->idata[1] = 2; }
static void b_region(xv_graph *g, xv_pretrain_batch *b) {
    (void)g;
    for (int p = 1; p < 17; p++) b->image_atts->idata[17 + p] = 0;
}
static void b_neg(xv_graph *g, xv_pretrain_batch *b) { (void)g; b->neg_text_idx->idata[0] = 2; }
static void b_whole(xv_graph *g, xv_pretrain_batch *b) { (void)g; b->is_image->idata[1] = 1; }
static void b_len(xv_graph *g, xv_pretrain_batch *b) {
    b->text_ids = xv_tensor_zeros(g, XV_I32, XV_SHAPE(2, 9));
    b->text_atts = xv_tensor_zeros(g, XV_I32, XV_SHAPE(2, 9));
    b->text_ids_masked = xv_tensor_zeros(g, XV_I32, XV_SHAPE(2, 9));
}
static void b_res(xv_graph *g, xv_pretrain_batch *b) { b->image = xv_tensor_zeros(g, XV_F32, XV_SHAPE(2, 3, 64, 64)); }
static void b_mask_shape(xv_graph *g, xv_pretrain_batch *b) { b->image_atts = xv_tensor_zeros(g, XV_I32, XV_SHAPE(2, 4)); }
static void b_no_rng(xv_graph *g, xv_pretrain_batch *b) {
    (void)g;
    b->neg_image_idx = b->neg_text_idx = NULL;
}
static void b_images(xv_graph *g, xv_pretrain_batch *b) {
    (void)g;
    b->idx_to_group_img = b->image_atts = NULL;
    b->target_bbox = NULL;
    b->is_image = NULL;
    b->image = xv_tensor_zeros(g, XV_F32, XV_SHAPE(3, 3, 32, 32));
}

static void test_bad_batches(void) {
    xv_model *m = small_model();
    if (!m) return;
    struct {
        breaker f;
        const char *needle;
    } cases[] = {
        {NULL, NULL},
        {b_atts, "text_atts[0][3] = 2"},
        {b_id, "50"},
        {b_pos, "masked_pos[1][0] = 5"},
        {b_label, "masked_ids[1][1] = -7"},
        {b_group, "idx_to_group_img 2"},
        {b_region, "selects no patch"},
        {b_neg, "negative text index[0] = 2"},
        {b_whole, "whole image"},
        {b_len, "max_position_embeddings 8"},
        {b_res, "[N, 3, 32, 32]"},
        {b_mask_shape, "image_atts must be I32 [2, 17]"},
        {b_no_rng, "no RNG"},
        {b_images, "3 images for 2 texts"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        xv_graph *g = xv_graph_new(0);
        xv_pretrain_batch b;
        good_batch(g, &b);
        if (cases[i].f) cases[i].f(g, &b);
        xv_pretrain_out o;
        xv_status st = xv_pretrain_forward(g, m, &b, &o);
        if (!cases[i].needle) {
            CHECK(st == XV_OK && o.loss_total && isfinite(o.loss_total->data[0]) && o.loss_bbox,
                  "the valid batch runs: %s", xv_error_message());
            /* Official semantics: only the region text (is_image 0) counts for the boxes. */
            CHECK(o.bbox_pred && o.bbox_pred->shape[0] == 2, "box predictions");
        } else {
            CHECK(st != XV_OK, "case %zu (%s) accepted", i, cases[i].needle);
            CHECK(strstr(xv_error_message(), cases[i].needle) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
                  xv_error_message(), cases[i].needle);
            printf("  refused: %s\n", xv_error_message());
        }
        xv_graph_free(g);
    }
    /* Features and heads a model lacks are refused by name. */
    xv_model_parts bare = {.layout = XV_LAYOUT_FINETUNE};
    xv_model *nm = NULL;
    CHECK_OK(xv_model_create(&m->cfg, &bare, &nm));
    if (nm) {
        xv_graph *g = xv_graph_new(0);
        xv_pretrain_batch b;
        good_batch(g, &b);
        xv_pretrain_out o;
        CHECK(xv_pretrain_forward(g, nm, &b, &o) == XV_ERR_UNSUPPORTED && strstr(xv_error_message(), "vision_proj"),
              "no projections: %s", xv_error_message());
        xv_graph_free(g);
        xv_model_free(nm);
    }
    xv_model_free(m);
}

/* ITC with idx (fine-tuning): distinct ids give the plain loss; shared ids
 * spread the target over the group (checked against a double computation). */
static void test_itc_idx(void) {
    xv_model *m = small_model();
    if (!m) return;
    enum { B = 3, E = 8 };
    xv_graph *g = xv_graph_new(0);
    xv_tensor *img = xv_tensor_new(g, XV_F32, XV_SHAPE(B, E)), *txt = xv_tensor_new(g, XV_F32, XV_SHAPE(B, E));
    xv_test_fill_uniform(img->data, B * E, -1, 1, 5);
    xv_test_fill_uniform(txt->data, B * E, -1, 1, 6);
    xv_tensor *fi = xv_l2_normalize(g, img, 1e-12f), *ft = xv_l2_normalize(g, txt, 1e-12f);
    xv_tensor *distinct = xv_tensor_new(g, XV_I32, XV_SHAPE(B)), *shared = xv_tensor_new(g, XV_I32, XV_SHAPE(B));
    int32_t sh[B] = {4, 4, 9};
    for (int i = 0; i < B; i++) {
        distinct->idata[i] = 10 + i;
        shared->idata[i] = sh[i];
    }
    xv_tensor *sim = NULL;
    xv_tensor *plain = xv_itc_loss(g, m, fi, ft, NULL, &sim);
    xv_tensor *same = xv_itc_loss(g, m, fi, ft, distinct, NULL);
    xv_tensor *grouped = xv_itc_loss(g, m, fi, ft, shared, NULL);
    CHECK(plain && same && grouped && sim, "ITC: %s", xv_error_message());
    if (plain && same && grouped && sim) {
        /* fp32 log-softmax of logits ~1/0.07: differences from summation order only. */
        CHECK(fabs(plain->data[0] - same->data[0]) <= 1e-5 * fabs(plain->data[0]), "distinct idx = plain: %g vs %g",
              plain->data[0], same->data[0]);
        double ref = 0;
        for (int dir = 0; dir < 2; dir++)
            for (int i = 0; i < B; i++) {
                double mx = -1e30, z = 0, lp[B];
                for (int j = 0; j < B; j++) mx = fmax(mx, dir ? sim->data[j * B + i] : sim->data[i * B + j]);
                for (int j = 0; j < B; j++) z += exp((dir ? sim->data[j * B + i] : sim->data[i * B + j]) - mx);
                int cnt = 0;
                for (int j = 0; j < B; j++) cnt += sh[i] == sh[j];
                for (int j = 0; j < B; j++) {
                    lp[j] = (dir ? sim->data[j * B + i] : sim->data[i * B + j]) - mx - log(z);
                    if (sh[i] == sh[j]) ref -= lp[j] / cnt / B / 2;
                }
            }
        CHECK(fabs(grouped->data[0] - ref) <= 1e-5 * fabs(ref), "grouped ITC %g vs double %g", grouped->data[0], ref);
        CHECK(fabs(grouped->data[0] - plain->data[0]) > 1e-3, "groups change the loss");
        CHECK(fabs(sim->data[0] * 0.07f - (fi->data[0] * ft->data[0] + fi->data[1] * ft->data[1] +
                                            fi->data[2] * ft->data[2] + fi->data[3] * ft->data[3] +
                                            fi->data[4] * ft->data[4] + fi->data[5] * ft->data[5] +
                                            fi->data[6] * ft->data[6] + fi->data[7] * ft->data[7])) < 1e-5,
              "sim = image·text / temp");
    }
    xv_graph_free(g);
    xv_model_free(m);
}

int main(void) {
    test_negatives();
    test_itc_idx();
    test_bad_batches();
    return xv_test_finish("test_model_inputs");
}
