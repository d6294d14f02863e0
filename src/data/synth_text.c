/* Captions, region captions and referring expressions: sampling, meaning and
 * wording (see synth_text.h for the semantics). */
#include "data/synth_text.h"

#include <stdio.h>
#include <string.h>

static const char *const g_describe_prefix[] = {"", "a picture of ", "an image with ", "an image of "};
static const char *const g_relation_prefix[] = {"", "there is ", "a picture of "};
#define N_DESCRIBE_PREFIX ((int)(sizeof g_describe_prefix / sizeof g_describe_prefix[0]))
#define N_RELATION_PREFIX ((int)(sizeof g_relation_prefix / sizeof g_relation_prefix[0]))
static const char *const g_count_words[] = {"", "a", "two", "three", "four"};

const char *const xv_synth_extreme_words[XV_SYNTH_N_EXTREMES] = {"leftmost", "rightmost", "highest", "lowest"};

enum { ATTR_COLOUR = 1, ATTR_SIZE = 2, ATTR_PATTERN = 4 };

bool xv_synth_np_matches(const xv_synth_np *np, const xv_synth_object *o) {
    return np->shape == (int)o->shape && (np->colour < 0 || np->colour == (int)o->colour) &&
           (np->size < 0 || np->size == (int)o->size) && (np->pattern < 0 || np->pattern == (int)o->pattern);
}

static xv_synth_np np_of(const xv_synth_object *o, int attrs) {
    xv_synth_np np = {(int)o->shape, -1, -1, -1};
    if (attrs & ATTR_COLOUR) np.colour = (int)o->colour;
    if (attrs & ATTR_SIZE) np.size = (int)o->size;
    if (attrs & ATTR_PATTERN) np.pattern = (int)o->pattern;
    return np;
}

static bool np_equal(const xv_synth_np *a, const xv_synth_np *b) {
    return a->shape == b->shape && a->colour == b->colour && a->size == b->size && a->pattern == b->pattern;
}

/* ---- wording ---- */

typedef struct {
    char *buf;
    size_t cap, len; /* len counts what would have been written (snprintf style) */
} text_out;

static void put(text_out *t, const char *s) {
    size_t n = strlen(s);
    if (t->len < t->cap) {
        size_t room = t->cap - 1 - t->len, k = n < room ? n : room;
        memcpy(t->buf + t->len, s, k);
        t->buf[t->len + k] = '\0';
    }
    t->len += n;
}

/* "[count] [size] [colour] [pattern] shape(s)"; count 0 = no article. */
static void put_np(text_out *t, const xv_synth_np *np, int count) {
    const char *words[4];
    int n = 0;
    if (np->size >= 0) words[n++] = xv_synth_size_names[np->size];
    if (np->colour >= 0) words[n++] = xv_synth_colour_names[np->colour];
    if (np->pattern >= 0) words[n++] = xv_synth_pattern_names[np->pattern];
    words[n++] = count > 1 ? xv_synth_shape_plurals[np->shape] : xv_synth_shape_names[np->shape];
    if (count == 1) put(t, strchr("aeiou", words[0][0]) ? "an " : "a ");
    if (count > 1) {
        put(t, g_count_words[count]);
        put(t, " ");
    }
    for (int k = 0; k < n; k++) {
        if (k) put(t, " ");
        put(t, words[k]);
    }
}

static void put_relation(text_out *t, const xv_synth_caption *c, bool articles) {
    put_np(t, &c->a, articles ? 1 : 0);
    put(t, " ");
    put(t, xv_synth_relation_phrases[c->rel]);
    put(t, " ");
    put_np(t, &c->b, articles ? 1 : 0);
}

int xv_synth_caption_text(const xv_synth_caption *c, char *buf, size_t cap) {
    text_out t = {buf, cap, 0};
    if (cap) buf[0] = '\0';
    if (c->relation) {
        put(&t, g_relation_prefix[c->prefix % N_RELATION_PREFIX]);
        put_relation(&t, c, true);
    } else {
        put(&t, g_describe_prefix[c->prefix % N_DESCRIBE_PREFIX]);
        for (int k = 0; k < c->n_items; k++) {
            if (k) put(&t, k == c->n_items - 1 ? " and " : ", ");
            put_np(&t, &c->item[k], c->count[k]);
        }
    }
    return (int)t.len;
}

int xv_synth_relation_text(const xv_synth_caption *c, char *buf, size_t cap) {
    text_out t = {buf, cap, 0};
    if (cap) buf[0] = '\0';
    put_relation(&t, c, false);
    return (int)t.len;
}

