#include "tasks/cider.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/strindex.h"

#define CIDER_N 4
#define CIDER_SIGMA 6.0

struct xv_cider {
    xv_strindex df; /* n-gram (words joined by ' ') -> document frequency */
    char **keys;    /* owned keys of df */
    int n_keys, cap_keys;
    double log_ref_len;
};

/* The n-grams of one sentence with their counts, in order of first
 * occurrence per n (the official dict order). */
typedef struct {
    char *gram;
    int n; /* 1..4 */
    int count;
    double v; /* tf-idf weight */
} ngram;

typedef struct {
    ngram *g;
    int len, cap;
    double norm[CIDER_N];
    int bigrams;
} ngrams;

static void ngrams_free(ngrams *s) {
    for (int i = 0; i < s->len; i++) free(s->g[i].gram);
    free(s->g);
    memset(s, 0, sizeof *s);
}

/* words of s (split on whitespace runs) into w[] (copies). */
static int split_words(const char *s, char ***out) {
    int n = 0, cap = 0;
    char **w = NULL;
    for (const char *p = s; *p;) {
        while (*p && isspace((unsigned char)*p)) p++;
        const char *a = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (p == a) break;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nw = realloc(w, sizeof *w * (size_t)cap);
            if (!nw) break;
            w = nw;
        }
        w[n] = strndup(a, (size_t)(p - a));
        if (!w[n]) break;
        n++;
    }
    *out = w;
    return n;
}

static int ngrams_of(const char *s, ngrams *out) {
    memset(out, 0, sizeof *out);
    char **w;
    int nw = split_words(s, &w);
    for (int k = 1; k <= CIDER_N; k++)
        for (int i = 0; i + k <= nw; i++) {
            size_t len = 0;
            for (int j = 0; j < k; j++) len += strlen(w[i + j]) + 1;
            char *gram = malloc(len);
            if (!gram) continue;
            gram[0] = '\0';
            for (int j = 0; j < k; j++) {
                if (j) strcat(gram, " ");
                strcat(gram, w[i + j]);
            }
            int at = -1;
            for (int q = 0; q < out->len && at < 0; q++)
                if (out->g[q].n == k && !strcmp(out->g[q].gram, gram)) at = q;
            if (at >= 0) {
                out->g[at].count++;
                free(gram);
                continue;
            }
            if (out->len == out->cap) {
                out->cap = out->cap ? 2 * out->cap : 32;
                ngram *ng = realloc(out->g, sizeof *ng * (size_t)out->cap);
                if (!ng) {
                    free(gram);
                    continue;
                }
                out->g = ng;
            }
            out->g[out->len++] = (ngram){gram, k, 1, 0};
        }
    for (int i = 0; i < nw; i++) free(w[i]);
    free(w);
    return 0;
}

xv_status xv_cider_new(const char *const *const *refs, const int *n_refs, int n_images, xv_cider **out) {
    *out = NULL;
    if (n_images < 1) return xv_error(XV_ERR_INVALID_ARG, "CIDEr-D: the document-frequency corpus is empty");
    xv_cider *c = calloc(1, sizeof *c);
    if (!c) return xv_error(XV_ERR_NOMEM, "CIDEr-D: out of memory");
    c->log_ref_len = log((double)n_images);
    for (int i = 0; i < n_images; i++) {
        /* Each n-gram counts once per image, whichever of its references hold it. */
        xv_strindex seen = {0};
        ngrams *per = calloc((size_t)(n_refs[i] ? n_refs[i] : 1), sizeof *per);
        for (int r = 0; per && r < n_refs[i]; r++) {
            ngrams_of(refs[i][r], &per[r]);
            for (int q = 0; q < per[r].len; q++) {
                const char *gram = per[r].g[q].gram;
                if (xv_strindex_get(&seen, gram) >= 0) continue;
                xv_strindex_put(&seen, gram, 1);
                int32_t df = xv_strindex_get(&c->df, gram);
                if (df >= 0) {
                    xv_strindex_put(&c->df, gram, df + 1);
                    continue;
                }
                if (c->n_keys == c->cap_keys) {
                    c->cap_keys = c->cap_keys ? 2 * c->cap_keys : 256;
                    char **nk = realloc(c->keys, sizeof *nk * (size_t)c->cap_keys);
                    if (!nk) continue;
                    c->keys = nk;
                }
                char *key = strdup(gram);
                if (!key) continue;
                c->keys[c->n_keys++] = key;
                xv_strindex_put(&c->df, key, 1);
            }
        }
        for (int r = 0; per && r < n_refs[i]; r++) ngrams_free(&per[r]);
        free(per);
        xv_strindex_free(&seen);
    }
    *out = c;
    return XV_OK;
}

