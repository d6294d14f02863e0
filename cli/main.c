/* The `xvlm` command: dispatches to sub-commands (cli/cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "core/threads.h"
#include "dist/dist.h"
#include "xvlm.h"

int xv_cmd_info(int argc, char **argv);
int xv_cmd_convert(int argc, char **argv);
int xv_cmd_preprocess(int argc, char **argv);
int xv_cmd_tokenize(int argc, char **argv);
int xv_cmd_synth(int argc, char **argv);
int xv_cmd_forward(int argc, char **argv);
int xv_cmd_pretrain(int argc, char **argv);
int xv_cmd_index(int argc, char **argv);
int xv_cmd_search(int argc, char **argv);
int xv_cmd_match(int argc, char **argv);
int xv_cmd_vqa(int argc, char **argv);
int xv_cmd_caption(int argc, char **argv);
int xv_cmd_ground(int argc, char **argv);
int xv_cmd_evaluate(int argc, char **argv);
int xv_cmd_finetune(int argc, char **argv);
int xv_cmd_nlvr(int argc, char **argv);
int xv_cmd_explain(int argc, char **argv);
int xv_cmd_serve(int argc, char **argv);
int xv_cmd_inspect(int argc, char **argv);

const xv_command xv_commands[] = {
    {"info", "print build information (threads, BLAS, version)", xv_cmd_info},
    {"inspect", "validate a safetensors file and list its metadata and tensors", xv_cmd_inspect},
    {"convert", "official PyTorch checkpoint -> safetensors + config.json", xv_cmd_convert},
    {"preprocess", "images -> normalised [3,R,R] tensors (official test transform)", xv_cmd_preprocess},
    {"tokenize", "WordPiece-tokenize JSON lines of text as the official pipeline does", xv_cmd_tokenize},
    {"synth", "generate the demo's world of shapes, captions, regions and expressions", xv_cmd_synth},
    {"forward", "run the pretraining forward (and backward) on stored inputs; write every output", xv_cmd_forward},
    {"pretrain", "pretrain X-VLM (official Pretrain.py loop) with exact resume, logs and plots", xv_cmd_pretrain},
    {"index", "encode a folder or list of images into a search index (resumable)", xv_cmd_index},
    {"search", "text -> images over an index, or image -> texts (ITC, then ITM re-rank)", xv_cmd_search},
    {"match", "ITM probability and logit of an image with texts", xv_cmd_match},
    {"vqa", "answer a question about an image (VQA model, official answer ranking)", xv_cmd_vqa},
    {"caption", "caption images (captioning model, official beam search)", xv_cmd_caption},
    {"ground", "the box a text describes in an image (optionally drawn)", xv_cmd_ground},
    {"evaluate", "zero-shot retrieval (R@K) and box grounding (IoU >= 0.5) on a test split", xv_cmd_evaluate},
    {"finetune", "fine-tune for retrieval (ITC + ITM with image ids) or box grounding (L1 + GIoU)", xv_cmd_finetune},
    {"nlvr", "is a statement about two images true? (NLVR2)", xv_cmd_nlvr},
    {"explain", "Grad-CAM heat map of where the ITM score looks for a text", xv_cmd_explain},
    {"serve", "HTTP server: search, match, ground, embed as JSON, and a web page", xv_cmd_serve},
    {NULL, NULL, NULL},
};

static void usage(FILE *f) {
    fprintf(f, "xvlm %s — X-VLM (multi-grained vision-language model) in C\n\n", xvlm_version());
    fprintf(f, "usage: xvlm <command> [options]   (xvlm <command> --help for details)\n\ncommands:\n");
    for (const xv_command *c = xv_commands; c->name; c++) fprintf(f, "  %-12s %s\n", c->name, c->summary);
    fprintf(f, "  %-12s %s\n", "help", "this message");
    fprintf(f, "\noptions: --version\n");
}

/* Under mpirun every rank runs the command; a rank that fails ends the whole
 * job at once (its message is already printed), so no rank waits for ever in
 * a collective. */
int xv_cli_ranks_stop_together;

static int run_command(const xv_command *c, int argc, char **argv) {
    if (xv_dist_init(&argc, &argv) != XV_OK) {
        fprintf(stderr, "xvlm %s: %s\n", c->name, xv_error_message());
        return 1;
    }
    int rc = c->run(argc - 1, argv + 1);
    if (rc != 0 && xv_dist_world() > 1 && !xv_cli_ranks_stop_together) xv_dist_abort(rc, "xvlm %s failed (exit status %d): ending the job", c->name, rc);
    xv_dist_finalize();
    return rc;
}

int main(int argc, char **argv) {
    xv_threads_wait_passive(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("xvlm %s\n", xvlm_version());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2) {
            for (const xv_command *c = xv_commands; c->name; c++)
                if (!strcmp(c->name, argv[2])) {
                    char *hargv[] = {argv[2], "--help", NULL};
                    return c->run(2, hargv);
                }
        }
        usage(stdout);
        return 0;
    }
    for (const xv_command *c = xv_commands; c->name; c++)
        if (!strcmp(c->name, cmd)) return run_command(c, argc, argv);
    fprintf(stderr, "xvlm: unknown command '%s'\nTry 'xvlm --help'.\n", cmd);
    return 2;
}
