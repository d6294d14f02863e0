/* VQA accuracy (tasks/vqa_accuracy.h) and the COCO caption metrics
 * (tasks/caption_metrics.h) on hand-made cases; each expected value is
 * worked out from the metric's definition in the comment beside it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/caption_metrics.h"
#include "tasks/vqa_accuracy.h"
#include "tasks/vqa_prior.h"
#include "testutil.h"

#define NEAR(got, want, tol, what) \
    CHECK(fabs((got) - (want)) <= (tol), "%s: got %.12f, want %.12f", what, (double)(got), (double)(want))

static void text_is(char *got, const char *want, const char *what) {
    CHECK(got && !strcmp(got, want), "%s: got \"%s\", want \"%s\"", what, got ? got : "(null)", want);
    free(got);
}

/* n copies of a, then 10 - n copies of b. */
static void annotators(const char *gt[10], int n, const char *a, const char *b) {
    for (int i = 0; i < 10; i++) gt[i] = i < n ? a : b;
}

static void vqa_normalisation(void) {
    /* '-' not next to a space becomes a space; next to one it is deleted */
    text_is(xv_vqa_punctuation("a-b"), "a b", "punctuation a-b");
    text_is(xv_vqa_punctuation("a - b"), "a  b", "punctuation a - b");
    /* a digit,digit group anywhere deletes every mark */
    text_is(xv_vqa_punctuation("1,000 (ok)"), "1000 ok", "punctuation 1,000 (ok)");
    /* '.' goes unless a digit follows */
    text_is(xv_vqa_punctuation("3.5 cm."), "3.5 cm", "punctuation 3.5 cm.");
    /* lower case, number words, articles, contractions, single spaces */
    text_is(xv_vqa_normalize("The  Two dogs"), "2 dogs", "normalize The  Two dogs");
    text_is(xv_vqa_normalize("dont know!"), "don't know", "normalize dont know!");
    text_is(xv_vqa_normalize("an apple."), "apple", "normalize an apple.");
}

static void vqa_accuracy(void) {
    /* Ten annotators: `n_first` say `first`, the others `rest`. */
    static const struct {
        int n_first;
        const char *first, *rest, *answer;
        double want;
        const char *what;
    } cases[] = {
        /* "two" -> "2"; all ten say "2": every leave-one-out subset has 9 matches -> min(1, 9/3) = 1 */
        {10, "2", "", "two", 1.0, "two vs 10 x 2"},
        /* 2 yes, 8 no; answer "Yes" -> "yes": a yes-annotator left out leaves 1 match (1/3), a
         * no-annotator left out leaves 2 (2/3): (2·1/3 + 8·2/3) / 10 = 0.6 */
        {2, "yes", "no", "Yes", 0.6, "Yes vs 2 yes 8 no"},
        /* "the dog." -> "dog"; 3 dog, 7 cat: (3·2/3 + 7·1) / 10 = 0.9 */
        {3, "dog", "cat", " the dog.\n", 0.9, "the dog. vs 3 dog 7 cat"},
        /* "dont know" -> "don't know"; 1 such annotator, 9 "no": (1·0 + 9·1/3) / 10 = 0.3 */
        {1, "don't know", "no", "dont know", 0.3, "dont know vs 1 + 9 no"},
        /* The annotators' answers get punctuation only when they differ: 4 "hot-dog" + 6 "hot dog"
         * all become "hot dog" -> 1; ten identical "hot-dog" stay as written -> 0. */
        {4, "hot-dog", "hot dog", "hot dog", 1.0, "hot dog vs mixed hyphenation"},
        {10, "hot-dog", "", "hot dog", 0.0, "hot dog vs 10 x hot-dog"},
    };
    const char *gt[10];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        annotators(gt, cases[i].n_first, cases[i].first, cases[i].rest);
        NEAR(xv_vqa_accuracy(cases[i].answer, gt, 10), cases[i].want, 1e-12, cases[i].what);
    }
    CHECK(isnan(xv_vqa_accuracy("x", gt, 0)), "no annotators: NAN");
}

static void tokenisation(void) {
    text_is(xv_coco_tokenize("A man's dog, don't run."), "a man 's dog do n't run", "clitics and punctuation");
    text_is(xv_coco_tokenize("3.5 Black-and-white (cats)!"), "3.5 black-and-white cats", "numbers, hyphens, brackets");
    text_is(xv_coco_tokenize("$5 -- \"ok\""), "$ 5 ok", "symbols kept, dashes and quotes dropped");
}

static void bleu(void) {
    const char *c[] = {"a b c d", "a a b"};
    const char *r0[] = {"a b c d"}, *r1[] = {"a b c d"};
    const char *const *refs[] = {r0, r1};
    const int nr[] = {1, 1};
    double b[4];
    /* One exact match: every precision (k + 1e-15)/(k + 1e-9) ~ 1, no brevity penalty. */
    CHECK_OK(xv_bleu_corpus(c, refs, nr, 1, b));
    for (int k = 0; k < 4; k++) NEAR(b[k], 1.0, 1e-8, "BLEU of an exact match");
    /* Both: "a a b" clips a to 1 -> unigram 2/3, bigrams "a a" 0 + "a b" 1 -> 1/2, no
     * trigram or 4-gram. Corpus sums: correct 6, 4, 2, 1 over guesses 7, 5, 3, 1; lengths
     * 7 vs 8 -> BP = exp(1 - 8/7). BLEU-n = (prod of the first n ratios)^(1/n) · BP. */
    CHECK_OK(xv_bleu_corpus(c, refs, nr, 2, b));
    const double bp = exp(1 - 8.0 / 7), p[4] = {6.0 / 7, 4.0 / 5, 2.0 / 3, 1.0};
    double prod = 1;
    for (int k = 0; k < 4; k++) {
        prod *= p[k];
        NEAR(b[k], pow(prod, 1.0 / (k + 1)) * bp, 1e-8, "corpus BLEU-n");
    }
    /* Closest reference length, ties to the shorter: "a b" vs lengths 3 and 1 -> 1, so no
     * brevity penalty (BLEU-2 = 1; with 3 it would be exp(1 - 3/2)). */
    const char *c2[] = {"a b"}, *r2[] = {"a b c", "a"};
    const char *const *refs2[] = {r2};
    const int nr2[] = {2};
    CHECK_OK(xv_bleu_corpus(c2, refs2, nr2, 1, b));
    NEAR(b[1], 1.0, 1e-8, "BLEU-2 with the shorter of two equally close references");
}

