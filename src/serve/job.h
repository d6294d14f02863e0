/* A model request (one /v1/... call) and the bounded queue that batches them.
 *
 * The HTTP thread parses a request into a job, pushes it and waits; a worker
 * takes up to `batch` queued jobs of the same kind (waiting at most
 * `batch_wait_ms` for more to arrive), runs them through the model together
 * (run.h) and marks each done. A job is shared by its HTTP thread and a
 * worker: whichever lets go of it last frees it. */
#ifndef XV_SERVE_JOB_H
#define XV_SERVE_JOB_H

#include <stdbool.h>

#include "data/image.h"

typedef enum {
    XV_JOB_EMBED,        /* texts and/or one image -> ITC features */
    XV_JOB_SEARCH_TEXT,  /* one text -> images of the index */
    XV_JOB_SEARCH_IMAGE, /* one image -> the given texts */
    XV_JOB_MATCH,        /* one image, texts -> ITM */
    XV_JOB_GROUND,       /* one image, texts -> boxes */
    XV_JOB_KINDS
} xv_job_kind;

typedef struct xv_job {
    xv_job_kind kind;
    /* input */
    xv_image image; /* image.rgb NULL when the request has none */
    char *image_name; /* the path or "upload": names the image in answers */
    char **texts;
    int n_texts;
    int k, rerank;
    /* output: an HTTP status and a JSON body (malloc'd) */
    int status;
    char *body;
    /* queue state (the queue's lock) */
    double queued_at;
    bool done;
    int refs;
    struct xv_job *next;
} xv_job;

xv_job *xv_job_new(xv_job_kind kind); /* NULL when out of memory */
/* The one error body of the server: {"error": {"code": STATUS, "message": M}}
 * (malloc'd; NULL when out of memory). */
char *xv_error_json(int status, const char *message);
/* That body, with its status, as the job's answer. */
void xv_job_fail(xv_job *j, int status, const char *message);

typedef struct xv_queue xv_queue;

xv_queue *xv_queue_new(int capacity, int batch, int batch_wait_ms);
void xv_queue_free(xv_queue *q);
/* A request for the model has arrived and is being read (delta +1), or went
 * away unqueued (-1). Workers wait for a batch to fill only while requests
 * are arriving: a lone request runs at once. */
void xv_queue_arriving(xv_queue *q, int delta);
/* Queue a job (taking a reference for the worker); false when the queue is
 * full or closed. It no longer counts as arriving (it was counted by
 * xv_queue_arriving). */
bool xv_queue_push(xv_queue *q, xv_job *j);
/* A worker's next batch: up to `batch` jobs of the oldest job's kind, in
 * arrival order, waiting at most `batch_wait_ms` for more while requests are
 * arriving. Blocks; 0 once the queue is closed and empty. */
int xv_queue_take(xv_queue *q, xv_job **jobs, int cap);
/* The worker's answer is in the job: wake its HTTP thread, drop the worker's reference. */
void xv_queue_done(xv_queue *q, xv_job *j);
/* The HTTP thread waits at most timeout_s for its job; false on time-out. */
bool xv_queue_wait(xv_queue *q, xv_job *j, double timeout_s);
/* Drop the HTTP thread's reference (the job is freed when none is left). */
void xv_queue_release(xv_queue *q, xv_job *j);
int xv_queue_depth(xv_queue *q);
/* No more jobs are accepted; workers drain what is queued, then take() returns 0. */
void xv_queue_close(xv_queue *q);

#endif