int xv_synth_expr_text(const xv_synth_expr *e, char *buf, size_t cap) {
    text_out t = {buf, cap, 0};
    if (cap) buf[0] = '\0';
    if (e->kind == XV_EXPR_EXTREME) {
        put(&t, xv_synth_extreme_words[e->extreme]);
        put(&t, " ");
    }
    put_np(&t, &e->np, 0);
    if (e->kind == XV_EXPR_RELATION) {
        put(&t, " ");
        put(&t, xv_synth_relation_phrases[e->rel]);
        put(&t, " ");
        put_np(&t, &e->other, 0);
    }
    return (int)t.len;
}

int xv_synth_attributes_text(const xv_synth_object *o, int variant, char *buf, size_t cap) {
    text_out t = {buf, cap, 0};
    if (cap) buf[0] = '\0';
    const char *size = xv_synth_size_names[o->size], *colour = xv_synth_colour_names[o->colour];
    if (variant == 1) {
        put(&t, colour);
    } else {
        put(&t, size);
        put(&t, " ");
        put(&t, colour);
        if (variant == 0) {
            put(&t, " ");
            put(&t, xv_synth_pattern_names[o->pattern]);
        }
    }
    return (int)t.len;
}

/* ---- captions ---- */

static bool pairs_with(const xv_synth_caption *c, const xv_synth_scene *s, int obj, int *slot_left, int used) {
    /* Depth-first matching of objects obj.. to the remaining item slots. */
    if (obj == s->n) return used == s->n;
    for (int k = 0; k < c->n_items; k++) {
        if (slot_left[k] == 0 || !xv_synth_np_matches(&c->item[k], &s->obj[obj])) continue;
        slot_left[k]--;
        bool ok = pairs_with(c, s, obj + 1, slot_left, used + 1);
        slot_left[k]++;
        if (ok) return true;
    }
    return false;
}

bool xv_synth_caption_holds(const xv_synth_caption *c, const xv_synth_scene *s) {
    if (c->relation) {
        for (int i = 0; i < s->n; i++)
            for (int j = 0; j < s->n; j++)
                if (i != j && xv_synth_np_matches(&c->a, &s->obj[i]) && xv_synth_np_matches(&c->b, &s->obj[j]) &&
                    xv_synth_relation_holds(c->rel, &s->obj[i], &s->obj[j], s->size))
                    return true;
        return false;
    }
    int slots[XV_SYNTH_MAX_OBJECTS], total = 0;
    for (int k = 0; k < c->n_items; k++) slots[k] = c->count[k], total += c->count[k];
    return total == s->n && pairs_with(c, s, 0, slots, 0);
}

static int style_attrs(xv_synth_cap_style style) {
    switch (style) {
    case XV_CAP_COUNT: return 0;
    case XV_CAP_COLOUR: return ATTR_COLOUR;
    case XV_CAP_SIZE_COLOUR: return ATTR_COLOUR | ATTR_SIZE;
    case XV_CAP_COLOUR_PATTERN: return ATTR_COLOUR | ATTR_PATTERN;
    default: return ATTR_COLOUR | ATTR_SIZE | ATTR_PATTERN;
    }
}

static void describe(xv_rng *r, const xv_synth_scene *s, int attrs, xv_synth_caption *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < s->n; i++) {
        xv_synth_np np = np_of(&s->obj[i], attrs);
        int k = 0;
        while (k < c->n_items && !np_equal(&c->item[k], &np)) k++;
        if (k == c->n_items) c->item[c->n_items++] = np;
        c->count[k]++;
    }
    for (int k = c->n_items - 1; k > 0; k--) { /* random order of mention */
        int j = (int)xv_rng_below(r, (uint64_t)k + 1);
        xv_synth_np np = c->item[k];
        int n = c->count[k];
        c->item[k] = c->item[j], c->count[k] = c->count[j];
        c->item[j] = np, c->count[j] = n;
    }
    c->prefix = (int)xv_rng_below(r, N_DESCRIBE_PREFIX);
}

static bool is_left_right(xv_synth_relation rel) { return rel == XV_REL_LEFT_OF || rel == XV_REL_RIGHT_OF; }

/* The relation to say about the ordered pair (a, b): mostly the spatial one
 * along the axis that separates their centres most, sometimes "next to" or a
 * size comparison when those hold. Returns false if none holds. */
