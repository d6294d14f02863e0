/* The whole path a researcher moving from the official repository takes, on
 * a small world in the official formats, run from its data folder with
 * official-style YAMLs (relative paths from the working directory):
 *   configs/config_swin_tiny.json, config_bert_tiny.json  official Swin / BERT JSON
 *   data/bert-tiny/vocab.txt                               text_encoder
 *   data/pretrain/captions_{0,1}.jsonl + synth regions     a list of train files
 *   data/finetune/coco_karpathy_{train_a,train_b,val,test}.json   Karpathy style
 *   data/finetune/refcoco+/refs(unc).p + instances.json   REFER (boxes, splits)
 *   data/finetune/refcoco+_{train,val,test}.json          {image, text, ref_id}
 * xvlm pretrain -> finetune retrieval -> finetune grounding (from the
 * retrieval model given as one file) -> evaluate retrieval|grounding
 * --config, whose official dicts equal those fine-tuning wrote after its last
 * epoch; grounding reports val_d / testA_d / testB_d and a result file with
 * every ref_id; `match` and `ground` open every model folder written. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "refer_fixture.h"
#include "testutil.h"

enum { N_TRAIN_REFS = 8, N_TEST_REFS = 6 };

static cJSON *read_json(const char *path) {
    char *text = xv_test_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(j != NULL, "%s: unreadable JSON", path);
    return j;
}

static bool write_json(const char *path, const cJSON *j) {
    char *text = cJSON_Print(j);
    const bool ok = text && xv_test_write_file(path, text);
    cJSON_free(text);
    return ok;
}

/* A JSON-lines file of synth's, its image paths made relative to the data
 * folder, split into `n` files (line i into file i % n). */
static void split_lines(const char *from, const char *pattern, int n) {
    char *text = xv_test_read_file(from, NULL);
    CHECK(text != NULL, "%s", from);
    FILE *out[2] = {NULL, NULL};
    for (int k = 0; k < n; k++) {
        char path[256];
        snprintf(path, sizeof path, pattern, k);
        out[k] = fopen(path, "w");
    }
    int i = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"), i++) {
        const char *img = strstr(line, "\"image\":\"");
        if (!img || !out[i % n]) continue;
        fprintf(out[i % n], "%.*s\"image\":\"data/synth/%s\n", (int)(img - line), line, img + 9);
    }
    for (int k = 0; k < n; k++)
        if (out[k]) fclose(out[k]);
    free(text);
}

