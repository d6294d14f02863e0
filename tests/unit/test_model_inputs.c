/* Pretraining inputs: ITM hard-negative sampling (never a positive, follows
 * the weights, deterministic by seed) and every malformed batch field refused
 * by the one validator (xv_pretrain_batch_check, which the forward runs first)
 * with a message naming the field and the entry, without a crash. */
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
    return xv_test_random_model(js, 1, NULL);
}

/* A valid region batch of 2 texts over 2 images (4x4 = 16 patches each),
 * its arrays in `f` (text arrays sized for up to 9 tokens). */
typedef struct {
    float image[2 * 3 * 32 * 32], target_bbox[2 * 4];
    int32_t text_ids[2 * 9], text_atts[2 * 9], text_ids_masked[2 * 9], masked_pos[2 * 2], masked_ids[2 * 2];
    int32_t idx_to_group_img[2], image_atts[2 * 17], is_image[2], neg_image[2], neg_text[2];
    xv_pretrain_batch b;
    xv_itm_negatives neg;
} batch_fixture;

static void good_batch(batch_fixture *f) {
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 10; i++) {
        f->text_ids[i] = f->text_ids_masked[i] = 1 + i;
        f->text_atts[i] = i % 5 < 4;
    }
    const int32_t pos[4] = {1, 0, 2, 3}, ids[4] = {2, -100, 8, 9};
    memcpy(f->masked_pos, pos, sizeof pos);
    memcpy(f->masked_ids, ids, sizeof ids);
    f->idx_to_group_img[0] = 1;
    for (int i = 0; i < 34; i++) f->image_atts[i] = i % 17 != 2;
    const float box[8] = {0.5f, 0.5f, 1, 1, 0.3f, 0.4f, 0.2f, 0.2f};
    memcpy(f->target_bbox, box, sizeof box);
    f->is_image[0] = 1;
    f->neg_image[0] = f->neg_text[0] = 1;
    f->b = (xv_pretrain_batch){
        .n_images = 2, .res = 32, .image = f->image, .n_texts = 2, .text_len = 5, .max_masks = 2,
        .text_ids = f->text_ids, .text_atts = f->text_atts, .text_ids_masked = f->text_ids_masked,
        .masked_pos = f->masked_pos, .masked_ids = f->masked_ids, .idx_to_group_img = f->idx_to_group_img,
        .n_atts = 17, .image_atts = f->image_atts, .target_bbox = f->target_bbox, .is_image = f->is_image,
    };
    f->neg = (xv_itm_negatives){.image_idx = f->neg_image, .text_idx = f->neg_text};
}

/* One bad field each (applied to the valid batch), and what its message must name. */
typedef void (*breaker)(batch_fixture *f);
static void b_n_texts(batch_fixture *f) { f->b.n_texts = 0; }
static void b_max_masks(batch_fixture *f) { f->b.max_masks = 0; }
static void b_res(batch_fixture *f) { f->b.res = 64; }
static void b_len(batch_fixture *f) { f->b.text_len = 9; }
static void b_missing(batch_fixture *f) { f->b.masked_ids = NULL; }
static void b_id(batch_fixture *f) { f->text_ids[1] = 50; }
static void b_atts(batch_fixture *f) { f->text_atts[3] = 2; }
static void b_id_masked(batch_fixture *f) { f->text_ids_masked[7] = -1; }
static void b_pos(batch_fixture *f) { f->masked_pos[2] = 5; }
static void b_label(batch_fixture *f) { f->masked_ids[3] = -7; }
static void b_group(batch_fixture *f) { f->idx_to_group_img[1] = 2; }
static void b_n_atts(batch_fixture *f) { f->b.n_atts = 4; }
static void b_mask_value(batch_fixture *f) { f->image_atts[5] = 3; }
static void b_region(batch_fixture *f) {
    for (int p = 1; p < 17; p++) f->image_atts[17 + p] = 0;
}
static void b_box(batch_fixture *f) { f->target_bbox[6] = NAN; }
static void b_is_image(batch_fixture *f) { f->is_image[0] = 2; }
static void b_whole(batch_fixture *f) { f->is_image[1] = 1; }
static void b_images(batch_fixture *f) {
    f->b.idx_to_group_img = f->b.image_atts = f->b.is_image = NULL;
    f->b.target_bbox = NULL;
    f->b.n_images = 3;
}
static void b_no_group(batch_fixture *f) { f->b.idx_to_group_img = NULL; }
static void b_neg_text(batch_fixture *f) { f->neg_text[0] = 2; }
static void b_neg_image(batch_fixture *f) { f->neg_image[1] = -1; }
static void b_one_neg(batch_fixture *f) { f->neg.text_idx = NULL; }
static void b_no_rng(batch_fixture *f) { f->neg = (xv_itm_negatives){0}; }

