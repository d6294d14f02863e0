/* `xvlm inspect FILE`: check a safetensors file with the reader every
 * command uses (the whole header validated first) and list what it holds,
 * or say exactly why it is refused. */
#include <inttypes.h>
#include <stdio.h>

#include "io/checksum.h"
#include "io/safetensors.h"
#include "options.h"

static void print_tensor(const xv_st_file *f, const xv_st_tensor *t, bool checksum) {
    char shape[256];
    int used = snprintf(shape, sizeof shape, "[");
    for (int d = 0; d < t->ndim && used < (int)sizeof shape; d++)
        used += snprintf(shape + used, sizeof shape - (size_t)used, "%s%" PRId64, d ? ", " : "", t->shape[d]);
    if (used < (int)sizeof shape) snprintf(shape + used, sizeof shape - (size_t)used, "]");
    const uint64_t begin = xv_st_offset(f, t);
    printf("%s\t%s\t%s\t%zu\t[%" PRIu64 ", %" PRIu64 "]", t->name, xv_st_dtype_name(t->dtype), shape, t->nbytes,
           begin, begin + t->nbytes);
    if (checksum) printf("\t%016" PRIx64, xv_hash64(t->data, t->nbytes, 0));
    putchar('\n');
}

int xv_cmd_inspect(int argc, char **argv) {
    bool checksum = false;
    xv_opt_list files = {0};
    const xv_opt opts[] = {
        {.name = "--checksum", .kind = XV_OPT_FLAG, .dest = &checksum,
         .help = "also print each tensor's 64-bit content hash (reads every byte)"},
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "inspect",
        .usage = "xvlm inspect [--checksum] FILE.safetensors [FILE ...]",
        .about = "Validates each file as every command reads it (header length and JSON, dtypes,\n"
                 "shapes, offsets: contiguous, no overlap, no gap, no trailing byte) and lists its\n"
                 "__metadata__ and its tensors (name, dtype, shape, bytes, data_offsets), in\n"
                 "file order, tab-separated; or prints why it is refused.\n",
        .opts = opts,
        .positional = &files,
        .footer = "Exit status: 0 every file valid, 1 a file refused, 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    if (files.n == 0) return xv_cli_usage_error("inspect", "name a file to inspect");
    rc = 0;
    for (int i = 0; i < files.n; i++) {
        xv_st_file *f = NULL;
        if (xv_st_open(files.items[i], &f) != XV_OK) {
            fprintf(stderr, "xvlm inspect: refused: %s\n", xv_error_message());
            rc = 1;
            continue;
        }
        printf("# %s: %d tensors, %d metadata entries\n", files.items[i], xv_st_count(f), xv_st_metadata_count(f));
        for (int k = 0; k < xv_st_metadata_count(f); k++) {
            const char *key, *value;
            xv_st_metadata_at(f, k, &key, &value);
            printf("# metadata\t%s\t%s\n", key, value);
        }
        printf("# name\tdtype\tshape\tbytes\tdata_offsets%s\n", checksum ? "\tchecksum" : "");
        for (int k = 0; k < xv_st_count(f); k++) print_tensor(f, xv_st_at(f, k), checksum);
        xv_st_close(f);
    }
    xv_opt_list_free(&files);
    return rc;
}