static void write_configs(int vocab_size) {
    mkdir("configs", 0777);
    xv_test_write_file("configs/config_swin_tiny.json",
                       "{\"ckpt\": \"\", \"vision_width\": 64, \"image_res\": 64, \"window_size\": 4, "
                       "\"embed_dim\": 32, \"depths\": [2, 2], \"num_heads\": [2, 4]}");
    char bert[512];
    snprintf(bert, sizeof bert,
             "{\"hidden_size\": 32, \"num_hidden_layers\": 3, \"num_attention_heads\": 2, \"intermediate_size\": 64, "
             "\"vocab_size\": %d, \"max_position_embeddings\": 40, \"fusion_layer\": 2, \"encoder_width\": 64, "
             "\"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-12}",
             vocab_size);
    xv_test_write_file("configs/config_bert_tiny.json", bert);
    static const char *const model =
        "use_clip_vit: False\nuse_swin: True\nvision_config: 'configs/config_swin_tiny.json'\n"
        "image_res: 64\npatch_size: 8\n"
        "use_roberta: False\ntext_config: 'configs/config_bert_tiny.json'\ntext_encoder: 'data/bert-tiny'\n"
        "embed_dim: 32\ntemp: 0.07\nmax_tokens: 30\n";
    char text[4096];
    snprintf(text, sizeof text,
             "train_file: ['data/pretrain/captions_0.jsonl', 'data/pretrain/captions_1.jsonl']\n"
             "train_dataset_size: 24\n"
             "images: {image_key: \"image\", is_image_rpath: True, caption_key: \"caption\", tokenized: False,\n"
             "         batch_size: 8, num_workers: 1}\n"
             "train_file_regions: ['data/pretrain/regions_0.jsonl']\n"
             "regions: {image_key: \"image\", is_image_rpath: True, caption_key: \"caption\", tokenized: False,\n"
             "          iter_perc: 0.5, batch_size: 4, max_images: 2, max_regions: 3, min_perc_in_image: 0.5,\n"
             "          num_workers: 1}\n%s"
             "calc_image_bbox_loss: False\nmax_words: 30\nmask_prob: 0.25\nmax_masks: 4\nskipgram_prb: 0.2\n"
             "skipgram_size: 3\nmask_whole_word: True\n"
             "optimizer: {opt: adamW, lr: 1e-3, weight_decay: 0.01, lr_mult: 2}\n"
             "schedular: {sched: linear, lr: 1e-3, epochs: 1, num_warmup_steps: 1}\n"
             "accelerator: {SYNCBN: false, FP16_OPT_LEVEL: O1, FP16_LOSS_SCALE: dynamic, RNG_SEED: 42, "
             "GRAD_ACCUMULATE_STEPS: 1, CLIP_GRAD_NORM: 1.0}\n",
             model);
    xv_test_write_file("configs/Pretrain_tiny.yaml", text);
    snprintf(text, sizeof text,
             "train_file: ['data/finetune/coco_karpathy_train_a.json', 'data/finetune/coco_karpathy_train_b.json']\n"
             "val_file: 'data/finetune/coco_karpathy_val.json'\ntest_file: 'data/finetune/coco_karpathy_test.json'\n"
             "image_root: 'data/synth/'\n%s"
             "batch_size_train: 8\nbatch_size_test: 8\nbatch_size_test_text: 16\nk_test: 4\n"
             "optimizer: {opt: adamW, lr: 1e-4, weight_decay: 0.01, lr_mult: 2}\n"
             "schedular: {sched: linear, lr: 1e-4, epochs: 2, num_warmup_steps: 0.1}\n",
             model);
    xv_test_write_file("configs/Retrieval_tiny.yaml", text);
    snprintf(text, sizeof text,
             "train_file: ['data/finetune/refcoco+_train.json']\n"
             "test_file: ['data/finetune/refcoco+_val.json', 'data/finetune/refcoco+_test.json']\n"
             "refcoco_data: 'data/finetune/'\ndet_file: 'data/finetune/refcoco+/dets.json'\n"
             "coco_file: 'data/finetune/refcoco+/cocos.json'\nimage_root: 'data/synth/'\ncareful_hflip: True\n%s"
             "batch_size: 4\n"
             "optimizer: {opt: adamW, lr: 1e-4, weight_decay: 0.01, lr_mult: 2}\n"
             "schedular: {sched: linear, lr: 1e-4, epochs: 2, num_warmup_steps: 0.1}\n",
             model);
    xv_test_write_file("configs/Grounding_bbox_tiny.yaml", text);
}

/* Karpathy-style retrieval files from synth's: the train entries in two
 * files, the test images split into val and test. */
static void write_retrieval(void) {
    cJSON *train = read_json("data/synth/retrieval_train.json"), *test = read_json("data/synth/retrieval_test.json");
    cJSON *parts[4] = {cJSON_CreateArray(), cJSON_CreateArray(), cJSON_CreateArray(), cJSON_CreateArray()};
    int i = 0;
    for (cJSON *e = train ? train->child : NULL; e; e = e->next, i++)
        cJSON_AddItemToArray(parts[i % 2], cJSON_Duplicate(e, true));
    i = 0;
    for (cJSON *e = test ? test->child : NULL; e; e = e->next, i++)
        cJSON_AddItemToArray(parts[2 + (i >= 3)], cJSON_Duplicate(e, true));
    static const char *const names[4] = {"train_a", "train_b", "val", "test"};
    for (int k = 0; k < 4; k++) {
        char path[128];
        snprintf(path, sizeof path, "data/finetune/coco_karpathy_%s.json", names[k]);
        write_json(path, parts[k]);
        cJSON_Delete(parts[k]);
    }
    cJSON_Delete(train), cJSON_Delete(test);
}

/* REFER from synth's grounding files (boxes inline there): the first
 * N_TRAIN_REFS train expressions, N_TEST_REFS test ones split val, testA,
 * testB; the official {image, text, ref_id} entries without boxes. */
