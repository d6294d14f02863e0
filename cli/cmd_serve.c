/* `xvlm serve`: the model behind HTTP (src/serve/, docs/serve.md). */
#include <stdio.h>

#include "model_opts.h"
#ifdef XV_HAVE_SERVE
#include "serve/serve.h"
#endif

#ifndef XV_HAVE_SERVE
int xv_cmd_serve(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "xvlm serve: this xvlm was built without the server (libmicrohttpd-dev was not installed: "
                    "run scripts/install-deps.sh, then rebuild)\n");
    return 1;
}
#else
int xv_cmd_serve(int argc, char **argv) {
    xv_cli_model_opts mo = xv_cli_model_opts_default();
    xv_serve_opts so = xv_serve_opts_default();
    const xv_opt opts[] = {
        XV_CLI_MODEL_OPTIONS(&mo),
        {.name = "--index", .kind = XV_OPT_STRING, .dest = &so.index, .value = "I",
         .help = "an index of this model (`xvlm index`): text -> image search"},
        {.name = "--image-root", .kind = XV_OPT_STRING, .dest = &so.image_root, .value = "DIR",
         .help = "requests may name images by a path inside DIR; result images are\nserved from it"},
        {.name = "--host", .kind = XV_OPT_STRING, .dest = &so.host, .value = "ADDR",
         .help = "IPv4 address to listen on"},
        {.name = "--port", .kind = XV_OPT_INT, .dest = &so.port, .value = "P", .lo = 0, .hi = 65535,
         .help = "TCP port (0: any free port, printed)"},
        {.name = "--api-key-file", .kind = XV_OPT_STRING, .dest = &so.api_key_file, .value = "F",
         .help = "require the key on F's first line (Authorization: Bearer KEY)\nfor /v1/..., /metrics and /images/"},
        {.name = "--workers", .kind = XV_OPT_INT, .dest = &so.workers, .value = "N", .lo = 1, .hi = 64,
         .help = "model threads, each with its own context"},
        {.name = "--batch", .kind = XV_OPT_INT, .dest = &so.batch, .value = "B", .lo = 1, .hi = 64,
         .help = "most requests of one kind run together (1: no micro-batching)"},
        {.name = "--batch-wait-ms", .kind = XV_OPT_INT, .dest = &so.batch_wait_ms, .value = "MS", .lo = 0,
         .hi = 1000, .help = "how long a worker waits for a batch to fill"},
        {.name = "--queue", .kind = XV_OPT_INT, .dest = &so.queue, .value = "N", .lo = 1, .hi = 100000,
         .help = "requests waiting at most (more are answered 503)"},
        {.name = "--timeout", .kind = XV_OPT_INT, .dest = &so.timeout_s, .value = "S", .lo = 1, .hi = 3600,
         .help = "a request's time limit in seconds; idle connections are closed\nafter it"},
        {.name = "--max-connections", .kind = XV_OPT_INT, .dest = &so.max_connections, .value = "N", .lo = 1,
         .hi = 10000, .help = "open connections at most"},
        {.name = "--max-body", .kind = XV_OPT_I64, .dest = &so.max_body, .value = "BYTES", .lo = 1024,
         .hi = 1 << 30, .help = "request body size limit (also caps an image file)"},
        {.name = "--max-pixels", .kind = XV_OPT_I64, .dest = &so.max_pixels, .value = "N", .lo = 1,
         .hi = (double)(INT64_C(1) << 27), .help = "image width x height limit, read from the header before\ndecoding"},
        {.name = "--max-text", .kind = XV_OPT_INT, .dest = &so.max_text_bytes, .value = "BYTES", .lo = 1,
         .hi = 1 << 20, .help = "bytes of one text"},
        {.name = "--max-texts", .kind = XV_OPT_INT, .dest = &so.max_texts, .value = "N", .lo = 1, .hi = 100000,
         .help = "texts in one request"},
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "serve",
        .usage = "xvlm serve --model M [--index I] [--image-root DIR] [--host 127.0.0.1] [--port 8080]\n"
                 "                  [--workers 1] [--batch 8] [--api-key-file F]",
        .about = "Serves the model over HTTP, JSON in and out (docs/serve.md):\n"
                 "  POST /v1/embed   texts and/or an image -> normalised ITC features\n"
                 "  POST /v1/search  a text -> images of --index; an image -> the given texts\n"
                 "                   (ITC top candidates re-ranked by ITM, as `xvlm search`)\n"
                 "  POST /v1/match   an image and texts -> ITM probability and logit, ITC\n"
                 "  POST /v1/ground  an image and texts -> boxes in pixels and normalised\n"
                 "  GET  /health, /metrics (Prometheus), /images/PATH, / (the web page)\n"
                 "Images come as a multipart upload, \"image_base64\", or \"image\": a path inside\n"
                 "--image-root. Requests of one kind that arrive together run as one batch.\n"
                 "SIGTERM or SIGINT stops it after the requests in flight are answered.\n",
        .opts = opts,
        .footer = "Exit status: 0 stopped by a signal, 1 could not start, 2 usage.\n",
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    xvlm_model *m;
    xvlm_ctx *ctx;
    if (xv_cli_open_model("serve", &mo, &m, &ctx)) return 1;
    xvlm_ctx_free(ctx); /* each worker opens its own */
    rc = xv_serve_run(m, &so);
    xvlm_model_free(m);
    return rc;
}
#endif