static bool pick_relation(xv_rng *r, const xv_synth_scene *s, int a, int b, bool flip_invariant,
                          xv_synth_relation *out) {
    const xv_synth_object *p = &s->obj[a], *q = &s->obj[b];
    float dx = (q->bb[0] + 0.5f * q->bb[2]) - (p->bb[0] + 0.5f * p->bb[2]);
    float dy = (q->bb[1] + 0.5f * q->bb[3]) - (p->bb[1] + 0.5f * p->bb[3]);
    xv_synth_relation horizontal = dx > 0 ? XV_REL_LEFT_OF : XV_REL_RIGHT_OF;
    xv_synth_relation vertical = dy > 0 ? XV_REL_ABOVE : XV_REL_BELOW;
    xv_synth_relation order[2] = {horizontal, vertical};
    if (dy * dy > dx * dx) order[0] = vertical, order[1] = horizontal;
    xv_synth_relation cands[3];
    int weights[3], n = 0, total = 0;
    for (int k = 0; k < 2; k++)
        if (!(flip_invariant && is_left_right(order[k])) && xv_synth_relation_holds(order[k], p, q, s->size)) {
            cands[n] = order[k], weights[n] = 3, total += 3, n++;
            break;
        }
    if (xv_synth_relation_holds(XV_REL_NEXT_TO, p, q, s->size)) cands[n] = XV_REL_NEXT_TO, weights[n] = 1, total++, n++;
    if (p->size != q->size) {
        cands[n] = p->size > q->size ? XV_REL_LARGER : XV_REL_SMALLER;
        weights[n] = 1, total++, n++;
    }
    if (n == 0) return false;
    int pick = (int)xv_rng_below(r, (uint64_t)total), k = 0;
    while (pick >= weights[k]) pick -= weights[k++];
    *out = cands[k];
    return true;
}

/* Colour + shape, sometimes size (not when sizes are compared) or pattern. */
static xv_synth_np relation_np(xv_rng *r, const xv_synth_object *o, xv_synth_relation rel, float p_size,
                               float p_pattern) {
    int attrs = ATTR_COLOUR;
    bool size_said = rel == XV_REL_LARGER || rel == XV_REL_SMALLER;
    if (xv_rng_uniform(r) < p_size && !size_said) attrs |= ATTR_SIZE;
    if (xv_rng_uniform(r) < p_pattern) attrs |= ATTR_PATTERN;
    return np_of(o, attrs);
}

void xv_synth_caption_sample(xv_rng *r, const xv_synth_scene *s, xv_synth_cap_style style, bool flip_invariant,
                             xv_synth_caption *out) {
    if (style == XV_CAP_RELATION && s->n >= 2) {
        /* Sampled scenes keep objects apart, so every pair has a spatial
         * relation; only without left and right can a scene have none to say. */
        for (int attempt = 0; attempt < 64; attempt++) {
            int a = (int)xv_rng_below(r, (uint64_t)s->n);
            int b = (a + 1 + (int)xv_rng_below(r, (uint64_t)s->n - 1)) % s->n;
            xv_synth_relation rel;
            if (!pick_relation(r, s, a, b, flip_invariant, &rel)) continue;
            memset(out, 0, sizeof *out);
            out->relation = true;
            out->rel = rel;
            out->a = relation_np(r, &s->obj[a], rel, 0.3f, 0.2f);
            out->b = relation_np(r, &s->obj[b], rel, 0.3f, 0.2f);
            out->prefix = (int)xv_rng_below(r, N_RELATION_PREFIX);
            return;
        }
    }
    describe(r, s, style_attrs(style == XV_CAP_RELATION ? XV_CAP_SIZE_COLOUR : style), out);
}

bool xv_synth_region_caption(xv_rng *r, const xv_synth_scene *s, int a, int b, bool flip_invariant,
                             xv_synth_caption *out) {
    xv_synth_relation rel;
    if (a == b || !pick_relation(r, s, a, b, flip_invariant, &rel)) return false;
    memset(out, 0, sizeof *out);
    out->relation = true;
    out->rel = rel;
    out->a = np_of(&s->obj[a], ATTR_COLOUR);
    out->b = np_of(&s->obj[b], ATTR_COLOUR);
    return true;
}

/* ---- referring expressions ---- */

static float centre2(const xv_synth_object *o, int axis) { return 2.0f * o->bb[axis] + o->bb[axis + 2]; }

bool xv_synth_expr_satisfied(const xv_synth_expr *e, const xv_synth_scene *s, int i) {
    const xv_synth_object *t = &s->obj[i];
    if (!xv_synth_np_matches(&e->np, t)) return false;
    switch (e->kind) {
    case XV_EXPR_ATTRIBUTES: return true;
    case XV_EXPR_RELATION:
        for (int j = 0; j < s->n; j++)
            if (j != i && xv_synth_np_matches(&e->other, &s->obj[j]) &&
                xv_synth_relation_holds(e->rel, t, &s->obj[j], s->size))
                return true;
        return false;
    case XV_EXPR_EXTREME: {
        int axis = (e->extreme == XV_EXTREME_LEFTMOST || e->extreme == XV_EXTREME_RIGHTMOST) ? 0 : 1;
        float sign = (e->extreme == XV_EXTREME_LEFTMOST || e->extreme == XV_EXTREME_HIGHEST) ? 1.0f : -1.0f;
        /* Centres doubled: ahead by 2·frac·size in these units. */
        float margin = 2.0f * XV_SYNTH_EXTREME_FRAC * (float)s->size;
        for (int j = 0; j < s->n; j++)
            if (j != i && xv_synth_np_matches(&e->np, &s->obj[j]) &&
                sign * (centre2(&s->obj[j], axis) - centre2(t, axis)) < margin)
                return false;
        return true;
    }
    }
    return false;
}

