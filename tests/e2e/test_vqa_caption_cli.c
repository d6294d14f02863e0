/* `xvlm vqa` and `xvlm caption` on the tiny official models of
 * shared/fixtures/{vqa,captioning}: the ranking printed is a distribution
 * over the k candidates (descending, summing to 1, answers from the list),
 * captions do not depend on the images batched with them, and every bad
 * input named by the issue gets exit status 1 (2 for usage) and a message
 * that says what is wrong. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char scratch[512], answers[600];
static const char *fx;

static void vqa(void) {
    char args[2048];
    snprintf(args, sizeof args, "vqa --model '%s/vqa' --image '%s/images/rgb_baseline.jpg' --question 'What is the woman "
             "holding?' --answers '%s' --k 12 --top 12 --json", fx, fx, answers);
    cJSON *j = xv_test_cli_json(scratch, args);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "answers");
    CHECK(cJSON_GetArraySize(list) == 12, "12 answers printed (k 12), got %d", cJSON_GetArraySize(list));
    double sum = 0, prev = 2;
    bool seen[12] = {0};
    for (const cJSON *a = list ? list->child : NULL; a; a = a->next) {
        double p = cJSON_GetObjectItemCaseSensitive(a, "prob")->valuedouble;
        int idx = cJSON_GetObjectItemCaseSensitive(a, "index")->valueint;
        CHECK(p <= prev && p >= 0, "probabilities descend (%g after %g)", p, prev);
        CHECK(idx >= 0 && idx < 12 && !seen[idx], "answer index %d is new and in the list", idx);
        if (idx >= 0 && idx < 12) seen[idx] = true;
        prev = p;
        sum += p;
    }
    CHECK(fabs(sum - 1) < 1e-5, "probabilities over all 12 candidates sum to %.8f, not 1", sum);
    cJSON_Delete(j);

    snprintf(args, sizeof args, "vqa --model '%s/vqa' --image '%s/images/rgb_baseline.jpg' --question ' ?! ' --answers '%s'",
             fx, fx, answers);
    xv_test_cli_refused(scratch, args, 1, "empty");
    snprintf(args, sizeof args, "vqa --model '%s/vqa' --image '%s/images/rgb_baseline.jpg' --question '' --answers '%s'",
             fx, fx, answers);
    xv_test_cli_refused(scratch, args, 1, "question is empty");
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad_answers.json", scratch);
    xv_test_write_file(bad, "[\"yes\", 3]");
    snprintf(args, sizeof args, "vqa --model '%s/vqa' --image '%s/images/rgb_baseline.jpg' --question 'what' --answers '%s'",
             fx, fx, bad);
    xv_test_cli_refused(scratch, args, 1, "entry 1 is not a non-empty string");
    xv_test_write_file(bad, "{\"answers\": [\"yes\"]}");
    xv_test_cli_refused(scratch, args, 1, "JSON list of answer strings");
    snprintf(args, sizeof args, "vqa --model '%s/vqa' --image '%s/no_such.jpg' --question 'what' --answers '%s'", fx,
             scratch, answers);
    xv_test_cli_refused(scratch, args, 1, "no_such.jpg");
    snprintf(args, sizeof args, "vqa --model '%s/captioning' --image '%s/images/rgb_baseline.jpg' --question 'what' "
             "--answers '%s'", fx, fx, answers);
    xv_test_cli_refused(scratch, args, 1, "not a VQA model");
}

/* The caption of each image when captioned together with others. */
static void caption(void) {
    char args[2048];
    const char *imgs[] = {"rgb_baseline.jpg", "gray.png", "wide_500x40.png"};
    char *alone[3] = {0};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "caption --model '%s/captioning' --image '%s/images/%s' --json", fx, fx, imgs[i]);
        cJSON *j = xv_test_cli_json(scratch, args);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "results"), 0),
                                                          "caption");
        CHECK(cJSON_IsString(c) && *c->valuestring, "%s: a caption", imgs[i]);
        alone[i] = cJSON_IsString(c) ? strdup(c->valuestring) : NULL;
        cJSON_Delete(j);
    }
    snprintf(args, sizeof args, "caption --model '%s/captioning' --image '%s/images/%s' --image '%s/images/%s' "
             "--image '%s/images/%s' --json", fx, fx, imgs[0], fx, imgs[1], fx, imgs[2]);
    cJSON *j = xv_test_cli_json(scratch, args);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
    CHECK(cJSON_GetArraySize(res) == 3, "3 results");
    for (int i = 0; i < 3 && cJSON_GetArraySize(res) == 3; i++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(res, i), "caption");
        CHECK(cJSON_IsString(c) && alone[i] && !strcmp(c->valuestring, alone[i]),
              "%s: \"%s\" in a batch of 3, \"%s\" alone", imgs[i], cJSON_IsString(c) ? c->valuestring : "?",
              alone[i] ? alone[i] : "?");
    }
    cJSON_Delete(j);
    for (int i = 0; i < 3; i++) free(alone[i]);

    snprintf(args, sizeof args, "caption --model '%s/captioning' --image '%s/images/gray.png' --beam 0", fx, fx);
    xv_test_cli_refused(scratch, args, 2, "--beam");
    /* the fixture's prompt is 10 ids ([CLS] a p ##i ##c ##t ##u ##r ##e of) */
    snprintf(args, sizeof args, "caption --model '%s/captioning' --image '%s/images/gray.png' --max-len 10", fx, fx);
    xv_test_cli_refused(scratch, args, 1, "leaves no room for a caption after the prompt");
    snprintf(args, sizeof args, "caption --model '%s/captioning' --image '%s/no_such.png'", fx, scratch);
    xv_test_cli_refused(scratch, args, 1, "no_such.png");
    snprintf(args, sizeof args, "caption --model '%s/captioning' --image '%s/images/gray.png' --min-len 30", fx, fx);
    xv_test_cli_refused(scratch, args, 1, "min_length 30");
}

int main(void) {
    fx = xv_fixtures_dir();
    if (!fx) return xv_test_skip("fixtures absent");
    if (!getenv("XV_BIN")) return xv_test_skip("XV_BIN not set");
    if (!xv_test_scratch_dir("xv_vqa_caption", scratch, sizeof scratch)) return xv_test_finish("test_vqa_caption_cli");
    snprintf(answers, sizeof answers, "%s/answer_list.json", scratch);
    /* the fixture's answer list (config.json info.answer_list) */
    xv_test_write_file(answers, "[\"yes\", \"no\", \"2\", \"red\", \"blue\", \"two dogs\", \"on table\", \"on grass\", "
                                "\"man\", \"woman\", \"frisbee\", \"playing frisbee\"]");
    vqa();
    caption();
    xv_test_remove_dir(scratch);
    return xv_test_finish("test_vqa_caption_cli");
}
