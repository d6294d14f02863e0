/* `xvlm index`: encode a collection of images once, for `xvlm search`. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h" /* the monotonic clock */
#include "image_list.h"
#include "model_opts.h"
#include "train/stop_signal.h"

typedef struct {
    double t0;
    int64_t start_done; /* done when this run began (resumed work) */
    int tty;
    int last_pct;
    double last_line; /* when the last log line was printed */
    int started;
} progress_state;

static void progress(void *user, int64_t done, int64_t total) {
    progress_state *p = user;
    if (!p->started) {
        p->started = 1;
        p->t0 = xv_monotonic_seconds();
        p->start_done = done;
        if (done > 0) fprintf(stderr, "xvlm index: resuming: %lld of %lld images already done\n", (long long)done,
                              (long long)total);
    }
    double dt = xv_monotonic_seconds() - p->t0, rate = dt > 0 ? (double)(done - p->start_done) / dt : 0;
    int pct = total ? (int)(100 * done / total) : 100;
    if (p->tty) {
        int fill = pct * 30 / 100;
        char bar[31];
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        double eta = rate > 0 ? (double)(total - done) / rate : 0;
        fprintf(stderr, "\r[%s] %lld/%lld images %5.1f img/s  eta %3d:%02d", bar, (long long)done, (long long)total,
                rate, (int)(eta / 60), (int)eta % 60);
        if (done == total) fputc('\n', stderr);
    } else if (pct / 5 != p->last_pct / 5 || done == total || xv_monotonic_seconds() - p->last_line >= 10) {
        /* Not a terminal (a log): a line every 5%, and at least every 10 s. */
        p->last_line = xv_monotonic_seconds();
        fprintf(stderr, "xvlm index: %lld/%lld images (%d%%) %.1f img/s\n", (long long)done, (long long)total, pct,
                rate);
    }
    p->last_pct = pct;
    fflush(stderr);
}

static void warn(void *user, const char *msg) {
    progress_state *p = user;
    fprintf(stderr, "%sxvlm index: warning: %s\n", p->tty ? "\n" : "", msg);
}

static int stop_requested(void *user) {
    (void)user;
    return xv_stop_requested();
}

static const char *const token_kinds[] = {"none", "f16", "f32", NULL};

int xv_cmd_index(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    const char *images = NULL, *out = NULL, *tokens = "f16";
    xv_fs_root policy = {0}; /* --image-root, --allow-outside-root */
    xvlm_index_params ip = xvlm_index_params_default();
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&mo),
        {.name = "--images", .kind = XV_OPT_STRING, .dest = &images, .value = "LIST_OR_DIR", .required = true,
         .help = "a folder (searched recursively for .jpg/.jpeg/.png) or a text file\n"
                 "with one path per line (relative to the file's folder)"},
        XV_OPT_IMAGE_ROOT(&policy, "every image must resolve inside DIR (relative list\n"
                                   "entries are joined to it); others are skipped"),
        XV_OPT_OUT(&out, "INDEX", "the index file", true),
        {.name = "--batch", .kind = XV_OPT_INT, .dest = &ip.batch, .value = "N", .lo = 1, .hi = 4096,
         .help = "images per encoder pass and per resume chunk"},
        {.name = "--tokens", .kind = XV_OPT_CHOICE, .dest = &tokens, .value = "T", .choices = token_kinds,
         .help = "what re-ranking will use:\n"
                 "  f16   the vision tokens as binary16 (X-VLM base at 384 px:\n"
                 "        291 KiB per image); re-ranking reads them (re-ranking\n"
                 "        16 candidates: ~3 s on 2 cores)\n"
                 "  f32   the same as float32 (582 KiB per image), exact\n"
                 "  none  features only (1.1 KiB per image, for very large\n"
                 "        collections); `search --rerank K` re-encodes its K\n"
                 "        candidates from their files (~30x slower)"},
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "index",
        .usage = "xvlm index --model M --images LIST_OR_DIR --out INDEX [--batch 16] [--tokens none|f16|f32]",
        .about = "Encodes every image (official test transform, vision encoder) and stores its\n"
                 "normalised ITC feature, size and absolute path in INDEX (safetensors, stamped\n"
                 "with the model's id: `xvlm search` refuses an index of another model).\n",
        .opts = opts,
        .footer = "Unreadable images (missing, corrupt) are reported and left out. Interrupted\n"
                  "runs resume: run the same command again and finished batches (kept in\n"
                  "INDEX.parts/) are not encoded again.\n"
                  "\n"
                  "SIGINT / SIGTERM stop the run between batches (exit status 130 / 143).\n"
                  "\n"
                  "Exit status: 0 ok, 1 runtime error, 2 usage, 130 / 143 interrupted.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    ip.tokens = !strcmp(tokens, "none") ? XVLM_TOKENS_NONE : !strcmp(tokens, "f32") ? XVLM_TOKENS_F32 : XVLM_TOKENS_F16;
    xv_cli_image_list list;
    if (xv_cli_image_list_read(images, &policy, "index", &list) != XV_OK) {
        fprintf(stderr, "xvlm index: %s\n", xv_error_message());
        return 1;
    }
    if (list.n == 0) {
        fprintf(stderr, "xvlm index: %s: no images (.jpg, .jpeg, .png) found\n", images);
        xv_cli_image_list_free(&list);
        return 1;
    }
    xvlm_model *m;
    xvlm_ctx *ctx;
    if (xv_cli_open_model("index", &mo, &m, &ctx)) {
        xv_cli_image_list_free(&list);
        return 1;
    }
    progress_state ps = {.tty = isatty(2), .last_pct = -5}; /* -5: the first call prints */
    ip.progress = progress;
    ip.warn = warn;
    ip.user = &ps;
    ip.stop = stop_requested;
    xvlm_index_stats stats;
    double t0 = xv_monotonic_seconds();
    xv_stop_guard guard; /* SIGINT / SIGTERM: stop between chunks, the finished ones kept */
    xv_stop_guard_begin(&guard);
    xvlm_status st = xvlm_index_build(ctx, (const char *const *)list.paths, list.n, out, &ip, &stats);
    xv_stop_guard_end(&guard);
    int stopped_by = st == XVLM_ERR_INTERRUPTED ? xv_stop_requested() : 0;
    if (stopped_by) {
        fprintf(stderr, "%sxvlm index: %s by %s: %s\n", ps.tty ? "\n" : "", out, xv_stop_signal_name(stopped_by),
                xvlm_last_error());
    } else if (st == XVLM_OK && stats.indexed == 0) {
        fprintf(stderr, "xvlm index: none of the %lld images could be read\n", (long long)stats.total);
    } else if (st == XVLM_OK) {
        struct stat sb;
        double mib = stat(out, &sb) == 0 ? (double)sb.st_size / (1 << 20) : 0;
        printf("indexed %lld images into %s (%.1f MiB): encoded %lld, reused %lld from an interrupted run, "
               "skipped %lld unreadable, %.1f s\n",
               (long long)stats.indexed, out, mib, (long long)stats.encoded, (long long)stats.reused,
               (long long)stats.skipped, xv_monotonic_seconds() - t0);
    } else {
        fprintf(stderr, "%sxvlm index: %s\n", ps.tty ? "\n" : "", xv_error_message());
    }
    xv_cli_image_list_free(&list);
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    if (stopped_by) return xv_stop_exit_status(stopped_by);
    return st == XVLM_OK && stats.indexed > 0 ? 0 : 1;
}
