/* Writing a JSON document to a file: the one way the library's JSON outputs
 * (data sets, evaluation results) reach the disk, through the atomic writer
 * of core/fs.h. */
#ifndef XV_DATA_JSON_FILE_H
#define XV_DATA_JSON_FILE_H

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/fs.h"

typedef enum {
    XV_JSON_COMPACT = 0, /* one line, no final newline */
    XV_JSON_PRETTY = 1,  /* cJSON's indented form */
    XV_JSON_NEWLINE = 2, /* end the file with '\n' */
} xv_json_style;

/* Print `j` (in `style`, a combination of the flags) and write it atomically
 * to dir/name (to `name` itself when dir is NULL). Takes `j` and frees it; a
 * NULL `j` (a document that could not be built) is XV_ERR_NOMEM naming the
 * file. */
xv_status xv_json_write_file(const char *dir, const char *name, cJSON *j, int style, xv_fs_sync sync);

#endif
