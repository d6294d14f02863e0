/* The world's VQA and captioning files, in the official JSON formats
 * (vqa-captioning sheet §2.3, §3.3): questions about each scene with their
 * answers, and the whole-image captions again as captioning data.
 *
 * Questions per image (deterministic, from the scene):
 *   - "what colour is the <shape>?" for every shape shown exactly once
 *     (answer: its colour);
 *   - "how many <shapes> are there?" for the first object's shape (a digit);
 *   - "is there a <colour> <shape>?" for the first object (yes) and for the
 *     same shape in the next colour not shown with it (no).
 * Training answers are the 10-annotator list the VQA format carries (all
 * agreeing); test entries add question_id. answer_list.json holds every
 * answer the world can give. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/json_file.h"
#include "data/synth_dataset.h"

#define ANNOTATORS 10

static int count_shape(const xv_synth_scene *s, xv_synth_shape shape) {
    int n = 0;
    for (int k = 0; k < s->n; k++) n += s->obj[k].shape == shape;
    return n;
}

static bool shown(const xv_synth_scene *s, xv_synth_shape shape, xv_synth_colour colour) {
    for (int k = 0; k < s->n; k++)
        if (s->obj[k].shape == shape && s->obj[k].colour == colour) return true;
    return false;
}

static void add_question(cJSON *list, const char *image, const char *question, const char *answer, bool test,
                         int *qid) {
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "image", image);
    cJSON_AddStringToObject(q, "question", question);
    if (test) cJSON_AddNumberToObject(q, "question_id", (*qid)++);
    else cJSON_AddStringToObject(q, "dataset", "vqa");
    cJSON *a = cJSON_AddArrayToObject(q, "answer");
    for (int k = 0; k < ANNOTATORS; k++) cJSON_AddItemToArray(a, cJSON_CreateString(answer));
    cJSON_AddItemToArray(list, q);
}

static void image_questions(const xv_synth_dataset *d, int i, cJSON *list, int *qid) {
    const xv_synth_scene *s = &d->img[i].scene;
    const bool test = xv_synth_is_test(d, i);
    char image[64], q[160], a[32];
    xv_synth_image_path(d, i, image, sizeof image);
    for (int k = 0; k < s->n; k++) {
        if (count_shape(s, s->obj[k].shape) != 1) continue;
        snprintf(q, sizeof q, "what colour is the %s?", xv_synth_shape_names[s->obj[k].shape]);
        add_question(list, image, q, xv_synth_colour_names[s->obj[k].colour], test, qid);
    }
    if (s->n < 1) return;
    const xv_synth_object *o = &s->obj[0];
    snprintf(q, sizeof q, "how many %s are there?", xv_synth_shape_plurals[o->shape]);
    snprintf(a, sizeof a, "%d", count_shape(s, o->shape));
    add_question(list, image, q, a, test, qid);
    snprintf(q, sizeof q, "is there a %s %s?", xv_synth_colour_names[o->colour], xv_synth_shape_names[o->shape]);
    add_question(list, image, q, "yes", test, qid);
    for (int c = 1; c < XV_SYNTH_N_COLOURS; c++) {
        const xv_synth_colour other = (xv_synth_colour)((o->colour + c) % XV_SYNTH_N_COLOURS);
        if (shown(s, o->shape, other)) continue;
        snprintf(q, sizeof q, "is there a %s %s?", xv_synth_colour_names[other], xv_synth_shape_names[o->shape]);
        add_question(list, image, q, "no", test, qid);
        break;
    }
}

static cJSON *answer_list(void) {
    cJSON *a = cJSON_CreateArray();
    for (int c = 0; c < XV_SYNTH_N_COLOURS; c++) cJSON_AddItemToArray(a, cJSON_CreateString(xv_synth_colour_names[c]));
    for (int n = 1; n <= XV_SYNTH_MAX_OBJECTS; n++) {
        char s[8];
        snprintf(s, sizeof s, "%d", n);
        cJSON_AddItemToArray(a, cJSON_CreateString(s));
    }
    cJSON_AddItemToArray(a, cJSON_CreateString("yes"));
    cJSON_AddItemToArray(a, cJSON_CreateString("no"));
    return a;
}

/* Captioning: {image, caption, image_id} per training caption; a test image
 * once with its captions as the list of references. */
static void image_captions(const xv_synth_dataset *d, int i, cJSON *list) {
    char image[64];
    xv_synth_image_path(d, i, image, sizeof image);
    if (xv_synth_is_test(d, i)) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "image", image);
        cJSON_AddItemToObject(e, "caption", cJSON_CreateStringArray((const char *const *)d->img[i].captions,
                                                                    d->p.captions_per_image));
        cJSON_AddNumberToObject(e, "image_id", i);
        cJSON_AddItemToArray(list, e);
        return;
    }
    for (int k = 0; k < d->p.captions_per_image; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "image", image);
        cJSON_AddStringToObject(e, "caption", d->img[i].captions[k]);
        cJSON_AddNumberToObject(e, "image_id", i);
        cJSON_AddItemToArray(list, e);
    }
}

xv_status xv_synth_write_vqa_captioning(const xv_synth_dataset *d, const char *dir) {
    cJSON *vqa[2] = {cJSON_CreateArray(), cJSON_CreateArray()}, *cap[2] = {cJSON_CreateArray(), cJSON_CreateArray()};
    int qid = 0;
    for (int i = 0; i < d->n_train + d->n_test; i++) {
        const int split = xv_synth_is_test(d, i);
        image_questions(d, i, vqa[split], &qid);
        image_captions(d, i, cap[split]);
    }
    /* each file takes its document, written or not */
    const char *const names[4] = {"vqa_train.json", "vqa_test.json", "caption_train.json", "caption_test.json"};
    cJSON *docs[4] = {vqa[0], vqa[1], cap[0], cap[1]};
    xv_status st = XV_OK;
    for (int k = 0; k < 4; k++)
        if (st == XV_OK) st = xv_json_write_file(dir, names[k], docs[k], XV_JSON_COMPACT, XV_FS_NO_FSYNC);
        else cJSON_Delete(docs[k]);
    if (st == XV_OK) st = xv_json_write_file(dir, "answer_list.json", answer_list(), XV_JSON_COMPACT, XV_FS_NO_FSYNC);
    return st;
}
