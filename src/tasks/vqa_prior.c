#include "tasks/vqa_prior.h"

#include <stdlib.h>
#include <string.h>

#include "data/caption.h"
#include "io/strindex.h"

typedef struct {
    char *key;  /* type '\x1f' answer (owned) */
    int type;   /* index into types */
    int count;
} pair;

struct xv_vqa_prior {
    xv_strindex type_ix, pair_ix;
    char **types;     /* owned type strings */
    int *best;        /* [types] index of the type's most frequent pair */
    int n_types, cap_types;
    pair *pairs;
    int n_pairs, cap_pairs;
    int overall;      /* the most frequent pair over all types (-1: none) */
};

xv_status xv_vqa_prior_new(xv_vqa_prior **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return xv_error(XV_ERR_NOMEM, "out of memory");
    (*out)->overall = -1;
    return XV_OK;
}

void xv_vqa_prior_free(xv_vqa_prior *p) {
    if (!p) return;
    for (int i = 0; i < p->n_types; i++) free(p->types[i]);
    for (int i = 0; i < p->n_pairs; i++) free(p->pairs[i].key);
    free(p->types), free(p->best), free(p->pairs);
    xv_strindex_free(&p->type_ix);
    xv_strindex_free(&p->pair_ix);
    free(p);
}

/* The type of a question (malloc'd): question_type, or the first two words
 * of pre_question(question), joined by one space (pre_question keeps runs of
 * spaces). */
static char *type_of(const char *question_type, const char *question) {
    if (question_type) return strdup(question_type);
    char *clean = NULL;
    size_t len;
    if (xv_pre_question(question, strlen(question), 50, &clean, &len) != XV_OK) return NULL;
    size_t o = 0;
    int words = 0;
    for (size_t i = 0; i < len && words < 2; i++) {
        if (clean[i] == ' ') continue;
        if (words++) clean[o++] = ' ';
        while (i < len && clean[i] != ' ') clean[o++] = clean[i++];
    }
    clean[o] = '\0';
    return clean;
}

static int type_index(xv_vqa_prior *p, char *type) {
    int t = xv_strindex_get(&p->type_ix, type);
    if (t >= 0) {
        free(type);
        return t;
    }
    if (p->n_types == p->cap_types) {
        const int cap = p->cap_types ? 2 * p->cap_types : 16;
        char **tt = realloc(p->types, sizeof *tt * (size_t)cap);
        if (tt) p->types = tt;
        int *bb = realloc(p->best, sizeof *bb * (size_t)cap);
        if (bb) p->best = bb;
        if (!tt || !bb) return -1;
        p->cap_types = cap;
    }
    t = p->n_types;
    p->types[t] = type;
    p->best[t] = -1;
    if (!xv_strindex_put(&p->type_ix, type, t)) return -1;
    p->n_types++;
    return t;
}

static xv_status count(xv_vqa_prior *p, int t, const char *answer) {
    const size_t lt = strlen(p->types[t]), la = strlen(answer);
    char *key = malloc(lt + la + 2);
    if (!key) return xv_error(XV_ERR_NOMEM, "out of memory");
    memcpy(key, p->types[t], lt);
    key[lt] = '\x1f';
    memcpy(key + lt + 1, answer, la + 1);
    int i = xv_strindex_get(&p->pair_ix, key);
    if (i >= 0) free(key);
    else {
        if (p->n_pairs == p->cap_pairs) {
            const int cap = p->cap_pairs ? 2 * p->cap_pairs : 64;
            pair *pp = realloc(p->pairs, sizeof *pp * (size_t)cap);
            if (!pp) {
                free(key);
                return xv_error(XV_ERR_NOMEM, "out of memory");
            }
            p->pairs = pp, p->cap_pairs = cap;
        }
        i = p->n_pairs;
        p->pairs[i] = (pair){.key = key, .type = t};
        if (!xv_strindex_put(&p->pair_ix, key, i)) return xv_error(XV_ERR_NOMEM, "out of memory");
        p->n_pairs++;
    }
    p->pairs[i].count++;
    if (p->best[t] < 0 || p->pairs[i].count > p->pairs[p->best[t]].count) p->best[t] = i;
    if (p->overall < 0 || p->pairs[i].count > p->pairs[p->overall].count) p->overall = i;
    return XV_OK;
}

xv_status xv_vqa_prior_add(xv_vqa_prior *p, const char *question_type, const char *question,
                           const char *const *answers, int n) {
    char *type = type_of(question_type, question);
    const int t = type ? type_index(p, type) : -1;
    if (t < 0) return xv_error(XV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) XV_TRY(count(p, t, answers[i]));
    return XV_OK;
}

const char *xv_vqa_prior_answer(const xv_vqa_prior *p, const char *question_type, const char *question) {
    char *type = type_of(question_type, question);
    const int t = type ? xv_strindex_get(&p->type_ix, type) : -1;
    free(type);
    const int i = t >= 0 && p->best[t] >= 0 ? p->best[t] : p->overall;
    return i >= 0 ? strchr(p->pairs[i].key, '\x1f') + 1 : NULL;
}
