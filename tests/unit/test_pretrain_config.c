/* Reading pretraining YAMLs: YAML 1.2 scalar types, the official keys,
 * model_config as a path or inline, notes for unknown/ignored keys, and
 * refusals that name the key and line. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/yaml_tree.h"
#include "testutil.h"
#include "train/pretrain_run_config.h"

static char dir[64];

static const char *write_file(const char *name, const char *text) {
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return p;
}

static void test_yaml_types(void) {
    const char *text = "a: 2500\nb: 0.1\nc: 1e-4\nd: '42'\ne: True\nf: ~\ng: [x, 2]\nh: {k: v}\ni: 0x1F\n"
                       "j: .inf\nk: 1.2.3\nl: -7\n";
    xv_yaml_node *root = NULL;
    CHECK_OK(xv_yaml_parse(text, strlen(text), "t.yaml", &root));
    if (!root) return;
    const xv_yaml_node *n;
    n = xv_yaml_get(root, "a");
    CHECK(n && n->kind == XV_YAML_INT && n->i == 2500, "a: 2500 is an int");
    n = xv_yaml_get(root, "b");
    CHECK(n && n->kind == XV_YAML_FLOAT && n->f == 0.1, "b: 0.1 is a float");
    n = xv_yaml_get(root, "c");
    CHECK(n && n->kind == XV_YAML_FLOAT && n->f == 1e-4, "c: 1e-4 is a float (YAML 1.2, as ruamel reads it)");
    n = xv_yaml_get(root, "d");
    CHECK(n && n->kind == XV_YAML_STRING && !strcmp(n->text, "42"), "quoted '42' stays a string");
    n = xv_yaml_get(root, "e");
    CHECK(n && n->kind == XV_YAML_BOOL && n->b, "True is a bool");
    n = xv_yaml_get(root, "f");
    CHECK(n && n->kind == XV_YAML_NULL, "~ is null");
    n = xv_yaml_get(root, "g");
    CHECK(n && n->kind == XV_YAML_SEQ && n->n == 2 && n->items[0]->kind == XV_YAML_STRING &&
              n->items[1]->kind == XV_YAML_INT,
          "flow sequence");
    n = xv_yaml_get(root, "h");
    CHECK(n && n->kind == XV_YAML_MAP && xv_yaml_get(n, "k") && xv_yaml_get(n, "k")->line == 8, "flow map + line");
    n = xv_yaml_get(root, "i");
    CHECK(n && n->kind == XV_YAML_INT && n->i == 31, "0x1F is 31");
    n = xv_yaml_get(root, "j");
    CHECK(n && n->kind == XV_YAML_FLOAT && isinf(n->f), ".inf");
    n = xv_yaml_get(root, "k");
    CHECK(n && n->kind == XV_YAML_STRING, "1.2.3 is a string");
    n = xv_yaml_get(root, "l");
    CHECK(n && n->kind == XV_YAML_INT && n->i == -7, "-7");
    char *json = xv_yaml_to_json(xv_yaml_get(root, "g"));
    CHECK(json && !strcmp(json, "[\"x\",2]"), "to JSON: %s", json ? json : "(null)");
    free(json);
    xv_yaml_free(root);

    const char *bad[] = {"- a\n- b\n", "a: &x 1\nb: *x\n", "a: [1, 2\n", "a: 1\n---\nb: 2\n"};
    for (int i = 0; i < 4; i++) {
        root = NULL;
        xv_status st = xv_yaml_parse(bad[i], strlen(bad[i]), "bad.yaml", &root);
        CHECK(st == XV_ERR_FORMAT && !root && strstr(xv_error_message(), "bad.yaml:"), "bad YAML %d refused: %s", i,
              xv_error_message());
    }
}

static const char *model_inline =
    "model_config:\n"
    "  vision: {image_res: 64, swin_patch_size: 4, patch_size: 8, embed_dim: 16, depths: [2, 2],\n"
    "           num_heads: [1, 2], window_size: 4, vision_width: 32}\n"
    "  text: {hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64,\n"
    "         vocab_size: 100, max_position_embeddings: 32, fusion_layer: 1, encoder_width: 32}\n";

static void test_official_keys(void) {
    char text[4096];
    snprintf(text, sizeof text,
             "train_file: ['a.jsonl', 'dir']\n"
             "train_file_regions: 'r.jsonl'\n"
             "train_dataset_size: 1000\n"
             "images: {image_key: \"image\", is_image_rpath: True, caption_key: \"caption\", tokenized: False,\n"
             "         batch_size: 16, num_workers: 2, crop_scale: [0.8, 1]}\n"
             "regions: {image_key: \"image\", is_image_rpath: True, caption_key: \"caption\", tokenized: False,\n"
             "          iter_perc: 0.25, batch_size: 12, max_images: 4, max_regions: 3, min_perc_in_image: 0.6,\n"
             "          num_workers: 1, bogus_inner: 1}\n"
             "image_root: /data\n"
             "text_encoder: 'data/bert-base-uncased'\n"
             "%s"
             "image_res: 64\npatch_size: 8\nembed_dim: 24\ntemp: 0.05\n"
             "max_words: 30\nmax_tokens: 20\nmask_prob: 0.15\nmax_masks: 4\nmask_whole_word: False\n"
             "skipgram_prb: 0.1\nskipgram_size: 2\ncalc_image_bbox_loss: True\nbbox_loss: False\n"
             "ckpt_frequent_step: 7\nckpt_frequent: 2\n"
             "optimizer: {opt: adamW, lr: 3e-4, weight_decay: 0.02, lr_mult: 3}\n"
             "schedular: {sched: linear, lr: 3e-4, epochs: 5, num_warmup_steps: 0.1}\n"
             "accelerator: {FP16_OPT_LEVEL: O1, CLIP_GRAD_NORM: 2.0}\n"
             "use_swin: True\n"
             "some_new_key: 3\n",
             model_inline);
    const char *p = write_file("ok.yaml", text);
    xv_pretrain_run_config c;
    char *notes = NULL;
    size_t notes_len = 0;
    FILE *nf = open_memstream(&notes, &notes_len);
    CHECK_OK(xv_pretrain_run_config_load(p, &c, nf));
    fclose(nf);
    CHECK(c.images.n_files == 2 && !strcmp(c.images.files[1], "dir") && c.regions.n_files == 1 &&
              !strcmp(c.regions.files[0], "r.jsonl"),
          "train files");
    CHECK(c.train_dataset_size == 1000 && c.images.batch_size == 16 && c.images.num_workers == 2 &&
              c.images.is_image_rpath && !strcmp(c.images.image_key, "image") && c.regions.batch_size == 12,
          "sources");
    CHECK(c.images.image_root && !strcmp(c.images.image_root, "/data") && c.regions.image_root &&
              !strcmp(c.regions.image_root, "/data"),
          "top-level image_root applies to both sources");
    CHECK(c.images.crop_scale_min == 0.8 && c.images.crop_scale_max == 1.0, "images.crop_scale [%g, %g]", c.images.crop_scale_min,
          c.images.crop_scale_max);
    CHECK(c.trainer.iter_perc == 0.25 && c.regions.max_images == 4 && c.regions.max_regions == 3 && c.regions.min_perc_in_image == 0.6, "regions");
    CHECK(c.vocab && !strcmp(c.vocab, "data/bert-base-uncased/vocab.txt"), "vocab from text_encoder: %s",
          c.vocab ? c.vocab : "(null)");
    CHECK(c.model.vision.image_res == 64 && c.model.vision.region_stride == 8 && c.model.embed_dim == 24 &&
              fabsf(c.model.temp - 0.05f) < 1e-9f && c.model.text.hidden == 32,
          "model from the inline model_config, embed_dim/temp from the YAML");
    CHECK(c.images.max_words == 30 && c.images.max_tokens == 20 && c.images.masking.mask_prob == 0.15 && c.images.masking.max_masks == 4 && !c.images.masking.whole_word &&
              c.images.masking.skipgram_prb == 0.1 && c.images.masking.skipgram_size == 2 && c.trainer.calc_image_bbox_loss && !c.trainer.bbox_loss,
          "text settings");
    CHECK(c.regions.max_tokens == 20 && c.regions.masking.max_masks == 4 && !c.regions.masking.whole_word &&
              c.regions.vocab_path == c.vocab && c.images.vocab_path == c.vocab && c.regions.image_res == 64 &&
              c.regions.patch_size == 8 && c.regions.num_workers == 1 && c.regions.repeat,
          "both loaders get the top-level text keys, the vocabulary and the model's image size");
    CHECK(c.trainer.optim.lr == 3e-4 && c.trainer.optim.weight_decay == 0.02 && c.trainer.optim.lr_mult == 3 && c.epochs == 5 && c.trainer.warmup == 0.1 &&
              c.trainer.warmup_is_fraction && c.trainer.clip_norm == 2.0 && c.ckpt_frequent_step == 7 && c.ckpt_frequent == 2,
          "optimisation");
    CHECK(xv_pretrain_steps_per_epoch(&c) == 63, "ceil(1000/16) = 63, got %lld",
          (long long)xv_pretrain_steps_per_epoch(&c));
    CHECK(notes && strstr(notes, "\"some_new_key\"") && strstr(notes, "\"regions.bogus_inner\"") &&
              strstr(notes, "FP16_OPT_LEVEL") && !strstr(notes, "CLIP_GRAD_NORM"),
          "notes name the unknown and ignored keys:\n%s", notes ? notes : "");
    CHECK(c.text && strstr(c.text, "some_new_key"), "the YAML text is kept for checkpoints");
    free(notes);
    xv_pretrain_run_config_free(&c);

    /* model_config as a path to a config.json; an integer warmup is a step count */
    const char *json = write_file("model.json",
                                  "{\"vision\": {\"image_res\": 64, \"swin_patch_size\": 4, \"patch_size\": 8,"
                                  " \"embed_dim\": 16, \"depths\": [2, 2], \"num_heads\": [1, 2], \"window_size\": 4,"
                                  " \"vision_width\": 32}, \"text\": {\"hidden_size\": 32, \"num_hidden_layers\": 2,"
                                  " \"num_attention_heads\": 2, \"intermediate_size\": 64, \"vocab_size\": 100,"
                                  " \"max_position_embeddings\": 32, \"fusion_layer\": 1, \"encoder_width\": 32},"
                                  " \"embed_dim\": 16}");
    (void)json;
    p = write_file("path.yaml", "train_file: [a]\ntrain_file_regions: [b]\ntrain_dataset_size: 10\nvocab: v.txt\n"
                                "model_config: model.json\nschedular: {num_warmup_steps: 25}\nmax_tokens: 30\n");
    CHECK_OK(xv_pretrain_run_config_load(p, &c, NULL));
    CHECK(c.model.embed_dim == 16 && c.trainer.warmup == 25 && !c.trainer.warmup_is_fraction && c.images.batch_size == 128 &&
              c.trainer.iter_perc == 0.5 && c.trainer.optim.lr == 1e-4 && c.images.masking.max_masks == 8 && c.trainer.bbox_loss,
          "config.json path; defaults of the 4M config for the rest");
    xv_pretrain_run_config_free(&c);
}

