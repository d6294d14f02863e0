/* Running a batch of jobs of one kind through the model (public API calls
 * only, the same ones the match / search / ground commands make) and writing
 * each job's JSON answer. */
#ifndef XV_SERVE_RUN_H
#define XV_SERVE_RUN_H

#include "job.h"
#include "xvlm.h"

typedef struct {
    const xvlm_model *model;
    const xvlm_images *index; /* text -> image searches (NULL: none) */
    const char *image_root;   /* the real path of --image-root (NULL: none), for result links */
} xv_run_env;

/* Answers every job (status + body). The jobs run together; when that fails
 * and there are several, each runs alone, so an error names its own request. */
void xv_run_batch(xvlm_ctx *ctx, const xv_run_env *env, xv_job **jobs, int n);

/* "/images/<path relative to the root>" (URL-escaped) when `path` lies inside
 * `root`, else NULL; malloc'd. */
char *xv_image_url(const char *root, const char *path);

#endif
