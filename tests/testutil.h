/* Minimal test harness: checks that count and report, a finite-difference
 * gradient checker for ops, and helpers to find the official fixtures. */
#ifndef XV_TESTUTIL_H
#define XV_TESTUTIL_H

#include <math.h>
#include <stdio.h>

#include "core/tensor.h"
#include "model/model.h"
#include "ops/ops.h"

extern int xv_test_failures;
extern int xv_test_checks;

#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        xv_test_checks++;                                                              \
        if (!(cond)) {                                                                 \
            xv_test_failures++;                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
            fprintf(stderr, __VA_ARGS__);                                              \
            fprintf(stderr, "\n");                                                     \
        }                                                                              \
    } while (0)

#define CHECK_OK(status_expr)                                                          \
    do {                                                                               \
        /* 0 is OK in both xv_status and the public xvlm_status */                     \
        int s_ = (int)(status_expr);                                                   \
        CHECK(s_ == 0, "status %d: %s", s_, xv_error_message());                       \
    } while (0)

/* Print "<name>: N passed, N failed" and return the process exit code. */
int xv_test_finish(const char *name);

/* Directory of the official fixtures ($XV_FIXTURES), or NULL if absent
 * (the test should then `return xv_test_skip(...)`). */
const char *xv_fixtures_dir(void);
int xv_test_skip(const char *why); /* prints and returns 77 */

/* Deterministic random fill for tests. */
void xv_test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed);

/* ---- finite-difference gradient check ----
 * The op under test is a function of F32 inputs. The checker builds the graph
 * with leaves wrapping copies of the inputs, takes L = sum_i r_i·y_i with fixed
 * random r (accumulated in double), backpropagates, and compares each input's
 * gradient with central differences (L(x+h) - L(x-h)) / 2h.
 * Tolerance: |num - ana| <= atol + rtol·max(|num|, |ana|). */
typedef xv_tensor *(*xv_fd_fn)(xv_graph *g, xv_tensor **inputs, void *ctx);

typedef struct {
    const int64_t *shape;
    int ndim;
    const float *data;  /* values (copied) */
    bool differentiable; /* checked when true; held constant otherwise */
} xv_fd_input;

typedef struct {
    double h;        /* step (default 1e-2) */
    double atol;     /* default 2e-3 */
    double rtol;     /* default 1e-2 */
    int max_checks;  /* elements checked per input (default 48, random subset) */
    bool training;   /* run in training mode (dropout) */
    uint64_t seed;
} xv_fd_opts;

xv_fd_opts xv_fd_defaults(void);
/* For ops that only move values (gathers, slices, permutes, windows): y is x
 * moved, so L = sum r_i y_i is linear and its central difference equals r up
 * to double rounding of L (~1e-13); atol 1e-6, rtol 0 leaves a wide margin
 * that any misplaced or missing gradient (|r| ~ 0.5) fails. */
xv_fd_opts xv_fd_copy_opts(int max_checks);
/* Returns the number of mismatching elements (0 = pass) and reports them. */
int xv_fd_check(const char *name, xv_fd_fn f, void *ctx, const xv_fd_input *inputs, int n,
                const xv_fd_opts *opts);

/* Means over the pretraining log (log.jsonl of xvlm pretrain) of the records
 * with step in [from, to): loss_itc, loss_itm, loss_mlm over image-text
 * updates, loss_bbox, loss_giou over region updates (XV_LOSS_* order); NAN
 * where no record has the loss. A record without step or kind fails a CHECK. */
enum { XV_LOSS_ITC, XV_LOSS_ITM, XV_LOSS_MLM, XV_LOSS_BBOX, XV_LOSS_GIOU, XV_N_LOSSES };
void xv_test_loss_window_means(const char *log_path, int64_t from, int64_t to, double mean[XV_N_LOSSES]);

/* A learning run through the code of `xvlm pretrain`: xv_pretrain_run on
 * `yaml` writing into `out_dir` (seed from $XV_LEARN_SEED, default 1). Checks
 * that all `steps` ran without a skipped update, then for each loss prints its
 * mean over the first `first_window` and the last `last_window` steps and,
 * where `fraction[k]` is finite, requires last < fraction[k] · first (NAN:
 * reported only). The two windows' means are returned in `first`, `last`. */
void xv_test_pretrain_losses_fall(const char *yaml, const char *out_dir, int64_t steps, int64_t first_window,
                                  int64_t last_window, const double fraction[XV_N_LOSSES],
                                  double first[XV_N_LOSSES], double last[XV_N_LOSSES]);