/* Each bad config is refused with a message holding `expect`. */
static void refused(const char *body, const char *expect) {
    char text[4096];
    snprintf(text, sizeof text, "train_file: [a]\ntrain_file_regions: [b]\ntrain_dataset_size: 10\nvocab: v.txt\n%s%s",
             strstr(body, "model_config") ? "" : model_inline, body);
    const char *p = write_file("bad.yaml", text);
    xv_pretrain_run_config c;
    xv_status st = xv_pretrain_run_config_load(p, &c, NULL);
    CHECK(st != XV_OK && strstr(xv_error_message(), expect), "config with %s: status %d, message: %s", body, (int)st,
          xv_error_message());
    CHECK(c.path == NULL && c.images.files == NULL, "a refused config leaves the output zeroed");
}

static void test_refusals(void) {
    refused("optimizer: {lr: fast}\n", "\"optimizer.lr\" must be a number");
    refused("optimizer: {lr: '1e-4'}\n", "\"optimizer.lr\" must be a number");
    refused("images: {batch_size: 8.5}\n", "\"images.batch_size\" must be an integer");
    refused("images: [1, 2]\n", "\"images\" must be a mapping");
    refused("regions: {iter_perc: 1.5}\n", "\"regions.iter_perc\" = 1.5 outside [0, 1]");
    refused("images: {crop_scale: [0.5, 0.4]}\n", "\"images.crop_scale\" = [0.5, 0.4] must satisfy");
    refused("images: {crop_scale: 0.5}\n", "\"images.crop_scale\" must be a list of two numbers");
    refused("mask_whole_word: 1\n", "\"mask_whole_word\" must be true or false");
    refused("regions: {careful_hflip: yes}\n", "bad.yaml:10: \"regions.careful_hflip\" must be true or false");
    refused("schedular: {num_warmup_steps: 1.5}\n", "schedular.num_warmup_steps");
    refused("optimizer: {opt: sgd}\n", "only adamW");
    refused("image_res: 224\n", "image_res 224 / patch_size 8 differ");
    refused("max_tokens: 40\n", "max_tokens 40 exceeds the text encoder's 32 positions");
    refused("train_file: 3\n", "\"train_file\" must be a list of strings");
    refused("model_config: 5\n", "\"model_config\" must be a config.json path or a mapping");
    refused("use_clip_vit: True\n", "use_clip_vit");
    refused("model_config: {vision: {image_res: 64}, text: {}}\n", "model_config");
    refused("model_config: missing.json\n", "missing.json not found");
}

int main(void) {
    if (!xv_test_scratch_dir("xv_test_ptcfg", dir, sizeof dir)) return 1;
    test_yaml_types();
    test_official_keys();
    test_refusals();
    xv_test_remove_dir(dir);
    return xv_test_finish("test_pretrain_config");
}