static void write_refer(void) {
    mkdir("data/finetune/refcoco+", 0777);
    cJSON *src[2] = {read_json("data/synth/grounding_train.json"), read_json("data/synth/grounding_test.json")};
    cJSON *images = cJSON_CreateArray(), *anns = cJSON_CreateArray();
    cJSON *files[3] = {cJSON_CreateArray(), cJSON_CreateArray(), cJSON_CreateArray()}; /* train, val, test */
    xv_test_ref refs[N_TRAIN_REFS + N_TEST_REFS];
    int n = 0;
    static const char *const test_split[3] = {"val", "testA", "testB"};
    for (int s = 0; s < 2; s++) {
        int k = 0;
        for (cJSON *e = src[s] ? src[s]->child : NULL; e && k < (s ? N_TEST_REFS : N_TRAIN_REFS); e = e->next, k++) {
            const int ref_id = 1 + n, ann_id = 1000 + n, image_id = 100 + n;
            const char *split = s ? test_split[k * 3 / N_TEST_REFS] : "train";
            refs[n++] = (xv_test_ref){ref_id, ann_id, image_id, split};
            cJSON *im = cJSON_CreateObject();
            cJSON_AddNumberToObject(im, "id", image_id);
            cJSON_AddItemToObject(im, "width", cJSON_Duplicate(cJSON_GetObjectItem(e, "width"), true));
            cJSON_AddItemToObject(im, "height", cJSON_Duplicate(cJSON_GetObjectItem(e, "height"), true));
            cJSON_AddItemToArray(images, im);
            cJSON *an = cJSON_CreateObject();
            cJSON_AddNumberToObject(an, "id", ann_id);
            cJSON_AddNumberToObject(an, "image_id", image_id);
            cJSON_AddItemToObject(an, "bbox", cJSON_Duplicate(cJSON_GetObjectItem(e, "bbox"), true));
            cJSON_AddItemToArray(anns, an);
            cJSON *entry = cJSON_CreateObject();
            cJSON_AddItemToObject(entry, "image", cJSON_Duplicate(cJSON_GetObjectItem(e, "image"), true));
            cJSON_AddItemToObject(entry, "text", cJSON_Duplicate(cJSON_GetObjectItem(e, "text"), true));
            cJSON_AddNumberToObject(entry, "ref_id", ref_id);
            cJSON_AddItemToArray(files[!s ? 0 : strcmp(split, "val") ? 2 : 1], entry);
        }
    }
    CHECK(n == N_TRAIN_REFS + N_TEST_REFS, "synth gave %d expressions", n);
    xv_test_write_refs("data/finetune/refcoco+/refs(unc).p", refs, n);
    cJSON *inst = cJSON_CreateObject();
    cJSON_AddItemToObject(inst, "images", images);
    cJSON_AddItemToObject(inst, "annotations", anns);
    cJSON_AddItemToObject(inst, "categories", cJSON_CreateArray());
    write_json("data/finetune/refcoco+/instances.json", inst);
    static const char *const names[3] = {"train", "val", "test"};
    for (int k = 0; k < 3; k++) {
        char path[128];
        snprintf(path, sizeof path, "data/finetune/refcoco+_%s.json", names[k]);
        write_json(path, files[k]);
        cJSON_Delete(files[k]);
    }
    xv_test_write_file("data/finetune/refcoco+/dets.json", "{}");
    cJSON_Delete(inst), cJSON_Delete(src[0]), cJSON_Delete(src[1]);
}

static int count_lines(const char *path) {
    char *t = xv_test_read_file(path, NULL);
    int n = 0;
    for (const char *p = t; p && *p; p++) n += *p == '\n';
    free(t);
    return n;
}

static bool make_world(void) {
    xv_test_cli_result r = xv_test_cli(".", "synth --out data/synth --seed 3 --images 24 --test-images 6 --size 64 "
                                            "--captions 2 --objects 2:2 --threads 1",
                                       NULL);
    CHECK(r.status == 0, "synth: %s", r.err);
    xv_test_cli_free(&r);
    if (xv_test_failures) return false;
    mkdir("data/bert-tiny", 0777), mkdir("data/pretrain", 0777), mkdir("data/finetune", 0777);
    char *vocab = xv_test_read_file("data/synth/vocab.txt", NULL);
    CHECK(vocab && xv_test_write_file("data/bert-tiny/vocab.txt", vocab), "text_encoder vocab.txt");
    free(vocab);
    split_lines("data/synth/pretrain_captions.jsonl", "data/pretrain/captions_%d.jsonl", 2);
    split_lines("data/synth/pretrain_regions.jsonl", "data/pretrain/regions_%d.jsonl", 1);
    write_configs(count_lines("data/bert-tiny/vocab.txt"));
    write_retrieval();
    write_refer();
    return xv_test_failures == 0;
}

/* `xvlm ARGS` from the data folder: its stdout (caller frees), NULL on failure. */
static char *run(const char *args) {
    xv_test_cli_result r = xv_test_cli(".", args, NULL);
    CHECK(r.status == 0, "xvlm %s: status %d\n%s", args, r.status, r.err);
    char *out = r.status == 0 ? r.out : NULL;
    if (!out) free(r.out);
    free(r.err);
    return out;
}