/* ---- golden comparisons ----
 * The one comparison of computed values with a fixture's tensor `name` (every
 * parity test's helpers end here): n values, float or (ints) int32. Integers
 * must match exactly; floats need max|diff| <= tol · scale, scale = max|ref|
 * when `relative` (tensors of tiny magnitude, compared to their own maximum),
 * else max(1, max|ref|). References of any float dtype (F64 kept in double)
 * or integer dtype. Prints one line; returns max|diff| / scale (0 for equal
 * integers; INFINITY when the reference is missing, has another count, or
 * integers differ). A failure is a failed CHECK. */
double xv_test_compare_values(const xv_st_file *ref, const char *name, const void *values, int64_t n, bool ints,
                              bool relative, double tol);
/*
 * For every F32 tensor of `ref_path` whose name starts with `prefix` (and does
 * not contain `skip`, if given), check the tensor of the same name in
 * `out_path`: same shape and max|diff| <= tol · max(1, max|ref|). Prints one
 * line per tensor; returns the number of tensors compared (-1 if a file
 * cannot be opened). */
int xv_test_compare_st(const char *ref_path, const char *out_path, const char *prefix, const char *skip,
                       double tol);
/* Text drawing loads fontconfig's configuration for the life of the process;
 * a test that drew text calls this at its end so that LeakSanitizer reports
 * only our own allocations (cairo's font caches, then fontconfig's). */
void xv_test_release_font_caches(void);
/* A number from the environment (tests' knobs such as XV_LEARN_SEED), else dflt. */
double xv_test_env_num(const char *name, double dflt);
/* The command prefix that starts np ranks of a program
 * ("'/usr/bin/mpirun' --oversubscribe -np 2 "), or NULL when this build has no
 * MPI or mpirun is absent (the test then skips). */
const char *xv_test_mpirun(int np);
/* Run a shell command, echoing it; returns its exit status (-1 if it died). */
int xv_test_run(const char *cmd);

/* ---- files and scratch folders ---- */

/* Eight saturated colours for hand-drawn test worlds, with their names. */
extern const char *const xv_test_colour_names[8];
extern const uint8_t xv_test_colour_rgb[8][3];
/* A pretraining world's skeleton in `dir`: images/, the synthetic vocab.txt,
 * and captions.jsonl / regions.jsonl opened for writing (false, with a failed
 * CHECK, when something cannot be made; then nothing is left open). */
bool xv_test_world_open(const char *dir, FILE **captions, FILE **regions);
/* The model_config block of a tiny pretraining YAML, with max_words,
 * max_tokens and max_masks: Swin 32 px (2 stages), BERT 2 layers of 32 with
 * fusion from layer 1, for a vocabulary of n_vocab words. */
void xv_test_tiny_pretrain_model_yaml(FILE *f, int n_vocab);
/* A pretraining YAML for the world in `dir`: <prefix>captions.jsonl and
 * <prefix>regions.jsonl (prefix "" for xv_test_world_open's files,
 * "pretrain_" for `xvlm synth`'s) and vocab.txt. Opens `yaml`, writes
 * train_file, train_file_regions, train_dataset_size, image_root and vocab,
 * and returns the file for the caller to add the rest and close (NULL, with a
 * failed CHECK, when it cannot be written); the vocab's size goes to *n_vocab. */
FILE *xv_test_pretrain_yaml_open(const char *dir, const char *prefix, const char *yaml, int dataset_size,
                                 int *n_vocab);
/* The folders of a learning run: a fresh scratch root (from `stem`) with
 * root/world created for the world (its vocab at world/vocab.txt), the YAML
 * at root/<yaml_name>, the model at root/model and the run's output root/run.
 * Sets one thread (a model this small gains nothing from a second, and an
 * OpenMP team spinning on a machine shared with other tests can make it many
 * times slower). false when a folder cannot be made. */
typedef struct {
    char root[64], world[256], yaml[256], out[256], model[256], vocab[300];
} xv_test_learning_dirs;
bool xv_test_learning_setup(const char *stem, const char *yaml_name, xv_test_learning_dirs *d);
/* `xvlm synth --out world ARGS` with the program of $XV_BIN (its stderr
 * dropped); false, with a failed CHECK, when it fails. */
bool xv_test_synth_world(const char *world, const char *args);
/* The model the learning tests pretrain, as YAML keys model_config,
 * embed_dim and optimizer: Swin 32 px (4 px patches, region stride 8, width
 * 32 -> 64 over two stages of `depth` blocks, absolute position embeddings
 * when ape), BERT of 4 layers of width 64 split 2/2 over n_vocab words, ITC
 * width 32; AdamW lr 2e-3 (x2 for the heads), weight decay 0.01. */
void xv_test_learning_model_yaml(FILE *f, int depth, bool ape, int n_vocab);
/* Lines in a text file (0 when unreadable), e.g. a vocab's size. */
int xv_test_count_lines(const char *path);

