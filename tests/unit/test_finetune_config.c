/* Reading Retrieval.yaml / Grounding_bbox.yaml keys: the official defaults
 * for what is absent, paths as written (relative ones from the working
 * directory, as the official scripts), every file of a list, val_file and the
 * REFER keys, and refusals that name the file, line and key. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "train/finetune.h"
#include "train/finetune_task.h"

static char dir[] = "/tmp/xv_test_ftcfg_XXXXXX";

static const char *write_yaml(const char *text) {
    static char path[600];
    snprintf(path, sizeof path, "%s/task.yaml", dir);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static void test_defaults_and_keys(void) {
    xv_finetune_config d = xv_finetune_config_default(xv_finetune_task_find("retrieval"));
    CHECK(d.optim.lr == 3e-5 && d.optim.weight_decay == 0.01 && d.optim.lr_mult == 1 && d.epochs == 10 &&
              d.warmup == 0.1 && d.warmup_is_fraction && d.k_test == 256 && d.max_words == 30 && d.max_tokens == 40,
          "the official fine-tuning defaults");

    xv_finetune_config c;
    const char *p = write_yaml("train_file: ['train.json', 'more.json']\ntest_file: /abs/test.json\n"
                               "val_file: data/val.json\nrefcoco_data: 'data/finetune/'\n"
                               "batch_size_train: 8\nbatch_size: 99\noptimizer: {opt: adamW, lr: 1e-4}\n"
                               "schedular: {epochs: 3, num_warmup_steps: 12}\nhere_only: 1\n");
    char *notes = NULL;
    size_t len = 0;
    FILE *nf = open_memstream(&notes, &len);
    CHECK_OK(xv_finetune_config_load(p, "retrieval", &c, nf));
    fclose(nf);
    CHECK(c.train_file.n == 2 && !strcmp(c.train_file.paths[0], "train.json") &&
              !strcmp(c.train_file.paths[1], "more.json") && c.test_file.n == 1 &&
              !strcmp(c.test_file.paths[0], "/abs/test.json"),
          "paths: every train file, as written (relative to the working directory)");
    CHECK(c.val_file.n == 1 && !strcmp(c.val_file.paths[0], "data/val.json"), "retrieval reads val_file");
    CHECK(!c.refcoco_data, "retrieval leaves the REFER keys alone");
    CHECK(c.batch_size == 8 && c.optim.lr == 1e-4 && c.optim.weight_decay == 0.01 && c.epochs == 3 &&
              c.warmup == 12 && !c.warmup_is_fraction,
          "retrieval reads batch_size_train; an integer warmup is a step count");
    CHECK(notes && strstr(notes, "\"here_only\"") && !strstr(notes, "batch_size"), "notes: %s", notes ? notes : "");
    free(notes);
    xv_finetune_config_free(&c);

    CHECK_OK(xv_finetune_config_load(p, "grounding", &c, NULL));
    CHECK(c.batch_size == 99 && c.careful_hflip, "grounding reads batch_size");
    CHECK(c.refcoco_data && !strcmp(c.refcoco_data, "data/finetune/") && c.val_file.n == 0,
          "grounding reads refcoco_data, not val_file");
    xv_finetune_config_free(&c);
}

static void refused(const char *text, const char *expect) {
    xv_finetune_config c;
    xv_status st = xv_finetune_config_load(write_yaml(text), "grounding", &c, NULL);
    CHECK(st != XV_OK && strstr(xv_error_message(), expect), "%s: status %d, message: %s", text, (int)st,
          xv_error_message());
    CHECK(c.train_file.paths == NULL && c.test_file.paths == NULL, "a refused config leaves the output zeroed");
}

static void test_refusals(void) {
    refused("test_file: t.json\n", "\"train_file\" is missing");
    refused("train_file: a\ntest_file: t\ncareful_hflip: yes\n", "task.yaml:3: \"careful_hflip\" must be true or false");
    refused("train_file: a\ntest_file: t\nschedular: {num_warmup_steps: 1.5}\n",
            "task.yaml:3: \"schedular.num_warmup_steps\" must be an integer step count");
    refused("train_file: a\ntest_file: t\noptimizer: {lr: 2}\n", "\"optimizer.lr\" = 2 outside [0, 1]");
    refused("train_file: [a, 3]\ntest_file: t\n", "task.yaml:1: \"train_file[1]\" must be a string");
    refused("train_file: a\ntest_file: t\nbatch_size: 1\n", "\"batch_size\" = 1 outside [2,");
    refused("train_file: a\ntest_file: t\nrefcoco_data: [x]\n", "task.yaml:3: \"refcoco_data\" must be");
}

/* The official task YAML's model keys are known (the model comes from
 * --init; text_encoder kept for its vocab.txt), and the command-line
 * overrides replace what they name. */
