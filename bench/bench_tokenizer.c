/* Tokenizer throughput on COCO-like captions.
 *
 * Captions are drawn from templates ("A brown dog is running on the beach.")
 * with the seeded RNG; the vocab holds every template word, so most words are
 * whole-word hits as they are for bert-base-uncased on COCO, plus single-letter
 * pieces for the rest. With XV_FIXTURES set, the official 1000-token fixture
 * vocab is measured too: there most words fall apart into letter pieces, the
 * expensive case for greedy longest-match.
 *
 * Reports tokens/s and captions/s for: tokenize raw text; pre_caption +
 * tokenize (what the pretraining dataset does per sample); and the pretraining
 * encoding of a 128-caption batch, on 1 thread and on all threads. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "core/rng.h"
#include "data/caption.h"
#include "data/tokenizer.h"
#include "xvlm.h"

#define N_CAPTIONS 4096

static const char *k_det[] = {"A", "The", "Two", "Several", "A small", "An old", "A young"};
static const char *k_adj[] = {"brown", "white", "black", "red", "large", "little", "happy", "wooden", "busy", "empty"};
static const char *k_noun[] = {"dog", "cat", "man", "woman", "child", "horse", "bus", "train", "pizza", "giraffe",
                               "surfer", "skateboarder", "kitchen", "street", "table", "bench", "elephant", "bird"};
static const char *k_verb[] = {"is sitting", "is standing", "is running", "is riding", "is eating", "is holding",
                               "are playing", "is parked", "are walking", "is looking"};
static const char *k_prep[] = {"on", "next to", "in front of", "near", "under", "behind", "inside", "across"};
static const char *k_place[] = {"the beach", "a wooden table", "the grass", "a busy street", "the snow",
                                "a kitchen counter", "the water", "a city sidewalk", "an open field", "the park"};
static const char *k_tail[] = {".", ".", "", " .", "!", ", looking at the camera.", " with a frisbee.",
                               " while it's raining.", " - on a sunny day.", " (black & white photo)"};

static const char *pick(xv_rng *r, const char *const *v, size_t n) { return v[xv_rng_below(r, n)]; }
#define PICK(r, v) pick(r, v, sizeof v / sizeof *v)

/* Every template word, letters and digits, their ## pieces and punctuation. */
static char *make_vocab(size_t *len) {
    size_t cap = 1 << 16, k = 0;
    char *v = malloc(cap);
    k += (size_t)snprintf(v + k, cap - k, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (int c = 33; c < 127; c++)
        if (c < 'A' || c > 'Z') k += (size_t)snprintf(v + k, cap - k, "%c\n##%c\n", c, c);
    const char *const *lists[] = {k_det, k_adj, k_noun, k_verb, k_prep, k_place, k_tail};
    const size_t sizes[] = {7, 10, 18, 10, 8, 10, 10};
    for (int l = 0; l < 7; l++) {
        for (size_t i = 0; i < sizes[l]; i++) {
            const char *s = lists[l][i];
            while (*s) { /* split on spaces and punctuation, lower-case */
                size_t n = 0;
                while (s[n] >= 'A' && s[n] <= 'z' && (s[n] <= 'Z' || s[n] >= 'a')) n++;
                if (n) {
                    for (size_t j = 0; j < n; j++) v[k + j] = (char)(s[j] | 0x20);
                    v[k + n] = '\n';
                    k += n + 1;
                    s += n;
                } else {
                    s++;
                }
            }
        }
    }
    *len = k;
    return v;
}

typedef struct {
    const xv_tokenizer *t;
    char *caps[N_CAPTIONS];
    size_t tokens; /* tokens produced by one pass (set by the pass) */
    int threads;
} bench_ctx;

static void pass_tokenize(void *p) {
    bench_ctx *c = p;
    size_t total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) num_threads(c->threads)
    for (int i = 0; i < N_CAPTIONS; i++) {
        xv_ids ids = {0};
        xv_tokenize(c->t, c->caps[i], strlen(c->caps[i]), &ids);
        total += ids.n;
        xv_ids_free(&ids);
    }
    c->tokens = total;
}