void xv_cider_free(xv_cider *c) {
    if (!c) return;
    xv_strindex_free(&c->df);
    for (int i = 0; i < c->n_keys; i++) free(c->keys[i]);
    free(c->keys);
    free(c);
}

/* counts2vec: tf-idf weights, norms per n, and the bigram count as length. */
static void weigh(const xv_cider *c, ngrams *s) {
    for (int n = 0; n < CIDER_N; n++) s->norm[n] = 0;
    s->bigrams = 0;
    for (int q = 0; q < s->len; q++) {
        ngram *g = &s->g[q];
        int32_t df = xv_strindex_get(&c->df, g->gram);
        double ldf = log(df > 1 ? (double)df : 1.0);
        g->v = (double)g->count * (c->log_ref_len - ldf);
        s->norm[g->n - 1] += g->v * g->v;
        if (g->n == 2) s->bigrams += g->count;
    }
    for (int n = 0; n < CIDER_N; n++) s->norm[n] = sqrt(s->norm[n]);
}

static void sim(const ngrams *h, const ngrams *r, double val[CIDER_N]) {
    double delta = (double)(h->bigrams - r->bigrams);
    for (int n = 0; n < CIDER_N; n++) val[n] = 0;
    for (int q = 0; q < h->len; q++) {
        const ngram *g = &h->g[q];
        double vr = 0;
        for (int p = 0; p < r->len; p++)
            if (r->g[p].n == g->n && !strcmp(r->g[p].gram, g->gram)) vr = r->g[p].v;
        val[g->n - 1] += fmin(g->v, vr) * vr;
    }
    for (int n = 0; n < CIDER_N; n++) {
        if (h->norm[n] != 0 && r->norm[n] != 0) val[n] /= h->norm[n] * r->norm[n];
        val[n] *= pow(M_E, -(delta * delta) / (2 * CIDER_SIGMA * CIDER_SIGMA));
    }
}

double xv_cider_d(const xv_cider *c, const char *cand, const char *const *refs, int n_refs) {
    ngrams h;
    ngrams_of(cand, &h);
    weigh(c, &h);
    double score[CIDER_N] = {0};
    for (int i = 0; i < n_refs; i++) {
        ngrams r;
        ngrams_of(refs[i], &r);
        weigh(c, &r);
        double val[CIDER_N];
        sim(&h, &r, val);
        for (int n = 0; n < CIDER_N; n++) score[n] += val[n];
        ngrams_free(&r);
    }
    ngrams_free(&h);
    double mean = 0;
    for (int n = 0; n < CIDER_N; n++) mean += score[n];
    mean /= CIDER_N;
    return n_refs ? mean / n_refs * 10.0 : 0.0;
}

char *xv_cider_wrap(const char *sentence) {
    const char *a = sentence, *b = sentence + strlen(sentence);
    while (a < b && isspace((unsigned char)*a)) a++;
    while (b > a && isspace((unsigned char)b[-1])) b--;
    if (b > a && b[-1] == '.') b--;
    size_t n = (size_t)(b - a);
    char *s = malloc(n + 7);
    if (!s) return NULL;
    memcpy(s, a, n);
    memcpy(s + n, " <eos>", 7);
    return s;
}