static void test_model_keys_and_overrides(void) {
    const char *p = write_yaml("train_file: a\ntest_file: [t1, t2]\nimage_root: img\nuse_swin: True\n"
                               "vision_config: 'configs/config_swinB_384.json'\ntext_encoder: 'data/bert-base-uncased'\n"
                               "text_config: 'configs/config_bert.json'\nbatch_size_test: 32\nembed_dim: 256\n");
    char *notes = NULL;
    size_t len = 0;
    FILE *nf = open_memstream(&notes, &len);
    xv_finetune_config c;
    CHECK_OK(xv_finetune_config_load(p, "retrieval", &c, nf));
    fclose(nf);
    CHECK(notes && len == 0, "no notes for the official model keys: %s", notes ? notes : "");
    free(notes);
    CHECK(c.text_encoder && !strcmp(c.text_encoder, "data/bert-base-uncased"), "text_encoder kept");
    CHECK_OK(xv_finetune_config_override(&c, "other.json", NULL, "refer/", 7));
    CHECK(c.test_file.n == 1 && !strcmp(c.test_file.paths[0], "other.json") && !strcmp(c.image_root, "img") &&
              !strcmp(c.refcoco_data, "refer/") && c.k_test == 7,
          "--data replaces the test_file list, an absent flag leaves its key");
    xv_finetune_config_free(&c);
    CHECK(xv_finetune_config_load(p, "vqa_x", &c, NULL) == XV_ERR_INVALID_ARG &&
              strstr(xv_error_message(), "no fine-tuning task 'vqa_x' (retrieval, grounding"),
          "an unknown task is named with the known ones: %s", xv_error_message());
}

/* The evaluation rounds end where the official loops break: every
 * eval_steps, at each epoch's end, at num_training_steps. */
static void test_eval_rounds(void) {
    xv_ft f = {.steps_per_epoch = 10, .eval_every = 4, .total_steps = 25};
    /* rounds end at 4, 8, 10, 12, 16, 20, 24, 25 */
    const int64_t ends[] = {4, 8, 10, 12, 16, 20, 24, 25};
    int n = 0;
    for (int64_t s = 1; s <= 25; s++)
        if (xv_ft_round_ends(&f, s)) CHECK(n < 8 && ends[n++] == s, "step %lld ends a round", (long long)s);
    CHECK(n == 8, "8 rounds, not %d", n);
    CHECK(xv_ft_rounds_through(&f, 3) == 0 && xv_ft_rounds_through(&f, 10) == 3 &&
              xv_ft_rounds_through(&f, 11) == 3 && xv_ft_rounds_through(&f, 24) == 7 &&
              xv_ft_rounds_through(&f, 25) == 8,
          "rounds counted once where eval_steps and the epoch end meet");
    xv_ft e = {.steps_per_epoch = 10, .eval_every = 10, .total_steps = 30}; /* no eval_steps: one round an epoch */
    CHECK(xv_ft_rounds_through(&e, 29) == 2 && xv_ft_rounds_through(&e, 30) == 3 && !xv_ft_round_ends(&e, 15),
          "without eval_steps a round is an epoch");
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    test_defaults_and_keys();
    test_refusals();
    test_model_keys_and_overrides();
    test_eval_rounds();
    char path[600];
    snprintf(path, sizeof path, "%s/task.yaml", dir);
    unlink(path);
    rmdir(dir);
    return xv_test_finish("test_finetune_config");
}