static void pass_clean_tokenize(void *p) {
    bench_ctx *c = p;
    size_t total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) num_threads(c->threads)
    for (int i = 0; i < N_CAPTIONS; i++) {
        char *cap;
        size_t len;
        if (xv_pre_caption(c->caps[i], strlen(c->caps[i]), 30, &cap, &len) != XV_OK) continue;
        xv_ids ids = {0};
        xv_tokenize(c->t, cap, len, &ids);
        total += ids.n;
        xv_ids_free(&ids);
        free(cap);
    }
    c->tokens = total;
}

static void pass_encode_batches(void *p) {
    bench_ctx *c = p;
    size_t total = 0;
    xv_encode_opts o = xv_encode_pretrain(40);
#pragma omp parallel for schedule(static) reduction(+ : total) num_threads(c->threads)
    for (int b = 0; b < N_CAPTIONS / 128; b++) {
        xv_text_batch tb;
        if (xv_encode_batch(c->t, (const char *const *)c->caps + b * 128, 128, &o, &tb) != XV_OK) continue;
        for (int i = 0; i < tb.batch * tb.len; i++) total += (size_t)tb.atts[i];
        xv_text_batch_free(&tb);
    }
    c->tokens = total;
}

static void run(const char *vocab_name, const xv_tokenizer *t, bench_ctx *c) {
    c->t = t;
    int max_threads = omp_get_max_threads();
    struct {
        const char *name;
        void (*fn)(void *);
    } passes[] = {{"tokenize raw caption", pass_tokenize},
                  {"pre_caption + tokenize", pass_clean_tokenize},
                  {"pretrain batch encode (B=128, L=40)", pass_encode_batches}};
    for (size_t p = 0; p < sizeof passes / sizeof *passes; p++) {
        for (int th = 1; th <= max_threads; th = th == max_threads ? th + 1 : max_threads) {
            c->threads = th;
            double sec = xv_bench_median(passes[p].fn, c, 1.0);
            printf("%-10s %-38s threads %d: %8.2f Mtokens/s  %8.0f captions/s  (%zu tokens / pass)\n", vocab_name,
                   passes[p].name, th, c->tokens / sec / 1e6, N_CAPTIONS / sec, c->tokens);
        }
    }
}

int main(void) {
    static bench_ctx c;
    xv_rng r;
    xv_rng_seed(&r, 2022);
    size_t bytes = 0;
    for (int i = 0; i < N_CAPTIONS; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s %s %s %s %s %s%s", PICK(&r, k_det), PICK(&r, k_adj), PICK(&r, k_noun),
                 PICK(&r, k_verb), PICK(&r, k_prep), PICK(&r, k_place), PICK(&r, k_tail));
        c.caps[i] = strdup(buf);
        bytes += strlen(buf);
    }
    printf("bench_tokenizer: %d captions, %.1f bytes each; e.g. \"%s\"\n", N_CAPTIONS, (double)bytes / N_CAPTIONS,
           c.caps[0]);

    size_t vlen;
    char *vocab = make_vocab(&vlen);
    xv_tokenizer *t;
    if (xv_tokenizer_from_memory(vocab, vlen, "caption-words", &t) != XV_OK) {
        fprintf(stderr, "%s\n", xvlm_last_error());
        return 1;
    }
    printf("caption-words vocab: %d tokens\n", xv_tokenizer_vocab_size(t));
    run("words", t, &c);
    xv_tokenizer_free(t);
    free(vocab);

    const char *fx = getenv("XV_FIXTURES");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/vocab.txt", fx ? fx : "../shared/fixtures");
    if (xv_tokenizer_load(path, &t) == XV_OK) {
        printf("fixture vocab %s: %d tokens\n", path, xv_tokenizer_vocab_size(t));
        run("fixture", t, &c);
        xv_tokenizer_free(t);
    } else {
        printf("fixture vocab not measured: %s\n", xvlm_last_error());
    }
    printf("peak RSS %.1f MiB\n", xv_bench_peak_rss_mib());
    for (int i = 0; i < N_CAPTIONS; i++) free(c.caps[i]);
    return 0;
}
