/* MLM masking (the official TextMaskingGenerator). */
#include <stdlib.h>
#include <string.h>

#include "data/masking.h"
#include "testutil.h"

enum { V = 30522, MASK = 103, CLS = 101, MAXLEN = 40 };
/* Test vocabulary: ids [1000, 2000) are "##" pieces, every other id starts a word. */
static bool g_cont[V];

static xv_masking_config config(void) {
    xv_masking_config c = xv_masking_default();
    c.mask_id = MASK;
    c.vocab_size = V;
    c.is_continuation = g_cont;
    return c;
}

/* [CLS] + random words of 1-3 pieces, cut at len like the official max_tokens truncation. */
static void random_text(xv_rng *r, int32_t *ids, int len) {
    ids[0] = CLS;
    int i = 1;
    while (i < len) {
        ids[i++] = 2000 + (int32_t)xv_rng_below(r, 28000);
        int pieces = (int)xv_rng_below(r, 4) == 0 ? 1 + (int)xv_rng_below(r, 2) : 0;
        for (int k = 0; k < pieces && i < len; k++) ids[i++] = 1000 + (int32_t)xv_rng_below(r, 1000);
    }
}

static void test_flags(void) {
    const char *toks[] = {"[PAD]", "##ing", "hello", "#", "##", "a##"};
    bool f[6];
    CHECK_OK(xv_masking_flags_from_tokens(toks, 6, f));
    CHECK(!f[0] && f[1] && !f[2] && !f[3] && f[4] && !f[5], "## prefix flags");
}

