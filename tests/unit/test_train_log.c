/* The training log (JSON lines, truncation on resume, a killed run's partial
 * last line), the loss-curve PNG and the progress line. */
#include <cairo.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "train/plot.h"
#include "train/train_log.h"

static char dir[64];

static void test_ticks(void) {
    double first, step;
    step = xv_plot_ticks(0, 1, 5, &first);
    CHECK(fabs(step - 0.2) < 1e-12 && first == 0, "[0,1]: step %g first %g", step, first);
    step = xv_plot_ticks(0.631, 0.671, 5, &first);
    CHECK(fabs(step - 0.01) < 1e-12 && fabs(first - 0.64) < 1e-12, "[0.631,0.671]: step %g first %g", step, first);
    step = xv_plot_ticks(3, 2503, 5, &first);
    CHECK(step == 500 && first == 500, "[3,2503]: step %g first %g", step, first);
    step = xv_plot_ticks(-7, -2, 4, &first);
    CHECK(step == 2 && first == -6, "[-7,-2]: step %g first %g", step, first);
}

static xv_update_record record(int64_t step, bool region, double base) {
    xv_update_record r = {.region = region, .step = step, .epoch = step / 10, .loss_itc = base, .loss_itm = base / 4,
                          .loss_mlm = 2 * base, .loss_bbox = region ? base / 2 : 0, .loss_giou = region ? base / 3 : 0,
                          .lr = 1e-4 * step, .lr_large = 2e-4 * step, .grad_norm = 3, .skipped = false, .n_texts = 8,
                          .n_images = region ? 3 : 8, .seconds = 0.5};
    r.loss_total = r.loss_itc + r.loss_itm + r.loss_mlm + r.loss_bbox + r.loss_giou;
    return r;
}

static int count_lines(const char *path, int64_t *max_step) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    *max_step = -1;
    while (getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "step");
        CHECK(cJSON_IsNumber(s), "every line is a JSON record with a step: %s", line);
        if (cJSON_IsNumber(s) && s->valuedouble > *max_step) *max_step = (int64_t)s->valuedouble;
        cJSON_Delete(j);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static void test_log(void) {
    char path[512], png[512];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    snprintf(png, sizeof png, "%s/curves.png", dir);
    const char *names[2] = {"images.bad_json", "regions.corrupt_image"};
    int64_t values[2] = {3, 1};
    xv_train_log *l = NULL;
    CHECK_OK(xv_train_log_open(path, -1, &l));
    for (int s = 0; s < 60 && l; s++) {
        if (s % 2) {
            xv_update_record r = record(s, true, 3.0 - s * 0.03);
            CHECK_OK(xv_train_log_write(l, &r, 0, names, values, 2));
        }
        xv_update_record r = record(s, false, 3.0 - s * 0.04);
        if (s == 7) r.loss_total = NAN, r.skipped = true; /* written as null */
        CHECK_OK(xv_train_log_write(l, &r, s >= 7, names, values, 2));
    }
    xv_train_log_close(l);
    int64_t max_step;
    CHECK(count_lines(path, &max_step) == 90 && max_step == 59, "90 records up to step 59");

    /* one record in full */
    FILE *f = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; f && i < 12 && getline(&line, &cap, f) > 0; i++) /* the 12th line: step 7's image update */
        ;
    if (f) fclose(f);
    cJSON *j = cJSON_Parse(line);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    CHECK(j && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "loss")) &&
              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "skipped")) &&
              !strcmp(cJSON_GetObjectItemCaseSensitive(j, "kind")->valuestring, "image") &&
              cJSON_GetObjectItemCaseSensitive(j, "skipped_updates")->valueint == 1 &&
              cJSON_GetObjectItemCaseSensitive(data, "images.bad_json")->valueint == 3 &&
              cJSON_GetObjectItemCaseSensitive(j, "samples_per_s")->valuedouble == 16,
          "record of step 7: %s", line ? line : "");
    cJSON_Delete(j);
    free(line);

    /* a killed run leaves a partial line; resuming at step 40 keeps steps < 40 only */
    f = fopen(path, "ab");
    if (f) {
        fputs("{\"step\": 60, \"kind\": \"ima", f);
        fclose(f);
    }
    CHECK_OK(xv_train_log_open(path, 40, &l));
    xv_update_record r = record(40, false, 1.0);
    if (l) CHECK_OK(xv_train_log_write(l, &r, 0, names, values, 2));
    xv_train_log_close(l);
    CHECK(count_lines(path, &max_step) == 40 + 20 + 1 && max_step == 40,
          "after the resume truncation: steps 0..39 (60 records) + the new step 40");
    CHECK(access(png, F_OK) != 0, "no plot yet");

    CHECK_OK(xv_train_log_plot(path, png, 5, "test run"));
    cairo_surface_t *s = cairo_image_surface_create_from_png(png);
    CHECK(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS, "the PNG reads back");
    if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
        const int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
        CHECK(w == 3 * 420 && h == 2 * 300 + 36, "3 x 2 panels of 420 x 300 + title: %d x %d", w, h);
        /* the smoothed curve colour appears inside the first panel's plot area */
        cairo_surface_flush(s);
        const unsigned char *px = cairo_image_surface_get_data(s);
        const int stride = cairo_image_surface_get_stride(s);
        int curve = 0;
        for (int y = 36 + 30; y < 36 + 255; y++)
            for (int x = 70; x < 400; x++) {
                uint32_t v;
                memcpy(&v, px + y * stride + 4 * x, 4);
                int red = (v >> 16) & 255, green = (v >> 8) & 255, blue = v & 255;
                curve += blue > 120 && red < 60 && green < 110;
            }
        CHECK(curve > 200, "smoothed ITC curve drawn (%d dark-blue pixels)", curve);
    }
    cairo_surface_destroy(s);
}