static void test_bad_batches(void) {
    xv_model *m = small_model();
    if (!m) return;
    const struct {
        breaker f;
        const char *needle;
    } cases[] = {
        {NULL, NULL},
        {b_n_texts, "n_texts = 0"},
        {b_max_masks, "max_masks = 0"},
        {b_res, "image res 64, but the model takes 32 x 32"},
        {b_len, "text_len 9 exceeds the model's max_position_embeddings 8"},
        {b_missing, "masked_ids is missing"},
        {b_id, "text_ids[0][1] = 50 outside [0, 50) (the vocabulary)"},
        {b_atts, "text_atts[0][3] = 2 outside [0, 2) (a 0/1 mask)"},
        {b_id_masked, "text_ids_masked[1][2] = -1"},
        {b_pos, "masked_pos[1][0] = 5 outside [0, 5)"},
        {b_label, "masked_ids[1][1] = -7"},
        {b_group, "idx_to_group_img[1] = 2 outside [0, 2)"},
        {b_n_atts, "n_atts = 4 entries, the model has 17"},
        {b_mask_value, "image_atts[0][5] = 3"},
        {b_region, "image_atts[1] selects no patch"},
        {b_box, "target_bbox[1][2] = nan is not finite"},
        {b_is_image, "is_image[0] = 2"},
        {b_whole, "is_image is 1 for every text"},
        {b_images, "3 images for 2 texts"},
        {b_no_group, "need idx_to_group_img"},
        {b_neg_text, "itm_neg_text_idx[0] = 2 outside [0, 2)"},
        {b_neg_image, "itm_neg_image_idx[1] = -1"},
        {b_one_neg, "give both ITM negative index vectors"},
        {b_no_rng, "no RNG"},
    };
    batch_fixture *f = malloc(sizeof *f);
    for (size_t i = 0; f && i < sizeof cases / sizeof *cases; i++) {
        good_batch(f);
        if (cases[i].f) cases[i].f(f);
        xv_status checked = xv_pretrain_batch_check(&m->cfg, &f->b, &f->neg);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", xv_error_message());
        /* The forward validates with the same check before any work. */
        xv_graph *g = xv_graph_new(0);
        xv_pretrain_out o;
        xv_status st = xv_pretrain_forward(g, m, &f->b, &f->neg, &o);
        if (!cases[i].needle) {
            CHECK(checked == XV_OK, "the valid batch passes: %s", msg);
            CHECK(st == XV_OK && o.loss_total && isfinite(o.loss_total->data[0]) && o.loss_bbox,
                  "the valid batch runs: %s", xv_error_message());
            /* Official semantics: only the region text (is_image 0) counts for the boxes. */
            CHECK(o.bbox_pred && o.bbox_pred->shape[0] == 2, "box predictions");
        } else {
            CHECK(checked != XV_OK, "case %zu (%s) accepted", i, cases[i].needle);
            CHECK(strstr(msg, cases[i].needle) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, msg, cases[i].needle);
            CHECK(st == checked && !strcmp(xv_error_message(), msg), "case %zu: the forward refuses it the same way",
                  i);
            printf("  refused: %s\n", msg);
        }
        xv_graph_free(g);
    }
    /* Features and heads a model lacks are refused by name. */
    xv_model_parts bare = {.layout = XV_LAYOUT_FINETUNE};
    xv_model *nm = NULL;
    CHECK_OK(xv_model_create(&m->cfg, &bare, &nm));
    if (nm && f) {
        xv_graph *g = xv_graph_new(0);
        good_batch(f);
        xv_pretrain_out o;
        CHECK(xv_pretrain_forward(g, nm, &f->b, &f->neg, &o) == XV_ERR_UNSUPPORTED &&
                  strstr(xv_error_message(), "vision_proj"),
              "no projections: %s", xv_error_message());
        xv_graph_free(g);
        xv_model_free(nm);
    }
    free(f);
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
