/* configs/demo/: every pretraining YAML loads (model included), and each
 * ablation differs from the full run exactly in what it ablates. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "train/pretrain_run_config.h"

static const char *g_src;

static int load(const char *name, xv_pretrain_run_config *c) {
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/demo/pretrain_%s.yaml", g_src, name);
    char *notes = NULL;
    size_t len = 0;
    FILE *nf = open_memstream(&notes, &len);
    xv_status st = xv_pretrain_run_config_load(path, c, nf);
    fclose(nf);
    CHECK(st == XV_OK, "%s: %s", path, xv_error_message());
    /* Every key of the demo configs is one the run reads. */
    CHECK(!notes || !*notes, "%s: unexpected notes: %s", name, notes ? notes : "");
    free(notes);
    return st == XV_OK;
}

/* The fields an ablation may change, restored to the full run's values. */
static void same_but(const xv_pretrain_run_config *full, const xv_pretrain_run_config *c, const char *name) {
    CHECK(!memcmp(&full->model, &c->model, sizeof full->model), "%s: same model", name);
    CHECK(c->images.batch_size == full->images.batch_size && c->regions.batch_size == full->regions.batch_size &&
              c->trainer.optim.lr == full->trainer.optim.lr && c->trainer.warmup == full->trainer.warmup && c->regions.max_images == full->regions.max_images &&
              c->regions.max_regions == full->regions.max_regions && c->train_dataset_size == full->train_dataset_size &&
              c->trainer.clip_norm == full->trainer.clip_norm && c->images.masking.mask_prob == full->images.masking.mask_prob &&
              c->images.crop_scale_min == full->images.crop_scale_min && c->images.crop_scale_max == full->images.crop_scale_max,
          "%s: same data and optimisation settings", name);
    CHECK(!strcmp(c->images.files[0], full->images.files[0]), "%s: same image-text data", name);
}

int main(void) {
    g_src = getenv("XV_SOURCE_DIR");
    if (!g_src) return xv_test_skip("XV_SOURCE_DIR not set");
    xv_pretrain_run_config full, c;
    if (!load("full", &full)) return xv_test_finish("test_demo_configs");
    CHECK(full.trainer.iter_perc > 0 && full.trainer.bbox_loss && full.regions.n_files == 1 &&
              strstr(full.regions.files[0], "/pretrain_regions.jsonl"),
          "the full run has region updates with box losses on the whole region file");
    CHECK(full.model.vision.ape && full.model.vision.ape_sincos,
          "the demo model's tokens know where they are: ape started as the 2-D sine-cosine table (docs/demo.md)");
    CHECK(full.model.vision.image_res / full.model.vision.region_stride == 8,
          "the demo model's final grid is 8 x 8 (a 4 x 4 grid could not place boxes: docs/demo.md), got %d x %d",
          full.model.vision.image_res / full.model.vision.region_stride,
          full.model.vision.image_res / full.model.vision.region_stride);
    CHECK(full.model.text.vocab == 163, "vocab_size = the synthetic world's vocab.txt (163 tokens)");

    if (load("no_objects", &c)) {
        same_but(&full, &c, "no_objects");
        CHECK(strstr(c.regions.files[0], "/pretrain_regions_relations.jsonl") && c.trainer.bbox_loss &&
                  c.trainer.iter_perc == full.trainer.iter_perc && c.epochs == full.epochs,
              "no_objects: relation regions only");
        xv_pretrain_run_config_free(&c);
    }
    if (load("no_regions", &c)) {
        same_but(&full, &c, "no_regions");
        CHECK(strstr(c.regions.files[0], "/pretrain_regions_objects.jsonl") && c.trainer.bbox_loss &&
                  c.trainer.iter_perc == full.trainer.iter_perc && c.epochs == full.epochs,
              "no_regions: objects only");
        xv_pretrain_run_config_free(&c);
    }
    if (load("no_bbox_loss", &c)) {
        same_but(&full, &c, "no_bbox_loss");
        CHECK(!c.trainer.bbox_loss && !strcmp(c.regions.files[0], full.regions.files[0]) &&
                  c.trainer.iter_perc == full.trainer.iter_perc && c.epochs == full.epochs,
              "no_bbox_loss: the same region data without box losses");
        xv_pretrain_run_config_free(&c);
    }
    if (load("image_text_only", &c)) {
        same_but(&full, &c, "image_text_only");
        /* One update per step instead of two: twice the steps for the same number of updates. */
        CHECK(c.trainer.iter_perc == 0 && full.trainer.iter_perc == 1.0 && c.epochs == 2 * full.epochs,
              "image_text_only: no region updates, twice the epochs (iter_perc %g, epochs %d vs %d)", c.trainer.iter_perc,
              c.epochs, full.epochs);
        xv_pretrain_run_config_free(&c);
    }
    xv_pretrain_run_config_free(&full);
    return xv_test_finish("test_demo_configs");
}