int xv_synth_expr_referents(const xv_synth_expr *e, const xv_synth_scene *s) {
    int n = 0;
    for (int i = 0; i < s->n; i++) n += xv_synth_expr_satisfied(e, s, i);
    return n;
}

static int popcount3(int m) { return (m & 1) + ((m >> 1) & 1) + ((m >> 2) & 1); }

/* The shortest phrase (fewest attributes, colour first) that picks out object
 * j alone; the full description if even that is shared (a twin). */
static xv_synth_np unique_np(const xv_synth_scene *s, int j) {
    static const int masks[8] = {0, ATTR_COLOUR, ATTR_SIZE, ATTR_PATTERN, ATTR_COLOUR | ATTR_SIZE,
                                 ATTR_COLOUR | ATTR_PATTERN, ATTR_SIZE | ATTR_PATTERN, 7};
    for (int k = 0; k < 8; k++) {
        xv_synth_expr e = {.kind = XV_EXPR_ATTRIBUTES, .np = np_of(&s->obj[j], masks[k])};
        if (xv_synth_expr_referents(&e, s) == 1) return e.np;
    }
    return np_of(&s->obj[j], 7);
}

#define MAX_CANDIDATES 64

bool xv_synth_expr_sample(xv_rng *r, const xv_synth_scene *s, int target, bool flip_invariant, xv_synth_expr *out) {
    xv_synth_expr cand[3][MAX_CANDIDATES]; /* by kind */
    int n[3] = {0, 0, 0};
    /* Attributes: the unambiguous attribute sets with the fewest attributes
     * (at least one: the shape noun alone never suffices as an answer). */
    int best = 4;
    for (int m = 1; m < 8; m++) {
        xv_synth_expr e = {.kind = XV_EXPR_ATTRIBUTES, .np = np_of(&s->obj[target], m)};
        if (xv_synth_expr_referents(&e, s) != 1 || !xv_synth_expr_satisfied(&e, s, target)) continue;
        if (popcount3(m) < best) best = popcount3(m), n[0] = 0;
        if (popcount3(m) == best) cand[0][n[0]++] = e;
    }
    /* Relations to another object named by its shortest unique phrase; the
     * target named by its shape, or shape and colour if that is needed. */
    for (int j = 0; j < s->n; j++) {
        if (j == target) continue;
        for (int rel = 0; rel < XV_SYNTH_N_RELATIONS; rel++) {
            if (flip_invariant && is_left_right((xv_synth_relation)rel)) continue;
            if (!xv_synth_relation_holds((xv_synth_relation)rel, &s->obj[target], &s->obj[j], s->size)) continue;
            for (int m = 0; m <= ATTR_COLOUR; m += ATTR_COLOUR) {
                xv_synth_expr e = {.kind = XV_EXPR_RELATION, .np = np_of(&s->obj[target], m),
                                   .rel = (xv_synth_relation)rel, .other = unique_np(s, j)};
                if (xv_synth_expr_referents(&e, s) == 1 && xv_synth_expr_satisfied(&e, s, target)) {
                    if (n[1] < MAX_CANDIDATES) cand[1][n[1]++] = e;
                    break;
                }
            }
        }
    }
    /* Extremes among two or more of the same shape (or shape and colour). */
    for (int m = 0; m <= ATTR_COLOUR; m += ATTR_COLOUR) {
        xv_synth_expr base = {.kind = XV_EXPR_ATTRIBUTES, .np = np_of(&s->obj[target], m)};
        if (xv_synth_expr_referents(&base, s) < 2) continue;
        for (int x = 0; x < XV_SYNTH_N_EXTREMES; x++) {
            if (flip_invariant && (x == XV_EXTREME_LEFTMOST || x == XV_EXTREME_RIGHTMOST)) continue;
            xv_synth_expr e = {.kind = XV_EXPR_EXTREME, .np = base.np, .extreme = (xv_synth_extreme)x};
            if (xv_synth_expr_satisfied(&e, s, target) && n[2] < MAX_CANDIDATES) cand[2][n[2]++] = e;
        }
    }
    static const int weight[3] = {2, 2, 1};
    int total = 0;
    for (int k = 0; k < 3; k++) total += n[k] ? weight[k] : 0;
    if (total == 0) return false;
    int pick = (int)xv_rng_below(r, (uint64_t)total), k = 0;
    for (;; k++) {
        if (!n[k]) continue;
        if (pick < weight[k]) break;
        pick -= weight[k];
    }
    *out = cand[k][xv_rng_below(r, (uint64_t)n[k])];
    return true;
}
