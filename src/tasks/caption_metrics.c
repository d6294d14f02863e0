#include "tasks/caption_metrics.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tasks/cider.h"

/* ---- tokenisation ---- */

typedef struct {
    char *s;
    size_t len, cap;
    bool open; /* a token is being written */
} text_out;

static bool put(text_out *o, char c) {
    if (o->len + 2 > o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        char *s = realloc(o->s, cap);
        if (!s) return false;
        o->s = s;
        o->cap = cap;
    }
    o->s[o->len++] = c;
    o->s[o->len] = '\0';
    return true;
}

static bool end_token(text_out *o) {
    o->open = false;
    return true;
}

static bool add_char(text_out *o, char c) {
    if (!o->open && o->len && !put(o, ' ')) return false;
    o->open = true;
    return put(o, c);
}

/* Clitics PTB splits off after an apostrophe ("'s", "'re", ...). */
static size_t clitic_len(const char *p) {
    static const char *const k[] = {"s", "re", "ve", "ll", "d", "m"};
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        size_t n = strlen(k[i]);
        if (!strncasecmp(p, k[i], n) && !isalnum((unsigned char)p[n])) return n;
    }
    return 0;
}

char *xv_coco_tokenize(const char *text) {
    text_out o = {0};
    bool ok = put(&o, '\0');
    o.len = 0;
    for (size_t i = 0; ok && text[i]; i++) {
        const unsigned char c = (unsigned char)text[i];
        const bool prev_alnum = i > 0 && isalnum((unsigned char)text[i - 1]);
        const bool next_alnum = isalnum((unsigned char)text[i + 1]);
        if (isspace(c)) {
            ok = end_token(&o);
        } else if (isalnum(c) || c >= 0x80) {
            ok = add_char(&o, (char)tolower(c));
        } else if ((c == '.' || c == ',') && i > 0 && isdigit((unsigned char)text[i - 1]) &&
                   isdigit((unsigned char)text[i + 1])) {
            ok = add_char(&o, (char)c); /* 3.5, 1,000 */
        } else if (c == '-' && prev_alnum && next_alnum && o.open) {
            ok = add_char(&o, '-'); /* black-and-white */
        } else if (c == '\'' && o.open && prev_alnum && clitic_len(text + i + 1)) {
            const size_t n = clitic_len(text + i + 1);
            ok = end_token(&o) && add_char(&o, '\'');
            for (size_t k = 1; ok && k <= n; k++) ok = add_char(&o, (char)tolower((unsigned char)text[i + k]));
            ok = ok && end_token(&o);
            i += n;
        } else if (c == '\'' && o.open && o.len && (o.s[o.len - 1] == 'n' || o.s[o.len - 1] == 'N') &&
                   (text[i + 1] == 't' || text[i + 1] == 'T') && !isalnum((unsigned char)text[i + 2])) {
            o.s[--o.len] = '\0'; /* don't -> do n't */
            ok = end_token(&o) && add_char(&o, 'n') && add_char(&o, '\'') && add_char(&o, 't') && end_token(&o);
            i += 1;
        } else if (strchr(".,?!:;\"'`()[]{}-", c)) {
            ok = end_token(&o); /* a punctuation token: dropped */
        } else {
            ok = end_token(&o) && add_char(&o, (char)c) && end_token(&o); /* $ % & ... */
        }
    }
    if (!ok) {
        free(o.s);
        return NULL;
    }
    return o.s;
}

/* ---- words ---- */

typedef struct {
    char *buf;
    char **w;
    int n;
} words;

/* Split on single spaces (the scorers' s.split(" ") / s.split() agree on
 * tokenized text); an empty text has no words. */
