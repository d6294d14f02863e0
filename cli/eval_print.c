#include "eval_print.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "data/json_file.h"
#include "tasks/visualize.h"

/* ---- tables ---- */

static void retrieval_line(FILE *f, const char *name, const xv_retrieval_result *r) {
    fprintf(f, "  %-22s %6.1f %6.1f %6.1f   %6.1f %6.1f %6.1f   %6.1f\n", name, r->img_r1, r->img_r5, r->img_r10,
            r->txt_r1, r->txt_r5, r->txt_r10, r->r_mean);
}

void xv_print_retrieval_table(FILE *f, const xv_eval_retrieval_result *r) {
    fprintf(f, "zero-shot retrieval: %lld images, %lld texts (ITM re-ranks the ITC top %d)\n", (long long)r->n_images,
            (long long)r->n_texts, r->k_test);
    fprintf(f, "  %-22s %20s   %20s   %6s\n", "", "text -> image", "image -> text", "");
    fprintf(f, "  %-22s %6s %6s %6s   %6s %6s %6s   %6s\n", "score", "R@1", "R@5", "R@10", "R@1", "R@5", "R@10",
            "r_mean");
    retrieval_line(f, "ITC", &r->itc);
    retrieval_line(f, "ITC top-k + ITM", &r->itm);
    retrieval_line(f, "chance", &r->chance);
    fprintf(f, "  (%.1f s images, %.1f s texts, %.1f s for %lld ITM pairs)\n", r->seconds_images, r->seconds_texts,
            r->seconds_itm, (long long)r->itm_pairs);
}

/* grounding_eval_bbox's dict, when the set has REFER splits. */
static bool refer_splits(const xv_grounding_set *s, const xv_eval_grounding_result *r, xv_grounding_splits *sp) {
    xv_eval_grounding_splits(s, r, sp);
    return sp->n_val + sp->n_testA + sp->n_testB > 0;
}

void xv_print_grounding_table(FILE *f, const xv_grounding_set *s, const xv_eval_grounding_result *r) {
    fprintf(f, "grounding: %lld expressions (correct = IoU >= 0.5, inclusive pixels)\n", (long long)r->n);
    fprintf(f, "  %-22s %9s %9s\n", "predictor", "accuracy", "mean IoU");
    fprintf(f, "  %-22s %8.1f%% %9.3f\n", "box head", r->accuracy, r->mean_iou);
    if (r->has_baseline)
        fprintf(f, "  %-22s %8.1f%% %9.3f   (x %.3f, y %.3f, w %.3f, h %.3f of the image)\n", "mean training box",
                r->baseline_accuracy, r->baseline_mean_iou, r->baseline_box[0], r->baseline_box[1],
                r->baseline_box[2], r->baseline_box[3]);
    xv_grounding_splits sp;
    if (refer_splits(s, r, &sp))
        fprintf(f, "  REFER splits (fractions): val_d %.3f (%lld), testA_d %.3f (%lld), testB_d %.3f (%lld)\n",
                sp.val_d, (long long)sp.n_val, sp.testA_d, (long long)sp.n_testA, sp.testB_d, (long long)sp.n_testB);
    fprintf(f, "  (%.1f s images, %.1f s texts, %.1f s boxes)\n", r->seconds_images, r->seconds_texts,
            r->seconds_boxes);
}

/* ---- JSON ---- */

static cJSON *recall_json(const xv_retrieval_result *r) {
    cJSON *o = cJSON_CreateObject();
    double v[XV_RECALL_N];
    xv_recall_values(r, v);
    for (int k = 0; k < XV_RECALL_N; k++) cJSON_AddNumberToObject(o, xv_recall_keys[k], v[k]);
    return o;
}

/* Pretty, with a final newline, atomic (a run's result files). */
static xv_status write_json(const char *path, cJSON *root) {
    return xv_json_write_file(NULL, path, root, XV_JSON_PRETTY | XV_JSON_NEWLINE, XV_FS_DURABLE);
}

xv_status xv_write_retrieval_json(const char *path, const char *label, const xv_eval_retrieval_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", "retrieval");
    cJSON_AddStringToObject(o, "model", label);
    cJSON_AddNumberToObject(o, "images", (double)r->n_images);
    cJSON_AddNumberToObject(o, "texts", (double)r->n_texts);
    cJSON_AddNumberToObject(o, "k_test", r->k_test);
    cJSON_AddItemToObject(o, "itc", recall_json(&r->itc));
    cJSON_AddItemToObject(o, "itm", recall_json(&r->itm));
    cJSON_AddItemToObject(o, "chance", recall_json(&r->chance));
    cJSON_AddNumberToObject(o, "itm_pairs", (double)r->itm_pairs);
    cJSON_AddNumberToObject(o, "seconds", r->seconds_images + r->seconds_texts + r->seconds_itm);
    return write_json(path, o);
}

