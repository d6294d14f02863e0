/* Scene sampling: attributes, sizes and non-overlapping placement; the
 * geometric relations between placed objects. */
#include <math.h>
#include <string.h>

#include "data/synth.h"

/* Placement is rejection sampling: tries per object, then whole-scene redraws
 * (four large shapes need a lucky layout; redrawn attributes make it easier). */
#define PLACE_TRIES 200
#define SCENE_TRIES 1000
/* Scenes get shape repeats and identical twins more often than chance, so
 * grounding needs attributes and relations, not just the shape noun. */
#define P_SAME_SHAPE 0.3f
#define P_TWIN 0.12f

static float uniform_in(xv_rng *r, float lo, float hi) { return lo + (hi - lo) * xv_rng_uniform(r); }

static void draw_attributes(xv_rng *r, xv_synth_scene *s, int k) {
    xv_synth_object *o = &s->obj[k];
    if (k > 0 && xv_rng_uniform(r) < P_TWIN) {
        *o = s->obj[xv_rng_below(r, (uint64_t)k)];
        return; /* same everything but the place */
    }
    o->shape = (k > 0 && xv_rng_uniform(r) < P_SAME_SHAPE) ? s->obj[xv_rng_below(r, (uint64_t)k)].shape
                                                           : (xv_synth_shape)xv_rng_below(r, XV_SYNTH_N_SHAPES);
    o->colour = (xv_synth_colour)xv_rng_below(r, XV_SYNTH_N_COLOURS);
    o->size = (xv_synth_size)xv_rng_below(r, XV_SYNTH_N_SIZES);
    o->pattern = (xv_synth_pattern)xv_rng_below(r, XV_SYNTH_N_PATTERNS);
    o->extent = (float)s->size * uniform_in(r, xv_synth_size_range[o->size][0], xv_synth_size_range[o->size][1]);
    /* Thick enough that an outline survives a downscale to 96 pixels. */
    o->line = fmaxf(1.5f, 0.07f * o->extent);
}

/* Distance between two boxes along the axis that separates them most
 * (negative when they overlap). */
static int box_gap(const int *a, const int *b) {
    int gx = (a[0] > b[0] ? a[0] - (b[0] + b[2]) : b[0] - (a[0] + a[2]));
    int gy = (a[1] > b[1] ? a[1] - (b[1] + b[3]) : b[1] - (a[1] + a[3]));
    return gx > gy ? gx : gy;
}

static void set_box(xv_synth_object *o, float half_w, float half_h) {
    int x0 = (int)floorf(o->cx - half_w), x1 = (int)ceilf(o->cx + half_w);
    int y0 = (int)floorf(o->cy - half_h), y1 = (int)ceilf(o->cy + half_h);
    o->bb[0] = x0, o->bb[1] = y0, o->bb[2] = x1 - x0, o->bb[3] = y1 - y0;
}

static bool place(xv_rng *r, xv_synth_scene *s, int k) {
    xv_synth_object *o = &s->obj[k];
    float xy[XV_SYNTH_MAX_VERTICES][2], uw, uh;
    xv_synth_outline(o->shape, xy, &uw, &uh);
    /* Round joins: the stroke reaches line/2 beyond the outermost vertices. */
    float half_w = 0.5f * (uw * o->extent + o->line), half_h = 0.5f * (uh * o->extent + o->line);
    float margin = XV_SYNTH_MARGIN_FRAC * (float)s->size, gap = fmaxf(3.0f, XV_SYNTH_GAP_FRAC * (float)s->size);
    float lo_x = margin + half_w + 1, hi_x = (float)s->size - margin - half_w - 1;
    float lo_y = margin + half_h + 1, hi_y = (float)s->size - margin - half_h - 1;
    if (hi_x <= lo_x || hi_y <= lo_y) return false;
    for (int t = 0; t < PLACE_TRIES; t++) {
        o->cx = uniform_in(r, lo_x, hi_x);
        o->cy = uniform_in(r, lo_y, hi_y);
        set_box(o, half_w, half_h);
        bool free = true;
        for (int j = 0; j < k && free; j++) free = (float)box_gap(o->bb, s->obj[j].bb) >= gap;
        if (free) return true;
    }
    return false;
}

xv_status xv_synth_sample_scene(xv_rng *r, int size, int n_min, int n_max, xv_synth_scene *out) {
    if (size < XV_SYNTH_MIN_SIZE || size > XV_SYNTH_MAX_SIZE)
        return xv_error(XV_ERR_INVALID_ARG, "synth: image size %d outside [%d, %d]", size, XV_SYNTH_MIN_SIZE,
                        XV_SYNTH_MAX_SIZE);
    if (n_min < 1 || n_max > XV_SYNTH_MAX_OBJECTS || n_min > n_max)
        return xv_error(XV_ERR_INVALID_ARG, "synth: objects per image %d..%d, expected 1 <= min <= max <= %d", n_min,
                        n_max, XV_SYNTH_MAX_OBJECTS);
    xv_synth_scene s;
    memset(&s, 0, sizeof s);
    s.size = size;
    s.bg_kind = (xv_synth_bg_kind)xv_rng_below(r, XV_SYNTH_N_BG_KINDS);
    s.bg[0] = (int)xv_rng_below(r, XV_SYNTH_N_BACKGROUNDS);
    s.bg[1] = (s.bg[0] + 1 + (int)xv_rng_below(r, XV_SYNTH_N_BACKGROUNDS - 1)) % XV_SYNTH_N_BACKGROUNDS;
    s.bg_angle = uniform_in(r, 0.0f, 6.2831853f);
    s.noise_key = xv_rng_u64(r);
    s.n = n_min + (int)xv_rng_below(r, (uint64_t)(n_max - n_min + 1));
    for (int attempt = 0; attempt < SCENE_TRIES; attempt++) {
        int k = 0;
        for (; k < s.n; k++) {
            draw_attributes(r, &s, k);
            if (!place(r, &s, k)) break;
        }
        if (k == s.n) {
            *out = s;
            return XV_OK;
        }
    }
    return xv_error(XV_ERR_INTERNAL, "synth: no layout for %d objects in %d pixels after %d tries", s.n, size,
                    SCENE_TRIES);
}

bool xv_synth_relation_holds(xv_synth_relation rel, const xv_synth_object *a, const xv_synth_object *b, int size) {
    const int *p = a->bb, *q = b->bb;
    switch (rel) {
    case XV_REL_LEFT_OF: return p[0] + p[2] <= q[0];
    case XV_REL_RIGHT_OF: return q[0] + q[2] <= p[0];
    case XV_REL_ABOVE: return p[1] + p[3] <= q[1];
    case XV_REL_BELOW: return q[1] + q[3] <= p[1];
    case XV_REL_NEXT_TO: {
        bool side_by_side = (p[1] > q[1] ? p[1] : q[1]) < (p[1] + p[3] < q[1] + q[3] ? p[1] + p[3] : q[1] + q[3]);
        int gap_x = p[0] > q[0] ? p[0] - (q[0] + q[2]) : q[0] - (p[0] + p[2]);
        return side_by_side && (float)gap_x <= XV_SYNTH_NEXT_TO_FRAC * (float)size;
    }
    case XV_REL_LARGER: return a->size > b->size;
    case XV_REL_SMALLER: return a->size < b->size;
    default: return false;
    }
}
