/* `xvlm search`: text -> images over an index, or image -> texts, ranked as
 * Retrieval.py ranks (ITC top candidates re-scored by the ITM logit). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "core/error.h"
#include "image_list.h"
#include "model_opts.h"

static void help(FILE *f) {
    fprintf(f,
            "usage: xvlm search --model M --index INDEX --text \"...\" [--k 10] [--rerank 16] [--json]\n"
            "       xvlm search --model M --image Q.jpg --texts FILE [--k 10] [--rerank 16] [--json]\n"
            "\n"
            "Text -> images over an index made by `xvlm index`, or image -> texts over the\n"
            "lines of FILE. First the ITC stage: cosine similarity with every entry (one\n"
            "matrix-vector product over the index, mapped from disk) and the best\n"
            "max(k, rerank); then the best `rerank` of those are re-scored by the image-text\n"
            "matching head and ordered by its raw class-1 logit, as Retrieval.py does (its\n"
            "score matrix holds -100 for entries not re-ranked; they follow, in ITC order).\n"
            "\n"
            "  --index INDEX   an index of this model (text queries)\n"
            "  --text T        the query text (pre_caption, at most 40 tokens)\n"
            "  --image Q       a query image, with --texts FILE (one text per line)\n"
            "  --k N           results to show (default 10; clamped to the gallery size)\n"
            "  --rerank K      ITC candidates re-scored by ITM (default 16; 0 = ITC only).\n"
            "                  With an index built with --tokens none the K candidates are\n"
            "                  re-encoded from their image files\n"
            "  --json          one JSON object on stdout\n"
            XV_CLI_MODEL_HELP
            "\n"
            "Exit status: 0 ok, 1 runtime error, 2 usage.\n");
}

typedef struct {
    const char *index, *text, *image, *texts;
    int k, rerank, json;
} search_opts;

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

static xv_status text_to_images(xvlm_ctx *ctx, const xvlm_model *m, search_opts *o) {
    xvlm_images *gallery = NULL;
    xvlm_texts *q = NULL;
    xvlm_hit *hits = NULL;
    int n = 0;
    xv_status st = xv_api_index_open(m, o->index, &gallery);
    if (st == XV_OK && xvlm_images_count(gallery) == 0) st = xv_error(XV_ERR_INVALID_ARG, "%s: the index is empty", o->index);
    if (st == XV_OK) st = xv_api_encode_texts(ctx, &o->text, 1, NULL, &q);
    if (st == XV_OK && o->rerank > 0 && !xvlm_images_has_tokens(gallery))
        fprintf(stderr, "xvlm search: note: the index stores no vision tokens (--tokens none): the %d re-ranked "
                        "candidates are re-encoded from their files (use --rerank 0 for ITC only)\n",
                o->rerank);
    if (st == XV_OK) {
        clamp_k(o, xvlm_images_count(gallery), "index");
        hits = calloc((size_t)o->k, sizeof *hits);
        xvlm_search_params sp = {.k = o->k, .rerank = o->rerank};
        st = hits ? xv_api_search_images(ctx, gallery, q, 0, &sp, hits, &n) : xv_error(XV_ERR_NOMEM, "out of memory");
    }
    if (st == XV_OK) print_results(o, hits, n, gallery, NULL, o->text);
    free(hits);
    xvlm_texts_free(q);
    xvlm_images_free(gallery);
    return st;
}

static xv_status image_to_texts(xvlm_ctx *ctx, search_opts *o) {
    xv_cli_image_list lines = {0};
    xvlm_images *q = NULL;
    xvlm_texts *gallery = NULL;
    xvlm_hit *hits = NULL;
    int n = 0;
    xv_status st = xv_cli_read_lines(o->texts, &lines);
    if (st == XV_OK && lines.n == 0) st = xv_error(XV_ERR_INVALID_ARG, "%s: no texts (one per line)", o->texts);
    if (st == XV_OK && lines.n > INT32_MAX) st = xv_error(XV_ERR_INVALID_ARG, "%s: too many texts", o->texts);
    if (st == XV_OK) st = xv_api_encode_image_files(ctx, &o->image, 1, NULL, &q);
    if (st == XV_OK) st = xv_api_encode_texts(ctx, (const char *const *)lines.paths, (int)lines.n, NULL, &gallery);
    if (st == XV_OK) {
        clamp_k(o, lines.n, "text list");
        hits = calloc((size_t)o->k, sizeof *hits);
        xvlm_search_params sp = {.k = o->k, .rerank = o->rerank};
        st = hits ? xv_api_search_texts(ctx, gallery, q, 0, &sp, hits, &n) : xv_error(XV_ERR_NOMEM, "out of memory");
    }
    if (st == XV_OK) print_results(o, hits, n, NULL, gallery, o->image);
    free(hits);
    xvlm_images_free(q);
    xvlm_texts_free(gallery);
    xv_cli_image_list_free(&lines);
    return st;
}

int xv_cmd_search(int argc, char **argv) {
    if (xv_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    xv_cli_model_opts mo;
    xv_cli_model_opts_init(&mo);
    search_opts o = {.k = 10, .rerank = 16};
    for (int i = 1; i < argc; i++) {
        int r = xv_cli_model_option("search", argc, argv, &i, &mo);
        if (r < 0) return 2;
        if (r) continue;
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--index") && has) o.index = argv[++i];
        else if (!strcmp(a, "--text") && has) o.text = argv[++i];
        else if (!strcmp(a, "--image") && has) o.image = argv[++i];
        else if (!strcmp(a, "--texts") && has) o.texts = argv[++i];
        else if (!strcmp(a, "--k") && has) {
            if (!xv_cli_int("search", "--k", argv[++i], 1, 1000000, &o.k)) return 2;
        } else if (!strcmp(a, "--rerank") && has) {
            if (!xv_cli_int("search", "--rerank", argv[++i], 0, 100000, &o.rerank)) return 2;
        } else if (!strcmp(a, "--json")) o.json = 1;
        else {
            fprintf(stderr, "xvlm search: unknown or incomplete option '%s'\n\n", a);
            help(stderr);
            return 2;
        }
    }
    bool t2i = o.index && o.text && !o.image && !o.texts, i2t = o.image && o.texts && !o.index && !o.text;
    if (!mo.model || !(t2i || i2t)) {
        fprintf(stderr, "xvlm search: give --model and either --index with --text, or --image with --texts\n\n");
        help(stderr);
        return 2;
    }
    xvlm_model *m;
    xvlm_ctx *ctx;
    if (xv_cli_open_model("search", &mo, &m, &ctx)) return 1;
    xv_status st = t2i ? text_to_images(ctx, m, &o) : image_to_texts(ctx, &o);
    if (st != XV_OK) fprintf(stderr, "xvlm search: %s\n", xv_error_message());
    xvlm_ctx_free(ctx);
    xvlm_model_free(m);
    return st == XV_OK ? 0 : 1;
}