static void rouge(void) {
    /* LCS("a c e d f", "a b c d") = "a c d" = 3: P 3/4, R 3/5, F = 2.44·P·R/(R + 1.44·P) = 1.098/1.68 */
    const char *r[] = {"a c e d f", "a b"};
    NEAR(xv_rouge_l("a b c d", r, 1), 1.098 / 1.68, 1e-12, "ROUGE-L one reference");
    /* + "a b": P 2/4, R 1 -> max P 3/4, max R 1: F = 2.44·0.75/(1 + 1.08) = 1.83/2.08 */
    NEAR(xv_rouge_l("a b c d", r, 2), 1.83 / 2.08, 1e-12, "ROUGE-L max P and max R over references");
}

static void all_metrics(void) {
    /* Two images, raw text (tokenised to "a b" / "c e" and "a b" / "c d"). Document
     * frequencies from the references: a, b, c, d, "a b", "c d" once each of 2 images, so
     * every reference n-gram weighs log 2 and "e" (df 0 -> 1) also log 2.
     * Image 1 matches exactly: n = 1, 2 similarities 1, n = 3, 4 have no n-grams (0):
     * (1 + 1 + 0 + 0)/4 · 10 = 5. Image 2: unigrams {c, e} vs {c, d} -> log²2 / (2 log²2) =
     * 1/2, bigrams 0: (1/2)/4 · 10 = 1.25; equal lengths, no penalty. CIDEr-D = 3.125. */
    const char *c[] = {"A b.", "C e"};
    const char *r0[] = {"a B"}, *r1[] = {"c d"};
    const char *const *refs[] = {r0, r1};
    const int nr[] = {1, 1};
    xv_caption_scores s;
    CHECK_OK(xv_caption_scores_compute(c, refs, nr, 2, &s));
    NEAR(s.cider_d, 3.125, 1e-12, "CIDEr-D, document frequencies from the references");
    /* ROUGE-L: 1 and (P = R = 1/2 -> F = 1/2): mean 0.75 */
    NEAR(s.rouge_l, 0.75, 1e-12, "ROUGE-L mean");
    /* BLEU-1: correct 2 + 1 over 4 guesses, same lengths: 3/4 */
    NEAR(s.bleu[0], 0.75, 1e-8, "BLEU-1");
    CHECK(xv_caption_scores_compute(c, refs, (const int[]){1, 0}, 2, &s) == XV_ERR_INVALID_ARG,
          "an image without references is refused");
}

/* The answer prior: the most frequent training answer of the question's type
 * (first two words of pre_question, or question_type), else overall. */
static void answer_prior(void) {
    xv_vqa_prior *p = NULL;
    CHECK_OK(xv_vqa_prior_new(&p));
    if (!p) return;
    CHECK(xv_vqa_prior_answer(p, NULL, "how many?") == NULL, "nothing counted: no answer");
    const char *red3[3] = {"red", "red", "blue"}, *blue2[2] = {"blue", "blue"}, *two[3] = {"2", "2", "3"};
    const char *yes[1] = {"yes"};
    CHECK_OK(xv_vqa_prior_add(p, NULL, "What colour is the star?", red3, 3));   /* what colour: red 2, blue 1 */
    CHECK_OK(xv_vqa_prior_add(p, NULL, "what  colour is the circle", blue2, 2)); /* blue 3 now: blue wins */
    CHECK_OK(xv_vqa_prior_add(p, NULL, "How many stars are there?", two, 3));   /* how many: 2 */
    CHECK_OK(xv_vqa_prior_add(p, "is there a", "Is there a dog?", yes, 1));      /* given type */
    const char *a = xv_vqa_prior_answer(p, NULL, "what colour is the square?");
    CHECK(a && !strcmp(a, "blue"), "what colour: blue (3 of 5), got %s", a ? a : "(null)");
    a = xv_vqa_prior_answer(p, NULL, "how many squares?");
    CHECK(a && !strcmp(a, "2"), "how many: 2, got %s", a ? a : "(null)");
    a = xv_vqa_prior_answer(p, "is there a", "anything");
    CHECK(a && !strcmp(a, "yes"), "the given type's answer, got %s", a ? a : "(null)");
    a = xv_vqa_prior_answer(p, NULL, "where is the cat?");
    CHECK(a && !strcmp(a, "blue"), "an unseen type: the most frequent overall (blue 3), got %s", a ? a : "(null)");
    xv_vqa_prior_free(p);
}

int main(void) {
    vqa_normalisation();
    vqa_accuracy();
    tokenisation();
    bleu();
    rouge();
    all_metrics();
    answer_prior();
    return xv_test_finish("test_task_metrics");
}