/* The "after" dict of DIR/result.json equals the one `evaluate --json` printed. */
static void expect_same_dict(const char *dir, const char *printed, const char *const *keys) {
    char path[256];
    snprintf(path, sizeof path, "%s/result.json", dir);
    cJSON *res = read_json(path), *ev = printed ? cJSON_Parse(printed) : NULL;
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(res, "after");
    CHECK(after && ev && cJSON_Compare(after, ev, true), "evaluate --config gives the dict fine-tuning wrote for its "
                                                         "last epoch:\n%s\n%s",
          printed ? printed : "(none)", path);
    for (int i = 0; keys[i]; i++) CHECK(cJSON_GetObjectItemCaseSensitive(ev, keys[i]), "dict key %s", keys[i]);
    cJSON_Delete(res), cJSON_Delete(ev);
}

/* match and ground open the model written at `dir` (a folder or one file). */
static void expect_opens(const char *model) {
    char args[512];
    snprintf(args, sizeof args, "match --model %s --image data/synth/images/test_000000.jpg --text 'a red circle' "
                                "--json --threads 1", model);
    char *out = run(args);
    CHECK(out && strstr(out, "itm_prob"), "match on %s: %s", model, out ? out : "");
    free(out);
    snprintf(args, sizeof args, "ground --model %s --image data/synth/images/test_000000.jpg --text 'the circle' "
                                "--json --threads 1", model);
    out = run(args);
    CHECK(out && strstr(out, "\"box\""), "ground on %s: %s", model, out ? out : "");
    free(out);
}

int main(void) {
    if (!getenv("XV_BIN")) return xv_test_skip("XV_BIN (the xvlm program) not set");
    char cwd[4096], dir[256];
    if (!getcwd(cwd, sizeof cwd) || !xv_test_scratch_dir("xv_official_world", dir, sizeof dir) || chdir(dir) != 0)
        return xv_test_skip("no scratch folder");
    if (!make_world()) return xv_test_finish("test_official_world");

    free(run("pretrain --config configs/Pretrain_tiny.yaml --output-dir output/pretrain --threads 1 --quiet"));
    free(run("finetune retrieval --config configs/Retrieval_tiny.yaml --init output/pretrain/model "
             "--output-dir output/retrieval --threads 1 --quiet"));
    /* the retrieval model as one file: a folder's weights.safetensors carries its config and vocab */
    free(run("finetune grounding --config configs/Grounding_bbox_tiny.yaml "
             "--init output/retrieval/model/weights.safetensors --output-dir output/grounding --threads 1 --quiet"));
    if (xv_test_failures) return xv_test_finish("test_official_world");

    char *ev = run("evaluate retrieval --config configs/Retrieval_tiny.yaml --model output/retrieval/model --json "
                   "--threads 1");
    static const char *const ret_keys[] = {"val", "test", NULL};
    expect_same_dict("output/retrieval", ev, ret_keys);
    free(ev);
    ev = run("evaluate grounding --config configs/Grounding_bbox_tiny.yaml --model output/grounding/model --json "
             "--output-dir output/eval_grounding --threads 1");
    static const char *const grd_keys[] = {"val_d", "testA_d", "testB_d", NULL};
    expect_same_dict("output/grounding", ev, grd_keys);
    free(ev);
    cJSON *results = read_json("output/eval_grounding/result/grounding_bbox_eval.json");
    int n_ref = 0;
    for (const cJSON *e = results ? results->child : NULL; e; e = e->next)
        n_ref += cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "ref_id"));
    CHECK(n_ref == N_TEST_REFS, "result/grounding_bbox_eval.json: %d of %d expressions with ref_id", n_ref,
          N_TEST_REFS);
    cJSON_Delete(results);
    /* the table with the per-split accuracy, without --json */
    char *table = run("evaluate grounding --config configs/Grounding_bbox_tiny.yaml --model output/grounding/model "
                      "--threads 1");
    CHECK(table && strstr(table, "val_d") && strstr(table, "testA_d") && strstr(table, "testB_d"),
          "grounding reports val / testA / testB: %s", table ? table : "");
    free(table);

    expect_opens("output/pretrain/model");
    expect_opens("output/retrieval/model");
    expect_opens("output/grounding/model");
    expect_opens("output/grounding/model/weights.safetensors");

    if (chdir(cwd) == 0 && xv_test_failures == 0) xv_test_remove_dir(dir);
    return xv_test_finish("test_official_world");
}