xv_status xv_write_grounding_json(const char *path, const char *label, const xv_grounding_set *s,
                                  const xv_eval_grounding_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", "grounding");
    cJSON_AddStringToObject(o, "model", label);
    cJSON_AddNumberToObject(o, "expressions", (double)r->n);
    cJSON_AddNumberToObject(o, "accuracy", r->accuracy);
    cJSON_AddNumberToObject(o, "mean_iou", r->mean_iou);
    if (r->has_baseline) {
        cJSON_AddNumberToObject(o, "baseline_accuracy", r->baseline_accuracy);
        cJSON_AddNumberToObject(o, "baseline_mean_iou", r->baseline_mean_iou);
        cJSON_AddItemToObject(o, "baseline_box", cJSON_CreateDoubleArray(r->baseline_box, 4));
    }
    xv_grounding_splits sp;
    if (refer_splits(s, r, &sp)) {
        const double v[3] = {sp.val_d, sp.testA_d, sp.testB_d};
        static const char *const k[3] = {"val_d", "testA_d", "testB_d"};
        for (int i = 0; i < 3; i++)
            if (isfinite(v[i])) cJSON_AddNumberToObject(o, k[i], v[i]);
            else cJSON_AddNullToObject(o, k[i]);
    }
    cJSON_AddNumberToObject(o, "seconds", r->seconds_images + r->seconds_texts + r->seconds_boxes);
    cJSON *items = cJSON_AddArrayToObject(o, "results");
    for (int64_t i = 0; i < r->n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (s->ref_id[i] >= 0) cJSON_AddNumberToObject(e, "ref_id", (double)s->ref_id[i]);
        cJSON_AddStringToObject(e, "image", s->image_paths[s->image[i]]);
        cJSON_AddStringToObject(e, "text", s->texts[i]);
        cJSON_AddItemToObject(e, "bbox", cJSON_CreateDoubleArray(s->bbox[i], 4));
        cJSON_AddItemToObject(e, "pred", cJSON_CreateDoubleArray(r->pred[i], 4));
        cJSON_AddNumberToObject(e, "iou", r->iou[i]);
        cJSON_AddItemToArray(items, e);
    }
    return write_json(path, o);
}

/* ---- pictures ---- */

xv_status xv_draw_retrieval_examples(const char *png, const xv_retrieval_set *s, const xv_eval_retrieval_result *r,
                                     int n_rows) {
    if (n_rows > r->n_texts) n_rows = (int)r->n_texts;
    xv_vis_retrieval_row *rows = calloc((size_t)(n_rows > 0 ? n_rows : 1), sizeof *rows);
    uint8_t *taken = malloc((size_t)r->n_images);
    if (!rows || !taken) {
        free(rows);
        free(taken);
        return xv_error(XV_ERR_NOMEM, "out of memory");
    }
    const int top = r->n_images < 5 ? (int)r->n_images : 5;
    for (int q = 0; q < n_rows; q++) {
        int64_t t = (int64_t)q * r->n_texts / n_rows;
        const float *row = r->score_t2i + t * r->n_images;
        xv_vis_retrieval_row *vr = &rows[q];
        vr->query = s->texts[t];
        vr->n_hits = top;
        memset(taken, 0, (size_t)r->n_images);
        for (int k = 0; k < top; k++) {
            /* np.argsort(score)[::-1]: descending, ties to the higher index. */
            int64_t best = -1;
            for (int64_t i = 0; i < r->n_images; i++)
                if (!taken[i] && (best < 0 || row[i] >= row[best])) best = i;
            taken[best] = 1;
            vr->image_path[k] = s->image_paths[best];
            vr->score[k] = row[best];
            vr->is_match[k] = best == s->txt2img[t];
        }
    }
    xv_status st = xv_vis_retrieval_rows(png, rows, n_rows, 0,
                                         "text -> image: top 5 by ITM re-rank (score = ITM logit; green = the "
                                         "caption's image)");
    free(rows);
    free(taken);
    return st;
}

xv_status xv_draw_grounding_examples(const char *png, const xv_grounding_set *s, const xv_eval_grounding_result *r,
                                     int n) {
    if (n > r->n) n = (int)r->n;
    xv_vis_ground_item *items = calloc((size_t)(n > 0 ? n : 1), sizeof *items);
    if (!items) return xv_error(XV_ERR_NOMEM, "out of memory");
    int64_t hits = 0;
    for (int i = 0; i < n; i++) {
        items[i].image_path = s->image_paths[s->image[i]];
        items[i].text = s->texts[i];
        memcpy(items[i].pred, r->pred[i], sizeof items[i].pred);
        memcpy(items[i].gt, s->bbox[i], sizeof items[i].gt);
        items[i].iou = r->iou[i];
        hits += r->iou[i] >= 0.5;
    }
    char title[160];
    snprintf(title, sizeof title, "grounding: the first %d test expressions (%lld correct; %.1f%% on all %lld)", n,
             (long long)hits, r->accuracy, (long long)r->n);
    xv_status st = xv_vis_grounding_grid(png, items, n, 0, 0, title);
    free(items);
    return st;
}

void xv_eval_progress_stderr(void *user, const char *stage, int64_t done, int64_t total) {
    static int tty = -1;
    if (tty < 0) tty = isatty(2);
    if (tty) {
        fprintf(stderr, "\rxvlm %s: %s %lld/%lld%s", (const char *)user, stage, (long long)done, (long long)total,
                done == total ? "\n" : "");
    } else if (done == total) {
        fprintf(stderr, "xvlm %s: %s %lld/%lld done\n", (const char *)user, stage, (long long)done, (long long)total);
    }
    fflush(stderr);
}
