/* The images a command is given: a folder (searched recursively for .jpg,
 * .jpeg and .png files, sorted by path) or a list file (one path per line;
 * empty lines and lines starting with '#' are ignored; relative paths are
 * relative to the list file's folder).
 *
 * With policy->root set (--image-root), the dataset path policy of core/fs.h
 * holds: a list's relative paths are joined to the root instead, and every
 * image (listed or found in the folder) must resolve inside the root unless
 * policy->allow_outside_root; one that does not is skipped with a warning
 * "xvlm CMD: warning: LIST:LINE: why" on stderr. A list line holding a NUL
 * byte is skipped with a warning. */
#ifndef XV_CLI_IMAGE_LIST_H
#define XV_CLI_IMAGE_LIST_H

#include <stdint.h>

#include "core/error.h"
#include "core/fs.h"

typedef struct {
    char **paths;
    int64_t n, cap;
} xv_cli_image_list;

xv_status xv_cli_image_list_read(const char *list_or_dir, const xv_fs_root *policy, const char *cmd,
                                 xv_cli_image_list *out);
void xv_cli_image_list_free(xv_cli_image_list *l);

/* Non-empty lines of a text file (trailing \r removed), for --texts FILE. */
xv_status xv_cli_read_lines(const char *path, xv_cli_image_list *out);

#endif
