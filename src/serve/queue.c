/* The bounded job queue with dynamic micro-batching (job.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/fs.h"
#include "job.h"

struct xv_queue {
    pthread_mutex_t lock;
    pthread_cond_t arrived; /* a job was queued, or the queue closed */
    pthread_cond_t done;    /* a job was answered */
    xv_job *head, *tail;
    int depth, capacity, batch, batch_wait_ms;
    int arriving; /* requests being read that will be pushed */
    bool closed;
};

xv_job *xv_job_new(xv_job_kind kind) {
    xv_job *j = calloc(1, sizeof *j);
    if (j) {
        j->kind = kind;
        j->refs = 1;
    }
    return j;
}

static void job_free(xv_job *j) {
    xv_image_free(&j->image);
    free(j->image_name);
    for (int i = 0; i < j->n_texts; i++) free(j->texts[i]);
    free(j->texts);
    free(j->body);
    free(j);
}

char *xv_error_json(int status, const char *message) {
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddNumberToObject(err, "code", status);
    cJSON_AddStringToObject(err, "message", message);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

void xv_job_fail(xv_job *j, int status, const char *message) {
    free(j->body);
    j->body = xv_error_json(status, message);
    j->status = status;
}

xv_queue *xv_queue_new(int capacity, int batch, int batch_wait_ms) {
    xv_queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->arrived, &ca);
    pthread_cond_init(&q->done, &ca);
    pthread_condattr_destroy(&ca);
    q->capacity = capacity;
    q->batch = batch;
    q->batch_wait_ms = batch_wait_ms;
    return q;
}

void xv_queue_free(xv_queue *q) {
    if (!q) return;
    while (q->head) {
        xv_job *j = q->head;
        q->head = j->next;
        job_free(j);
    }
    pthread_cond_destroy(&q->arrived);
    pthread_cond_destroy(&q->done);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

void xv_queue_arriving(xv_queue *q, int delta) {
    pthread_mutex_lock(&q->lock);
    q->arriving += delta;
    pthread_cond_broadcast(&q->arrived);
    pthread_mutex_unlock(&q->lock);
}

bool xv_queue_push(xv_queue *q, xv_job *j) {
    pthread_mutex_lock(&q->lock);
    q->arriving--;
    bool ok = !q->closed && q->depth < q->capacity;
    if (ok) {
        j->refs++;
        j->queued_at = xv_monotonic_seconds();
        j->next = NULL;
        if (q->tail) q->tail->next = j;
        else q->head = j;
        q->tail = j;
        q->depth++;
        pthread_cond_broadcast(&q->arrived);
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static int count_kind(const xv_queue *q, xv_job_kind kind) {
    int n = 0;
    for (const xv_job *j = q->head; j; j = j->next) n += j->kind == kind;
    return n;
}

static struct timespec deadline_after(double seconds) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double ns = (double)t.tv_nsec + seconds * 1e9;
    t.tv_sec += (time_t)(ns / 1e9);
    t.tv_nsec = (long)(ns - (double)(time_t)(ns / 1e9) * 1e9);
    return t;
}

/* Take *link (whose predecessor is prev) out of the queue. */
static xv_job *unlink_job(xv_queue *q, xv_job **link, xv_job *prev) {
    xv_job *j = *link;
    *link = j->next;
    if (q->tail == j) q->tail = prev;
    q->depth--;
    return j;
}

int xv_queue_take(xv_queue *q, xv_job **jobs, int cap) {
    const int want = cap < q->batch ? cap : q->batch;
    int n = 0;
    pthread_mutex_lock(&q->lock);
    while (n == 0) {
        while (!q->head && !q->closed) pthread_cond_wait(&q->arrived, &q->lock);
        if (!q->head) break; /* closed and drained */
        const xv_job_kind kind = q->head->kind;
        /* A short wait lets concurrent requests of the same kind join the
         * batch; the oldest job waits at most batch_wait_ms for it, and only
         * while other requests are on their way. */
        if (want > 1 && q->batch_wait_ms > 0) {
            struct timespec until = deadline_after(q->batch_wait_ms * 1e-3);
            while (!q->closed && q->arriving > 0 && count_kind(q, kind) < want)
                if (pthread_cond_timedwait(&q->arrived, &q->lock, &until) == ETIMEDOUT) break;
        }
        xv_job **link = &q->head, *prev = NULL;
        while (*link && n < want) {
            if ((*link)->refs == 1) /* its request gave up waiting (time limit): drop it unrun */
                job_free(unlink_job(q, link, prev));
            else if ((*link)->kind == kind)
                jobs[n++] = unlink_job(q, link, prev);
            else
                prev = *link, link = &(*link)->next;
        }
    }
    pthread_mutex_unlock(&q->lock);
    return n;
}

static void release_locked(xv_job *j) {
    if (--j->refs == 0) job_free(j);
}

void xv_queue_done(xv_queue *q, xv_job *j) {
    pthread_mutex_lock(&q->lock);
    j->done = true;
    pthread_cond_broadcast(&q->done);
    release_locked(j);
    pthread_mutex_unlock(&q->lock);
}

bool xv_queue_wait(xv_queue *q, xv_job *j, double timeout_s) {
    struct timespec until = deadline_after(timeout_s);
    pthread_mutex_lock(&q->lock);
    while (!j->done)
        if (pthread_cond_timedwait(&q->done, &q->lock, &until) == ETIMEDOUT) break;
    bool done = j->done;
    pthread_mutex_unlock(&q->lock);
    return done;
}

void xv_queue_release(xv_queue *q, xv_job *j) {
    pthread_mutex_lock(&q->lock);
    release_locked(j);
    pthread_mutex_unlock(&q->lock);
}

int xv_queue_depth(xv_queue *q) {
    pthread_mutex_lock(&q->lock);
    int d = q->depth;
    pthread_mutex_unlock(&q->lock);
    return d;
}

void xv_queue_close(xv_queue *q) {
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->arrived);
    pthread_mutex_unlock(&q->lock);
}
