/* `xvlm convert`: official PyTorch checkpoint -> safetensors + config.json. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/convert_torch.h"
#include "io/torch_ckpt.h"
#include "model/model_folder.h"
#include "model/model_source.h"
#include "model/nlvr.h"

static int list(const char *path) {
    xv_tc_file *f;
    if (xv_tc_open(path, &f) != XV_OK) {
        fprintf(stderr, "xvlm convert: %s\n", xv_error_message());
        return 1;
    }
    size_t bytes = 0;
    for (int i = 0; i < xv_tc_count(f); i++) {
        const xv_tc_tensor *t = xv_tc_at(f, i);
        printf("%s\t%s\t[", t->name, xv_st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
        printf("]%s%s\n", t->contiguous ? "" : "\tnon-contiguous", xv_convert_drops(t->name) ? "\tdropped by convert" : "");
        bytes += t->nbytes;
    }
    const cJSON *cfg = xv_tc_config(f);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(cfg, "image_res");
    printf("%d tensors, %zu bytes; checkpoint config: %s", xv_tc_count(f), bytes, cfg ? "yes" : "none");
    if (cJSON_IsNumber(res)) printf(" (image_res %d)", res->valueint);
    printf("\n");
    xv_tc_close(f);
    return 0;
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

/* --vocab, else vocab.txt beside the checkpoint. A folder may go without one
 * (a note says how to add it); a single file may not. */
static int find_vocab(const char *in, const char *vocab_path, bool single, xv_model_vocab *v) {
    if (xv_model_vocab_find(in, vocab_path, v) == XV_OK) return 0;
    if (vocab_path || single) {
        fprintf(stderr, "xvlm convert: %s\n", xv_error_message());
        return 1;
    }
    fprintf(stderr,
            "xvlm convert: note: no vocab.txt beside %s: the model folder gets none; copy the model's vocab.txt "
            "(bert-base-uncased's for the official checkpoints) into it, or rerun with --vocab FILE\n",
            in);
    return 0;
}

static int convert(const char *in, const char *out, bool single, const xv_infer_opts *o, const xv_model_vocab *v) {
    char weights[PATH_MAX], config[PATH_MAX], vocab_out[PATH_MAX];
    char *made = NULL; /* the outermost output folder this run makes: removed again on failure */
    if (single) {
        snprintf(weights, sizeof weights, "%s", out);
    } else {
        made = xv_fs_first_missing(out);
        if (xv_fs_mkdir_p(out) != XV_OK) {
            fprintf(stderr, "xvlm convert: %s\n", xv_error_message());
            xv_fs_rmdir_up(out, made);
            free(made);
            return 1;
        }
        if ((size_t)snprintf(weights, sizeof weights, "%s/weights.safetensors", out) >= sizeof weights ||
            (size_t)snprintf(config, sizeof config, "%s/config.json", out) >= sizeof config ||
            (size_t)snprintf(vocab_out, sizeof vocab_out, "%s/vocab.txt", out) >= sizeof vocab_out) {
            fprintf(stderr, "xvlm convert: output path too long\n");
            xv_fs_rmdir_up(out, made);
            free(made);
            return 2;
        }
    }
    xv_convert_stats st;
    xv_status s = xv_convert_torch(in, weights, single ? NULL : config, o, v->text, &st);
    if (s == XV_OK && !single && v->text) s = xv_fs_write_file(vocab_out, v->text, v->len, XV_FS_DURABLE);
    if (s != XV_OK) {
        fprintf(stderr, "xvlm convert: %s\n", xv_error_message());
        if (made) { /* a folder this run made holds only what this run wrote */
            unlink(weights);
            unlink(config);
            xv_fs_rmdir_up(out, made);
        }
        free(made);
        return 1;
    }
    free(made);
    printf("%s: %d tensors (%zu bytes), %d buffers dropped, %d relative-position tables interpolated%s\n", weights,
           st.written, st.bytes, st.dropped, st.interpolated, single ? "; config and vocabulary in its metadata" : "");
    if (!single) printf("%s\n", config);
    if (!single && v->text) printf("%s (from %s)\n", vocab_out, v->origin);
    return 0;
}

