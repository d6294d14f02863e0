/* `xvlm search`: text -> images over an index, or image -> texts, ranked as
 * Retrieval.py ranks (ITC top candidates re-scored by the ITM logit). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "image_list.h"
#include "model_opts.h"

typedef struct {
    const char *index, *text, *image, *texts;
    int k, rerank;
    bool json;
    char problem[512]; /* this command's own error, when not the library's */
} search_opts;

/* Record this command's error (printed instead of xvlm_last_error()). */
__attribute__((format(printf, 3, 4))) static xvlm_status problem(search_opts *o, xvlm_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->problem, sizeof o->problem, fmt, ap);
    va_end(ap);
    return code;
}

static void print_results(const search_opts *o, const xvlm_hit *hits, int n, const xvlm_images *gallery_im,
                          const xvlm_texts *gallery_tx, const char *query) {
    const int t2i = gallery_im != NULL;
    if (o->json) {
        printf("{\"direction\": \"%s\", \"query\": ", t2i ? "text_to_image" : "image_to_text");
        xv_cli_json_string(stdout, query);
        printf(", \"k\": %d, \"rerank\": %d, \"results\": [", o->k, o->rerank);
        for (int i = 0; i < n; i++) {
            const xvlm_hit *h = &hits[i];
            printf("%s{\"rank\": %d, \"index\": %lld, \"%s\": ", i ? ", " : "", i + 1, (long long)h->index,
                   t2i ? "path" : "text");
            const char *what = t2i ? xvlm_images_path(gallery_im, h->index) : xvlm_texts_text(gallery_tx, h->index);
            if (what) xv_cli_json_string(stdout, what);
            else printf("null");
            printf(", \"score\": %.9g, \"itc\": %.9g", h->score, h->itc);
            if (h->reranked) printf(", \"itm_logit\": %.9g, \"itm_prob\": %.9g", h->itm_logit, h->itm_prob);
            else printf(", \"itm_logit\": null, \"itm_prob\": null");
            printf("}");
        }
        printf("]}\n");
        return;
    }
    printf("query: %s\n", query);
    printf("%4s %10s %8s %8s  %s\n", "rank", "score", "itm_prob", "itc", t2i ? "image" : "text");
    for (int i = 0; i < n; i++) {
        const xvlm_hit *h = &hits[i];
        const char *what = t2i ? xvlm_images_path(gallery_im, h->index) : xvlm_texts_text(gallery_tx, h->index);
        printf("%4d %10.4f ", i + 1, h->score);
        if (h->reranked) printf("%8.4f", h->itm_prob);
        else printf("%8s", "-");
        printf(" %8.4f  %s\n", h->itc, what ? what : "(no path)");
    }
}

/* k larger than the gallery: clamp, with a warning. */
static void clamp_k(search_opts *o, int64_t n, const char *what) {
    if (o->k > n) {
        fprintf(stderr, "xvlm search: warning: --k %d is larger than the %s (%lld entries); showing %lld\n", o->k,
                what, (long long)n, (long long)n);
        o->k = (int)n;
    }
}

/* The k best of the gallery (the images when find_images, else the texts)
 * for the one query on the other side, printed. */
static xvlm_status search_and_print(xvlm_ctx *ctx, search_opts *o, const xvlm_images *images,
                                    const xvlm_texts *texts, bool find_images, int64_t n_gallery,
                                    const char *gallery_name) {
    clamp_k(o, n_gallery, gallery_name);
    xvlm_hit *hits = calloc((size_t)o->k, sizeof *hits);
    if (!hits) return problem(o, XVLM_ERR_NOMEM, "out of memory");
    xvlm_search_params sp = {.k = o->k, .rerank = o->rerank};
    int n = 0;
    xvlm_status st = find_images ? xvlm_search_images(ctx, images, texts, 0, &sp, hits, &n)
                                 : xvlm_search_texts(ctx, texts, images, 0, &sp, hits, &n);
    if (st == XVLM_OK && find_images) print_results(o, hits, n, images, NULL, o->text);
    else if (st == XVLM_OK) print_results(o, hits, n, NULL, texts, o->image);
    free(hits);
    return st;
}