static void test_n_pred(void) {
    xv_masking_config c = config();
    /* Python: min(8, max(1, round(0.25 * len))) for len 1..40 (printed by /usr/bin/python3). */
    static const int expect[41] = {0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5,
                                   6, 6, 6, 6, 6, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
    for (int len = 1; len <= 40; len++)
        CHECK(xv_masking_n_pred(&c, len) == expect[len], "len %d: %d vs %d", len, xv_masking_n_pred(&c, len),
              expect[len]);
    CHECK(xv_masking_n_pred(&c, 10) == 2 && xv_masking_n_pred(&c, 18) == 4 && xv_masking_n_pred(&c, 26) == 6,
          "ties to even: 2.5 -> 2, 4.5 -> 4, 6.5 -> 6");
    CHECK(xv_masking_n_pred(&c, 14) == 4 && xv_masking_n_pred(&c, 22) == 6, "ties to even: 3.5 -> 4, 5.5 -> 6");
    c.max_masks = 6;
    CHECK(xv_masking_n_pred(&c, 30) == 6, "max_masks 6 (16M config)");
    c.mask_prob = 0.15;
    c.max_masks = 20;
    CHECK(xv_masking_n_pred(&c, 10) == 2 && xv_masking_n_pred(&c, 30) == 4 && xv_masking_n_pred(&c, 70) == 10,
          "0.15: 1.5 -> 2, 4.5 -> 4, 10.5 -> 10");
}

/* The word of position p: [start, end). */
static void word_of(const int32_t *ids, int len, int p, int *s, int *e) {
    *s = p;
    while (*s > 0 && g_cont[ids[*s]]) (*s)--;
    *e = p + 1;
    while (*e < len && g_cont[ids[*e]]) (*e)++;
}

static void test_statistics(void) {
    xv_masking_config c = config();
    xv_rng data, rng;
    xv_rng_seed(&data, 11);
    xv_rng_seed(&rng, 12);
    int32_t ids[MAXLEN], out[MAXLEN], pos[8], mids[8];
    long n_mask = 0, n_same = 0, n_rand = 0, bad = 0, whole_violations = 0, split_by_truncation = 0;
    long truncated = 0, rand_lo = 0, rand_hi = 0;
    double rand_sum = 0;
    const int draws = 30000;
    for (int d = 0; d < draws; d++) {
        int len = 2 + (int)xv_rng_below(&data, MAXLEN - 1);
        random_text(&data, ids, len);
        xv_masking_info info;
        xv_status st = xv_mask_text(&c, &rng, ids, len, out, pos, mids, &info);
        if (st != XV_OK) {
            bad++;
            continue;
        }
        int n_pred = xv_masking_n_pred(&c, len);
        bad += info.n_masked != n_pred;
        bool marked[MAXLEN] = {0};
        for (int k = 0; k < info.n_masked; k++) {
            int p = pos[k];
            bad += p < 1 || p >= len || marked[p] || mids[k] != ids[p];
            if (p < 1 || p >= len) continue;
            marked[p] = true;
            if (out[p] == MASK) n_mask++;
            else if (out[p] == ids[p]) n_same++;
            else {
                n_rand++;
                rand_sum += out[p];
                rand_lo += out[p] < 1000; /* special tokens and [unused] ids are drawn too */
                rand_hi += out[p] >= V - 1000;
            }
        }
        for (int k = info.n_masked; k < c.max_masks; k++) bad += pos[k] != 0 || mids[k] != -100;
        for (int p = 0; p < len; p++) bad += !marked[p] && out[p] != ids[p]; /* only masked positions change */
        /* Whole words: every piece of a masked word is masked, unless step 3 dropped some. */
        bool whole = true;
        for (int p = 1; p < len; p++) {
            if (!marked[p]) continue;
            int s, e;
            word_of(ids, len, p, &s, &e);
            for (int q = s; q < e; q++) whole &= marked[q];
        }
        if (info.n_collected > info.n_masked) {
            truncated++;
            split_by_truncation += !whole;
        } else {
            whole_violations += !whole;
        }
    }
    CHECK(bad == 0, "%ld malformed outputs (count, positions, ids, padding)", bad);
    CHECK(whole_violations == 0, "%ld whole-word violations without truncation", whole_violations);
    CHECK(truncated > 1000 && split_by_truncation > 0, "truncation exercised: %ld cases, %ld split a word",
          truncated, split_by_truncation);
    double total = (double)(n_mask + n_same + n_rand);
    /* Binomial proportions over ~150k positions: 5 sigma <= 0.0055 for p = 0.8, 0.004 for p = 0.1.
     * A random id equal to the original or to [MASK] (2/V of the 10%) is far below that. */
    double pm = n_mask / total, ps = n_same / total, pr = n_rand / total;
    double sig8 = sqrt(0.8 * 0.2 / total), sig1 = sqrt(0.1 * 0.9 / total);
    CHECK(fabs(pm - 0.8) < 5 * sig8, "[MASK] share %.4f", pm);
    CHECK(fabs(ps - 0.1) < 5 * sig1, "unchanged share %.4f", ps);
    CHECK(fabs(pr - 0.1) < 5 * sig1, "random share %.4f", pr);
    /* Uniform over the whole vocabulary: mean V/2 (sd V/sqrt(12n)), both ends reached. */
    double mean = rand_sum / (double)n_rand;
    CHECK(fabs(mean - (V - 1) / 2.0) < 5 * V / sqrt(12.0 * (double)n_rand), "random id mean %.1f", mean);
    CHECK(rand_lo > 0 && rand_hi > 0, "random ids from the whole vocabulary: %ld low, %ld high", rand_lo, rand_hi);
    printf("masking: %.0f positions: mask %.4f same %.4f random %.4f; %ld truncated (%ld split words)\n", total, pm,
           ps, pr, truncated, split_by_truncation);
}

/* Span lengths: skipgram probability and randint(2, size). */
static void test_skipgram(void) {
    xv_masking_config c = config();
    c.whole_word = false;
    c.max_masks = 1; /* n_pred 1: the first candidate's span is all that is collected */
    c.skipgram_prb = 1.0;
    int32_t ids[MAXLEN], out[MAXLEN], pos[1], mids[1];
    for (int i = 0; i < MAXLEN; i++) ids[i] = i == 0 ? CLS : 5000 + i;
    xv_rng rng;
    xv_rng_seed(&rng, 3);
    const int draws = 20000;
    long hist[4] = {0};
    for (int d = 0; d < draws; d++) {
        xv_masking_info info;
        CHECK_OK(xv_mask_text(&c, &rng, ids, MAXLEN, out, pos, mids, &info));
        hist[info.n_collected < 4 ? info.n_collected : 0]++;
    }
    /* Start 39 (prob 1/39) collects 1; start 38 collects 2 either way; else 2 or 3 evenly. */
    double p3 = 37.0 / 39 * 0.5, p1 = 1.0 / 39;
    CHECK(hist[0] == 0, "collected 0 or > 3");
    CHECK(fabs(hist[3] / (double)draws - p3) < 5 * sqrt(p3 * (1 - p3) / draws), "span 3 share %.4f", hist[3] / (double)draws);
    CHECK(fabs(hist[1] / (double)draws - p1) < 5 * sqrt(p1 * (1 - p1) / draws), "span 1 share %.4f", hist[1] / (double)draws);
    /* skipgram_prb 0.2: a span >= 2 in 0.2 * 38/39 of the draws. */
    c.skipgram_prb = 0.2;
    long multi = 0;
    for (int d = 0; d < draws; d++) {
        xv_masking_info info;
        CHECK_OK(xv_mask_text(&c, &rng, ids, MAXLEN, out, pos, mids, &info));
        multi += info.n_collected >= 2;
    }
    double pm = 0.2 * 38 / 39;
    CHECK(fabs(multi / (double)draws - pm) < 5 * sqrt(pm * (1 - pm) / draws), "skipgram share %.4f", multi / (double)draws);
    /* skipgram_size 2: never 3. */
    c.skipgram_prb = 1.0;
    c.skipgram_size = 2;
    long three = 0;
    for (int d = 0; d < 2000; d++) {
        xv_masking_info info;
        CHECK_OK(xv_mask_text(&c, &rng, ids, MAXLEN, out, pos, mids, &info));
        three += info.n_collected == 3;
    }
    CHECK(three == 0, "randint(2, 2) gave 3");
}

/* Whole-word extension on a fixed text: a span started inside a word covers it. */
static void test_whole_word_fixed(void) {
    xv_masking_config c = config();
    c.skipgram_prb = 0.0;
    /* [CLS] w ##a ##b ##c ##d ##e ##f x: len 9, n_pred 2, the 7-piece word is 7 positions. */
    const int32_t ids[9] = {CLS, 3000, 1001, 1002, 1003, 1004, 1005, 1006, 4000};
    int32_t out[9], pos[8], mids[8];
    xv_rng rng;
    xv_rng_seed(&rng, 1);
    int saw_word = 0;
    for (int d = 0; d < 200; d++) {
        xv_masking_info info;
        CHECK_OK(xv_mask_text(&c, &rng, ids, 9, out, pos, mids, &info));
        /* Either the first candidate hit the long word (7 collected, truncated to 2) or the
         * single word x first (1), then possibly the long word: collected is 1+7 or 7 (+1). */
        CHECK(info.n_masked == 2 && (info.n_collected == 7 || info.n_collected == 8), "collected %d",
              info.n_collected);
        saw_word += info.n_collected >= 7;
    }
    CHECK(saw_word == 200, "the 7-piece word is always collected whole");
}

static void test_determinism(void) {
    xv_masking_config c = config();
    int32_t ids[MAXLEN], a[MAXLEN], b[MAXLEN], pa[8], pb[8], ma[8], mb[8];
    xv_rng data, r1, r2, r3;
    xv_rng_seed(&data, 5);
    xv_rng_seed(&r1, 77);
    xv_rng_seed(&r2, 77);
    xv_rng_seed(&r3, 78);
    int same = 1, differs = 0;
    for (int d = 0; d < 200; d++) {
        int len = 2 + (int)xv_rng_below(&data, MAXLEN - 1);
        random_text(&data, ids, len);
        CHECK_OK(xv_mask_text(&c, &r1, ids, len, a, pa, ma, NULL));
        CHECK_OK(xv_mask_text(&c, &r2, ids, len, b, pb, mb, NULL));
        same &= !memcmp(a, b, sizeof(int32_t) * len) && !memcmp(pa, pb, sizeof pa) && !memcmp(ma, mb, sizeof ma);
        CHECK_OK(xv_mask_text(&c, &r3, ids, len, b, pb, mb, NULL));
        differs += memcmp(pa, pb, sizeof pa) != 0;
    }
    CHECK(same && r1.counter == r2.counter, "same seed, same masks");
    CHECK(differs > 100, "another seed gives other masks (%d of 200 differ)", differs);
}

static void test_edges(void) {
    xv_masking_config c = config();
    int32_t ids[3] = {CLS, 5000, 6000}, out[3], pos[8], mids[8];
    xv_rng rng;
    xv_rng_seed(&rng, 1);
    xv_masking_info info;
    /* len 1 ([CLS] only): no candidates, nothing masked, all padding. */
    memset(pos, 0x7f, sizeof pos);
    CHECK_OK(xv_mask_text(&c, &rng, ids, 1, out, pos, mids, &info));
    CHECK(info.n_masked == 0 && out[0] == CLS, "len 1: nothing masked");
    int pad = 1;
    for (int k = 0; k < 8; k++) pad &= pos[k] == 0 && mids[k] == -100;
    CHECK(pad, "len 1: all padding");
    /* len 2: the only candidate is masked. */
    CHECK_OK(xv_mask_text(&c, &rng, ids, 2, out, pos, mids, &info));
    CHECK(info.n_masked == 1 && pos[0] == 1 && mids[0] == 5000 && pos[1] == 0 && mids[1] == -100, "len 2");
    /* max_masks 0: nothing masked, nothing written (NULL outputs are fine). */
    c.max_masks = 0;
    CHECK_OK(xv_mask_text(&c, &rng, ids, 3, out, NULL, NULL, &info));
    CHECK(info.n_masked == 0 && info.n_collected == 0 && !memcmp(out, ids, sizeof ids), "max_masks 0");
    c.max_masks = 8;
    /* Bad input: errors, not crashes. */
    int32_t bad[3] = {CLS, V, 7};
    CHECK(xv_mask_text(&c, &rng, bad, 3, out, pos, mids, &info) == XV_ERR_INVALID_ARG &&
              strstr(xv_error_message(), "position 1"),
          "id outside the vocabulary names its position: %s", xv_error_message());
    CHECK(xv_mask_text(&c, &rng, ids, 0, out, pos, mids, &info) == XV_ERR_INVALID_ARG, "len 0 refused");
    c.mask_id = V;
    CHECK(xv_mask_text(&c, &rng, ids, 3, out, pos, mids, &info) == XV_ERR_INVALID_ARG, "bad mask id refused");
    c = config();
    c.is_continuation = NULL;
    CHECK(xv_mask_text(&c, &rng, ids, 3, out, pos, mids, &info) == XV_ERR_INVALID_ARG, "whole word needs flags");
    c.whole_word = false;
    CHECK_OK(xv_mask_text(&c, &rng, ids, 3, out, pos, mids, &info));
}

int main(void) {
    for (int i = 1000; i < 2000; i++) g_cont[i] = true;
    test_flags();
    test_n_pred();
    test_statistics();
    test_skipgram();
    test_whole_word_fixed();
    test_determinism();
    test_edges();
    return xv_test_finish("masking");
}
