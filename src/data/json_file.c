#include "data/json_file.h"

#include <stdio.h>
#include <stdlib.h>

xv_status xv_json_write_file(const char *dir, const char *name, cJSON *j, int style, xv_fs_sync sync) {
    char *text = j ? (style & XV_JSON_PRETTY ? cJSON_Print(j) : cJSON_PrintUnformatted(j)) : NULL;
    cJSON_Delete(j);
    char *joined = dir ? xv_fs_join(dir, name) : NULL;
    const char *path = dir ? joined : name;
    if (!text || !path) {
        cJSON_free(text);
        free(joined);
        return xv_error(XV_ERR_NOMEM, "%s%s%s: out of memory", dir ? dir : "", dir ? "/" : "", name);
    }
    xv_fs_atomic w;
    xv_status st = xv_fs_atomic_open(path, sync, &w);
    if (st == XV_OK) {
        fputs(text, w.f); /* a write error fails the commit */
        if (style & XV_JSON_NEWLINE) fputc('\n', w.f);
        st = xv_fs_atomic_commit(&w);
    }
    cJSON_free(text);
    free(joined);
    return st;
}