static xvlm_status text_to_images(xvlm_ctx *ctx, const xvlm_model *m, search_opts *o) {
    xvlm_images *gallery = NULL;
    xvlm_texts *q = NULL;
    xvlm_status st = xvlm_index_open(m, o->index, &gallery);
    if (st == XVLM_OK && xvlm_images_count(gallery) == 0) st = problem(o, XVLM_ERR_INVALID_ARG, "%s: the index is empty", o->index);
    if (st == XVLM_OK) st = xvlm_encode_texts(ctx, &o->text, 1, NULL, &q);
    if (st == XVLM_OK && o->rerank > 0 && !xvlm_images_has_tokens(gallery))
        fprintf(stderr, "xvlm search: note: the index stores no vision tokens (--tokens none): the %d re-ranked "
                        "candidates are re-encoded from their files (use --rerank 0 for ITC only)\n",
                o->rerank);
    if (st == XVLM_OK) st = search_and_print(ctx, o, gallery, q, true, xvlm_images_count(gallery), "index");
    xvlm_texts_free(q);
    xvlm_images_free(gallery);
    return st;
}

static xvlm_status image_to_texts(xvlm_ctx *ctx, search_opts *o) {
    xv_cli_image_list lines = {0};
    xvlm_images *q = NULL;
    xvlm_texts *gallery = NULL;
    xvlm_status st = (xvlm_status)xv_cli_read_lines(o->texts, &lines); /* same codes, static-asserted in api/public.c */
    if (st == XVLM_OK && lines.n == 0) st = problem(o, XVLM_ERR_INVALID_ARG, "%s: no texts (one per line)", o->texts);
    if (st == XVLM_OK && lines.n > INT32_MAX) st = problem(o, XVLM_ERR_INVALID_ARG, "%s: too many texts", o->texts);
    if (st == XVLM_OK) st = xvlm_encode_image_files(ctx, &o->image, 1, NULL, &q);
    if (st == XVLM_OK) st = xvlm_encode_texts(ctx, (const char *const *)lines.paths, (int)lines.n, NULL, &gallery);
    if (st == XVLM_OK) st = search_and_print(ctx, o, q, gallery, false, lines.n, "text list");
    xvlm_images_free(q);
    xvlm_texts_free(gallery);
    xv_cli_image_list_free(&lines);
    return st;
}

int xv_cmd_search(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    search_opts o = {.k = 10, .rerank = 16};
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&mo),
        {.name = "--index", .kind = XV_OPT_STRING, .dest = &o.index, .value = "INDEX",
         .help = "an index of this model (text queries)"},
        {.name = "--text", .kind = XV_OPT_STRING, .dest = &o.text, .value = "T",
         .help = "the query text (pre_caption, at most 40 tokens)"},
        {.name = "--image", .kind = XV_OPT_STRING, .dest = &o.image, .value = "Q",
         .help = "a query image, with --texts FILE"},
        {.name = "--texts", .kind = XV_OPT_STRING, .dest = &o.texts, .value = "FILE",
         .help = "the texts to rank for --image, one per line"},
        {.name = "--k", .short_name = 'k', .kind = XV_OPT_INT, .dest = &o.k, .value = "N", .lo = 1, .hi = 1000000,
         .help = "results to show (clamped to the gallery size)"},
        {.name = "--rerank", .kind = XV_OPT_INT, .dest = &o.rerank, .value = "K", .lo = 0, .hi = 100000,
         .help = "ITC candidates re-scored by ITM (0 = ITC only). With an index\n"
                 "built with --tokens none the K candidates are re-encoded from\n"
                 "their image files"},
        XV_OPT_JSON(&o.json),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "search",
        .usage = "xvlm search --model M --index INDEX --text \"...\" [--k 10] [--rerank 16] [--json]\n"
                 "       xvlm search --model M --image Q.jpg --texts FILE [--k 10] [--rerank 16] [--json]",
        .about = "Text -> images over an index made by `xvlm index`, or image -> texts over the\n"
                 "lines of FILE. First the ITC stage: cosine similarity with every entry (one\n"
                 "matrix-vector product over the index, mapped from disk) and the best\n"
                 "max(k, rerank); then the best `rerank` of those are re-scored by the image-text\n"
                 "matching head and ordered by its raw class-1 logit, as Retrieval.py does (its\n"
                 "score matrix holds -100 for entries not re-ranked; they follow, in ITC order).\n",
        .opts = opts,
        .footer = "Exit status: 0 ok, 1 runtime error, 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    bool t2i = o.index && o.text && !o.image && !o.texts, i2t = o.image && o.texts && !o.index && !o.text;
    if (!(t2i || i2t)) return xv_cli_usage_error("search", "give either --index with --text, or --image with --texts");
    xvlm_model *m;
    xvlm_ctx *ctx;
    if (xv_cli_open_model("search", &mo, &m, &ctx)) return 1;
    xvlm_status st = t2i ? text_to_images(ctx, m, &o) : image_to_texts(ctx, &o);
    if (st != XVLM_OK) fprintf(stderr, "xvlm search: %s\n", o.problem[0] ? o.problem : xvlm_last_error());
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return st == XVLM_OK ? 0 : 1;
}