/* An NLVR2 model folder from a pretraining model (any --model form). */
static int convert_nlvr(const char *in, const char *out, const xv_infer_opts *o, const xv_model_vocab *v, uint64_t seed) {
    char weights[PATH_MAX + 32];
    xv_model_config cfg;
    xv_model *m = NULL;
    xv_status s = xv_model_locate(in, o, &cfg, weights, sizeof weights);
    if (s == XV_OK) s = xv_nlvr_from_pretrained(&cfg, weights, seed, &m);
    if (s == XV_OK) s = xv_model_write(out, m, v);
    if (s != XV_OK) {
        fprintf(stderr, "xvlm convert: %s\n", xv_error_message());
        xv_model_free(m);
        return 1;
    }
    printf("%s: NLVR2 model, %d text layers (fusion layers %d.. doubled from %s), new cls_head (seed %llu)\n", out,
           m->cfg.text.layers, m->cfg.text.fusion_layer, in, (unsigned long long)seed);
    xv_model_free(m);
    return 0;
}

int xv_cmd_convert(int argc, char **argv) {
    xv_infer_opts o = {0};
    bool listing = false, single = false, nlvr = false;
    uint64_t seed = 42;
    const char *vocab_path = NULL;
    xv_opt_list pos = {0};
    const xv_opt opts[] = {
        XV_OPT_IMAGE_RES(&o.image_res),
        {.name = "--window", .kind = XV_OPT_INT, .dest = &o.window, .value = "W", .lo = 1, .hi = 1024,
         .unset = "7/12/15 for 224/384/480",
         .help = "target Swin window; relative-position tables are interpolated as\nthe official loader does"},
        XV_OPT_TEXT_HEADS(&o.text_heads),
        XV_OPT_VOCAB(&vocab_path, "the model's vocab.txt, copied into OUT", false),
        {.name = "--single-file", .kind = XV_OPT_FLAG, .dest = &single,
         .help = "write OUT as one file (weights, config and vocab; also when OUT\nends in .safetensors)"},
        {.name = "--list", .kind = XV_OPT_FLAG, .dest = &listing, .help = "print every tensor: name, dtype, shape"},
        {.name = "--nlvr", .kind = XV_OPT_FLAG, .dest = &nlvr,
         .help = "IN is a pretraining model (folder, single file or .th): write the NLVR2\n"
                 "model made from it (model_nlvr.py load_pretrained: fusion layer l becomes\n"
                 "the two layers F+2(l-F) and F+2(l-F)+1; new cls_head)"},
        XV_OPT_SEED(&seed, "the new cls_head (--nlvr)"),
        XV_OPT_END,
    };
    const xv_cli_spec spec = {
        .cmd = "convert",
        .usage = "xvlm convert IN.th OUT [--vocab FILE] [--single-file] [--image-res N] [--window W] [--text-heads H]\n"
                 "       xvlm convert --nlvr PRETRAINED OUT [--seed S]\n"
                 "       xvlm convert --list IN.th",
        .about = "Converts an official X-VLM PyTorch checkpoint (torch.save of {'model': state_dict,\n"
                 "'config': ...} or a bare state_dict, torch >= 1.6) without Python. Nothing in the\n"
                 "file is executed: only tensors and plain values are read. OUT is a model folder\n"
                 "(created if needed: config.json, weights.safetensors, vocab.txt) or, with\n"
                 "--single-file or a name ending in .safetensors, one file holding all three\n"
                 "(config and vocabulary in its metadata). The vocabulary is --vocab, else the\n"
                 "vocab.txt beside IN.th.\n",
        .opts = opts,
        .footer = "Official key names and both text layouts are kept; the buffers\n"
                  "relative_position_index, attn_mask and position_ids are dropped.\n",
        .positional = &pos,
        .max_positional = 2,
    };
    int rc;
    if (!xv_cli_parse(&spec, argc, argv, &rc)) return rc;
    const char *in = pos.n > 0 ? pos.items[0] : NULL, *out = pos.n > 1 ? pos.items[1] : NULL;
    const int npos = pos.n;
    xv_opt_list_free(&pos);
    if (listing) {
        if (npos != 1) return xv_cli_usage_error("convert", "--list takes one checkpoint (and no OUT)");
        return list(in);
    }
    if (npos != 2) return xv_cli_usage_error("convert", "give the checkpoint IN.th and the output OUT");
    single |= ends_with(out, ".safetensors");
    xv_model_vocab vocab = {0};
    if (find_vocab(in, vocab_path, single || nlvr, &vocab) != 0) return 1;
    int rc2 = nlvr ? convert_nlvr(in, out, &o, &vocab, seed) : convert(in, out, single, &o, &vocab);
    xv_model_vocab_free(&vocab);
    return rc2;
}