/* A fresh folder $TMPDIR/<stem>_XXXXXX (/tmp without $TMPDIR) written into
 * `out`; false (with a failed CHECK) when it cannot be made. */
bool xv_test_scratch_dir(const char *stem, char *out, size_t cap);
/* $TMPDIR/<name> (/tmp without $TMPDIR) in `out`, e.g. a mkstemp template;
 * false (with a failed CHECK) when it does not fit. */
bool xv_test_tmp_path(const char *name, char *out, size_t cap);
/* Removes a scratch folder and everything in it. */
void xv_test_remove_dir(const char *dir);
/* The whole file, NUL-terminated, its length in *len when len is not NULL;
 * NULL if it cannot be read. Free with free(). */
char *xv_test_read_file(const char *path, size_t *len);
/* Writes `text` to `path`; false (with a failed CHECK) on error. */
bool xv_test_write_file(const char *path, const char *text);

/* ---- the xvlm program ---- */

/* What one run of the program did: its exit status (-1 if it died) and its
 * whole stdout and stderr (NUL-terminated, never NULL after xv_test_cli). */
typedef struct {
    int status;
    char *out, *err;
} xv_test_cli_result;
/* Runs `$XV_BIN ARGS` through the shell (ARGS is quoted by the caller), with
 * `input` as its stdin (NULL: /dev/null), capturing stdout and stderr through
 * files in `scratch`. */
xv_test_cli_result xv_test_cli(const char *scratch, const char *args, const char *input);
void xv_test_cli_free(xv_test_cli_result *r);
/* `xvlm ARGS` expected to succeed: a failure is CHECKed with its stderr;
 * returns the exit status. */
int xv_test_cli_ok(const char *scratch, const char *args);
/* `xvlm CMD ARGS` (no input): the exit status, its stderr copied into err. */
int xv_test_cli_status(const char *scratch, const char *cmd, const char *args, char *err, size_t errlen);
/* `xvlm ARGS` expected to succeed with one JSON value on stdout: the parsed
 * value (NULL, with a failed CHECK, otherwise; free with cJSON_Delete). */
struct cJSON *xv_test_cli_json(const char *scratch, const char *args);
/* `xvlm ARGS` expected to fail with exit `status` and a stderr containing `words`. */
void xv_test_cli_refused(const char *scratch, const char *args, int status, const char *words);

/* ---- a tiny random X-VLM, its vocabulary, and test images ---- */

/* A vocab.txt with the specials and the words the test texts use (42 entries). */
bool xv_test_tiny_vocab(const char *path);
/* The pretraining model that the config JSON `js` describes, with random
 * weights from `seed`; its config into *cfg when cfg is not NULL. NULL and a
 * failed CHECK when it cannot be made. */
xv_model *xv_test_random_model(const char *js, uint64_t seed, xv_model_config *cfg);
/* m as a model folder: weights.safetensors + config.json (cfg) in dir. */
bool xv_test_save_model_dir(const xv_model *m, const xv_model_config *cfg, const char *dir);
/* A model folder of xv_test_random_model(js, seed). */
bool xv_test_model_dir_from_json(const char *dir, const char *js, uint64_t seed);
/* 64 px, window 8, a 4-stage Swin of width 64, a 3-layer BERT (fusion from
 * layer 1): every part of X-VLM, a few milliseconds per image. With vocab.txt
 * when with_vocab. A failure is a failed CHECK. */
bool xv_test_tiny_model_dir(const char *dir, uint64_t seed, bool with_vocab);
/* The config JSON of that tiny model (Swin 64 px, BERT 16 wide, 3 layers). */
extern const char *const xv_test_tiny_model_json;
/* An NLVR2 fine-tuning world under dir: `xvlm synth` (images train + test_images
 * test images, 64 px, seed 5) in dir/world, a tiny random pretraining model
 * (BERT 32 wide, the world's vocabulary) in dir/model, and dir/nlvr.yaml
 * (NLVR.yaml keys: batch 8, lr 0.003, `epochs`). A failure is a failed CHECK. */
bool xv_test_nlvr_world(const char *dir, int images, int test_images, int epochs);
/* A VQA / captioning fine-tuning world under dir: `xvlm synth` (images train
 * + 8 test images, 64 px, seed 3) in dir/world and a random 32-px tiny
 * pretraining model (BERT 32 wide, the world's vocabulary) in dir/tiny. A
 * failure is a failed CHECK. */
bool xv_test_vqacap_world(const char *dir, int images);
/* Whether a/name and b/name hold the same bytes. */
bool xv_test_same_file(const char *a, const char *b, const char *name);
/* A w x h JPEG: a coloured background with a lighter rectangle, varied by k. */
bool xv_test_tiny_image(const char *path, int w, int h, int k);

#endif