static void test_progress(void) {
    xv_progress *p = xv_progress_new(4, 10, 0);
    CHECK(p != NULL, "progress");
    if (!p) return;
    for (int s = 0; s < 3; s++) {
        xv_update_record r = record(s, false, 2.0);
        xv_progress_add(p, &r);
    }
    char *buf = NULL;
    size_t len = 0;
    /* before the first region update the region losses read "-", never nan */
    FILE *f = open_memstream(&buf, &len);
    xv_progress_print(p, f, 3, false);
    fclose(f);
    CHECK(buf && strstr(buf, "bbox -  giou -  ") && !strstr(buf, "nan"), "progress line: %s", buf ? buf : "");
    free(buf);
    xv_update_record r = record(2, true, 1.2);
    xv_progress_add(p, &r);
    f = open_memstream(&buf, &len);
    xv_progress_print(p, f, 3, false);
    fclose(f);
    CHECK(buf && strstr(buf, "step 3/10") && strstr(buf, "itc 2.0000") && strstr(buf, "bbox 0.6000") &&
              strstr(buf, "mlm 4.0000") && strstr(buf, "16.0 samples/s") && buf[len - 1] == '\n',
          "progress line: %s", buf ? buf : "");
    free(buf);
    xv_progress_free(p);
    /* a run with only region updates (grounding fine-tuning) shows only its terms and its rate */
    p = xv_progress_new(4, 10, 0);
    CHECK(p != NULL, "progress");
    if (!p) return;
    r.lr = 5e-5;
    xv_progress_add(p, &r);
    buf = NULL;
    f = open_memstream(&buf, &len);
    xv_progress_print(p, f, 1, false);
    fclose(f);
    CHECK(buf && strstr(buf, "bbox 0.6000") && !strstr(buf, "itc") && !strstr(buf, "mlm") && strstr(buf, "lr 5e-05"),
          "region-only progress line: %s", buf ? buf : "");
    free(buf);
    xv_progress_free(p);
}

/* A full disk while writing the log (/dev/full answers every write with
 * ENOSPC): the error names the log and the reason, for both writers. */
static void test_full_disk(void) {
    if (access("/dev/full", W_OK) != 0) {
        printf("note: no writable /dev/full, full-disk check not run\n");
        return;
    }
    xv_train_log *l = NULL;
    CHECK_OK(xv_train_log_open("/dev/full", -1, &l));
    if (!l) return;
    const xv_update_record r = {.step = 1, .loss_total = 1};
    CHECK(xv_train_log_write(l, &r, 0, NULL, NULL, 0) == XV_ERR_IO && strstr(xv_error_message(), "/dev/full") &&
              strstr(xv_error_message(), "No space left on device"),
          "full disk named with its reason: %s", xv_error_message());
    CHECK(xv_train_log_write_json(l, "{\"a\": 1}") == XV_ERR_IO &&
              strstr(xv_error_message(), "No space left on device"),
          "full disk (JSON record) named with its reason: %s", xv_error_message());
    xv_train_log_close(l);
}

int main(void) {
    if (!xv_test_scratch_dir("xv_test_trainlog", dir, sizeof dir)) return 1;
    test_ticks();
    test_log();
    test_full_disk();
    test_progress();
    xv_test_release_font_caches();
    xv_test_remove_dir(dir);
    return xv_test_finish("test_train_log");
}
