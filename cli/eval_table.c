/* `xvlm evaluate table DIR...`: the results of several evaluated runs side by
 * side (each DIR holds the retrieval.json and/or grounding.json that
 * `xvlm evaluate ... --json` wrote, and optionally grounding_attributes.json
 * and grounding_spatial.json: the two halves of the synthetic test split),
 * with the chance and mean-box rows. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "eval_print.h"

/* Parsed DIR/name, or NULL when the file does not exist; *bad set when it
 * exists but cannot be read as a JSON object. */
static cJSON *read_json(const char *dir, const char *name, int *bad) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (access(path, F_OK) != 0) return NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    cJSON *j = NULL;
    if (xv_fs_read_file(path, 1 << 26, &buf, &len) == XV_OK) j = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        fprintf(stderr, "xvlm evaluate table: %s is not a results file of xvlm evaluate --json\n", path);
        *bad = 1;
        return NULL;
    }
    return j;
}

/* o.a.b as a number, NAN when absent. */
static double num(const cJSON *o, const char *a, const char *b) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void cell(double v) {
    if (isnan(v)) printf(" %7s", "-");
    else printf(" %7.1f", v);
}

static const char *base_name(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    static char buf[256];
    size_t s = n;
    while (s > 0 && dir[s - 1] != '/') s--;
    snprintf(buf, sizeof buf, "%.*s", (int)(n - s), dir + s);
    return buf;
}

int xv_eval_table(int n, char **dirs) {
    printf("%-24s %15s %15s %7s %31s\n", "", "text -> image", "image -> text", "", "grounding accuracy %");
    printf("%-24s %7s %7s %7s %7s %7s %7s %7s %7s %7s\n", "run", "ITC R@1", "+ITM", "ITC R@1", "+ITM", "r_mean", "all",
           "attrib.", "spatial", "meanbox");
    int bad = 0;
    cJSON *chance = NULL;
    for (int i = 0; i < n; i++) {
        cJSON *r = read_json(dirs[i], "retrieval.json", &bad), *g = read_json(dirs[i], "grounding.json", &bad);
        cJSON *ga = read_json(dirs[i], "grounding_attributes.json", &bad);
        cJSON *gs = read_json(dirs[i], "grounding_spatial.json", &bad);
        if (!r && !g && !bad) {
            fprintf(stderr, "xvlm evaluate table: %s has neither retrieval.json nor grounding.json\n", dirs[i]);
            bad = 1;
        }
        printf("%-24.24s", base_name(dirs[i]));
        cell(num(r, "itc", "img_r1"));
        cell(num(r, "itm", "img_r1"));
        cell(num(r, "itc", "txt_r1"));
        cell(num(r, "itm", "txt_r1"));
        cell(num(r, "itm", "r_mean"));
        cell(num(g, "accuracy", NULL));
        cell(num(ga, "accuracy", NULL));
        cell(num(gs, "accuracy", NULL));
        cell(num(g, "baseline_accuracy", NULL));
        printf("\n");
        if (r && !chance) chance = cJSON_DetachItemFromObjectCaseSensitive(r, "chance");
        cJSON_Delete(r);
        cJSON_Delete(g);
        cJSON_Delete(ga);
        cJSON_Delete(gs);
    }
    if (chance) {
        printf("%-24s", "chance");
        cell(num(chance, "img_r1", NULL));
        cell(num(chance, "img_r1", NULL));
        cell(num(chance, "txt_r1", NULL));
        cell(num(chance, "txt_r1", NULL));
        cell(num(chance, "r_mean", NULL));
        printf("\n");
        cJSON_Delete(chance);
    }
    return bad ? 1 : 0;
}