static bool words_of(const char *s, words *out) {
    memset(out, 0, sizeof *out);
    out->buf = strdup(s);
    out->w = malloc(sizeof(char *) * (strlen(s) / 2 + 2));
    if (!out->buf || !out->w) return false;
    for (char *save = NULL, *t = strtok_r(out->buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) out->w[out->n++] = t;
    return true;
}

static void words_free(words *w) {
    free(w->buf);
    free(w->w);
}

static bool same_gram(const words *a, int i, const words *b, int j, int k) {
    for (int t = 0; t < k; t++)
        if (strcmp(a->w[i + t], b->w[j + t])) return false;
    return true;
}

static int count_gram(const words *a, int i, int k, const words *in) {
    int c = 0;
    for (int j = 0; j + k <= in->n; j++) c += same_gram(a, i, in, j, k);
    return c;
}

/* ---- BLEU ---- */

xv_status xv_bleu_corpus(const char *const *cands, const char *const *const *refs, const int *n_refs, int n,
                         double bleu[4]) {
    double correct[4] = {0}, guess[4] = {0}, testlen = 0, reflen = 0;
    for (int i = 0; i < n; i++) {
        words c = {0}, *r = calloc((size_t)n_refs[i], sizeof *r);
        bool ok = r && words_of(cands[i], &c);
        for (int j = 0; ok && j < n_refs[i]; j++) ok = words_of(refs[i][j], &r[j]);
        if (ok) {
            /* the reference length closest to the candidate's (ties: the shorter) */
            int best = r[0].n;
            for (int j = 1; j < n_refs[i]; j++) {
                int d = abs(r[j].n - c.n), bd = abs(best - c.n);
                if (d < bd || (d == bd && r[j].n < best)) best = r[j].n;
            }
            testlen += c.n;
            reflen += best;
            for (int k = 1; k <= 4; k++) {
                guess[k - 1] += c.n - k + 1 > 0 ? c.n - k + 1 : 0;
                for (int p = 0; p + k <= c.n; p++) {
                    bool first = true; /* each distinct n-gram once */
                    for (int q = 0; q < p && first; q++) first = !same_gram(&c, q, &c, p, k);
                    if (!first) continue;
                    int mine = count_gram(&c, p, k, &c), most = 0;
                    for (int j = 0; j < n_refs[i]; j++) {
                        int m = count_gram(&c, p, k, &r[j]);
                        if (m > most) most = m;
                    }
                    correct[k - 1] += mine < most ? mine : most;
                }
            }
        }
        words_free(&c);
        for (int j = 0; r && j < n_refs[i]; j++) words_free(&r[j]);
        free(r);
        if (!ok) return xv_error(XV_ERR_NOMEM, "out of memory computing BLEU");
    }
    const double tiny = 1e-15, small = 1e-9;
    double prod = 1, ratio = (testlen + tiny) / (reflen + small);
    for (int k = 0; k < 4; k++) {
        prod *= (correct[k] + tiny) / (guess[k] + small);
        bleu[k] = pow(prod, 1.0 / (k + 1));
        if (ratio < 1) bleu[k] *= exp(1 - 1 / ratio);
    }
    return XV_OK;
}

/* ---- ROUGE-L ---- */

static int lcs(const words *a, const words *b) {
    int *row = calloc((size_t)(b->n + 1) * 2, sizeof *row);
    if (!row) return -1;
    int *prev = row, *cur = row + b->n + 1;
    for (int i = 1; i <= a->n; i++) {
        for (int j = 1; j <= b->n; j++) {
            if (!strcmp(a->w[i - 1], b->w[j - 1])) cur[j] = prev[j - 1] + 1;
            else cur[j] = prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
        }
        int *t = prev;
        prev = cur;
        cur = t;
    }
    int v = prev[b->n];
    free(row);
    return v;
}

double xv_rouge_l(const char *cand, const char *const *refs, int n_refs) {
    const double beta = 1.2;
    words c;
    double pmax = 0, rmax = 0;
    bool ok = words_of(cand, &c);
    for (int j = 0; ok && j < n_refs; j++) {
        words r;
        ok = words_of(refs[j], &r);
        int l = ok ? lcs(&r, &c) : -1;
        ok = l >= 0;
        if (ok && c.n) pmax = fmax(pmax, (double)l / c.n);
        if (ok && r.n) rmax = fmax(rmax, (double)l / r.n);
        words_free(&r);
    }
    words_free(&c);
    if (!ok) return NAN;
    if (pmax == 0 || rmax == 0) return 0;
    return (1 + beta * beta) * pmax * rmax / (rmax + beta * beta * pmax);
}

/* ---- all of them ---- */

xv_status xv_caption_scores_compute(const char *const *cands, const char *const *const *refs, const int *n_refs,
                                    int n, xv_caption_scores *out) {
    memset(out, 0, sizeof *out);
    if (n < 1) return xv_error(XV_ERR_INVALID_ARG, "caption metrics: no captions to score");
    for (int i = 0; i < n; i++)
        if (n_refs[i] < 1) return xv_error(XV_ERR_INVALID_ARG, "caption metrics: image %d has no reference", i);
    char **tc = calloc((size_t)n, sizeof *tc);
    char ***tr = calloc((size_t)n, sizeof *tr);
    xv_status st = tc && tr ? XV_OK : xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; st == XV_OK && i < n; i++) {
        tc[i] = xv_coco_tokenize(cands[i]);
        tr[i] = calloc((size_t)n_refs[i], sizeof **tr);
        bool ok = tc[i] && tr[i];
        for (int j = 0; ok && j < n_refs[i]; j++) ok = (tr[i][j] = xv_coco_tokenize(refs[i][j])) != NULL;
        if (!ok) st = xv_error(XV_ERR_NOMEM, "out of memory");
    }
    if (st == XV_OK) st = xv_bleu_corpus((const char *const *)tc, (const char *const *const *)tr, n_refs, n, out->bleu);
    xv_cider *cider = NULL;
    if (st == XV_OK) st = xv_cider_new((const char *const *const *)tr, n_refs, n, &cider);
    for (int i = 0; st == XV_OK && i < n; i++) {
        out->rouge_l += xv_rouge_l(tc[i], (const char *const *)tr[i], n_refs[i]) / n;
        out->cider_d += xv_cider_d(cider, tc[i], (const char *const *)tr[i], n_refs[i]) / n;
    }
    if (st == XV_OK && (isnan(out->rouge_l) || isnan(out->cider_d)))
        st = xv_error(XV_ERR_NOMEM, "out of memory computing ROUGE-L / CIDEr-D");
    xv_cider_free(cider);
    for (int i = 0; tc && i < n; i++) free(tc[i]);
    for (int i = 0; tr && i < n; i++) {
        for (int j = 0; tr[i] && j < n_refs[i]; j++) free(tr[i][j]);
        free(tr[i]);
    }
    free(tc);
    free(tr);
    return st;
}
