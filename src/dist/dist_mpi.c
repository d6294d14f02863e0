/* The Open MPI implementation of dist.h (compiled when CMake finds MPI). */
#include "dist/dist.h"

#include <mpi.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_world = 1, g_rank = 0, g_mpi; /* g_mpi: MPI_Init done */
static double g_timeout = 600;             /* seconds a collective may wait; 0 = for ever */

/* Started by a process manager (mpirun, srun)? Without one, MPI_Init would
 * start a singleton runtime for nothing: stay a world of one. */
static int launched_by_mpirun(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

static xv_status mpi_fail(int rc, const char *call) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return xv_error(XV_ERR_IO, "rank %d of %d: %s failed: %s (another rank probably died)", g_rank, g_world, call,
                    msg);
}
/* The watchdog: every collective is started non-blocking and waited for
 * here, so a rank that hangs without dying (a stalled file system, a stopped
 * process) ends the job after XV_DIST_TIMEOUT seconds instead of leaving the
 * others waiting for ever. */
static int wait_for(MPI_Request *req, const char *what) {
    const double t0 = MPI_Wtime();
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        if (g_timeout > 0 && MPI_Wtime() - t0 > g_timeout)
            xv_dist_abort(1, "%s: no answer from the other ranks for %.0f s (XV_DIST_TIMEOUT): a rank hangs; "
                             "ending the job", what, g_timeout);
        /* Open MPI moves a collective on only inside its calls, round by
         * round: poll at once (yielding the core to a process that wants it)
         * for the first second, as a blocking call does; sleep between polls
         * after that, for a rank that waits long for a slower one. */
        if (MPI_Wtime() - t0 < 1.0) sched_yield();
        else nanosleep(&(struct timespec){0, 50000}, NULL);
    }
}

/* A non-blocking collective's start status, then its completion's. */
static int started(int rc, MPI_Request *q, const char *what) { return rc != MPI_SUCCESS ? rc : wait_for(q, what); }

#define MPI_TRY(call, what)                                                                                        \
    do {                                                                                                           \
        int rc_ = (call);                                                                                          \
        if (rc_ != MPI_SUCCESS) return mpi_fail(rc_, what);                                                        \
    } while (0)

xv_status xv_dist_init(int *argc, char ***argv) {
    if (g_mpi || !launched_by_mpirun()) return XV_OK;
    int provided = 0;
    /* Only the main thread calls MPI (OpenMP workers never do). */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return xv_error(XV_ERR_IO, "MPI_Init failed");
    g_mpi = 1;
    /* Errors come back as codes, so the message can name the call and rank. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    const char *t = getenv("XV_DIST_TIMEOUT");
    if (t && *t) {
        char *end;
        double v = strtod(t, &end);
        if (*end || !(v >= 0)) return xv_error(XV_ERR_INVALID_ARG, "XV_DIST_TIMEOUT=%s: expected seconds >= 0", t);
        g_timeout = v;
    }
    return XV_OK;
}

void xv_dist_finalize(void) {
    if (!g_mpi) return;
    xv_dist_barrier();
    MPI_Finalize();
    g_mpi = 0;
}

void xv_dist_abort(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (g_world > 1) fprintf(stderr, "rank %d of %d: ", g_rank, g_world);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    if (g_mpi && g_world > 1) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

int xv_dist_world(void) { return g_world; }
int xv_dist_rank(void) { return g_rank; }
int xv_dist_has_mpi(void) { return 1; }

xv_status xv_dist_barrier(void) {
    MPI_Request q;
    if (g_world > 1) MPI_TRY(started(MPI_Ibarrier(MPI_COMM_WORLD, &q), &q, "MPI_Barrier"), "MPI_Barrier");
    return XV_OK;
}

/* MPI counts are int: big buffers go in pieces of at most 1 GiB. */
#define CHUNK ((size_t)1 << 30)

xv_status xv_dist_broadcast(void *buf, size_t bytes, int root) {
    if (g_world == 1) return XV_OK;
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t n = bytes - off < CHUNK ? bytes - off : CHUNK;
        MPI_Request q;
        MPI_TRY(started(MPI_Ibcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD, &q), &q, "MPI_Bcast"),
                "MPI_Bcast");
    }
    return XV_OK;
}

xv_status xv_dist_allgather(const void *send, void *recv, size_t bytes) {
    if (g_world == 1) {
        memmove(recv, send, bytes);
        return XV_OK;
    }
    if (bytes > CHUNK) return xv_error(XV_ERR_UNSUPPORTED, "all-gather of %zu bytes per rank (limit 1 GiB)", bytes);
    MPI_Request q;
    MPI_TRY(started(MPI_Iallgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD, &q), &q,
                    "MPI_Allgather"),
            "MPI_Allgather");
    return XV_OK;
}

static xv_status allreduce(void *v, int64_t n, MPI_Datatype type, size_t size, MPI_Op op, const char *what) {
    if (g_world == 1) return XV_OK;
    const int64_t step = (int64_t)(CHUNK / size);
    for (int64_t off = 0; off < n; off += step) {
        int64_t k = n - off < step ? n - off : step;
        MPI_Request q;
        MPI_TRY(started(MPI_Iallreduce(MPI_IN_PLACE, (char *)v + (size_t)off * size, (int)k, type, op,
                                       MPI_COMM_WORLD, &q),
                        &q, what),
                what);
    }
    return XV_OK;
}

xv_status xv_dist_allreduce_sum_f32(float *v, int64_t n) {
    return allreduce(v, n, MPI_FLOAT, sizeof *v, MPI_SUM, "MPI_Allreduce (sum of floats)");
}
xv_status xv_dist_allreduce_sum_f64(double *v, int64_t n) {
    return allreduce(v, n, MPI_DOUBLE, sizeof *v, MPI_SUM, "MPI_Allreduce (sum of doubles)");
}
xv_status xv_dist_allreduce_max_i32(int32_t *v, int64_t n) {
    return allreduce(v, n, MPI_INT32_T, sizeof *v, MPI_MAX, "MPI_Allreduce (max of ints)");
}

struct xv_dist_request {
    MPI_Request q;
};

xv_status xv_dist_iallreduce_sum_f32(float *v, int64_t n, xv_dist_request **req) {
    *req = NULL;
    if (g_world == 1) return XV_OK;
    if (n > (int64_t)(CHUNK / sizeof *v))
        return xv_error(XV_ERR_UNSUPPORTED, "non-blocking all-reduce of %lld floats (limit 2^28)", (long long)n);
    xv_dist_request *r = malloc(sizeof *r);
    if (!r) return xv_error(XV_ERR_NOMEM, "out of memory");
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r->q);
    if (rc != MPI_SUCCESS) {
        free(r);
        return mpi_fail(rc, "MPI_Iallreduce (sum of floats)");
    }
    *req = r;
    return XV_OK;
}

xv_status xv_dist_progress(xv_dist_request *req, int *done) {
    int flag = 1;
    if (req) MPI_TRY(MPI_Test(&req->q, &flag, MPI_STATUS_IGNORE), "MPI_Iallreduce (sum of floats)");
    if (done) *done = flag;
    return XV_OK;
}

xv_status xv_dist_wait(xv_dist_request *req) {
    if (!req) return XV_OK;
    const int rc = wait_for(&req->q, "MPI_Iallreduce (sum of floats)");
    free(req);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Iallreduce (sum of floats)");
    return XV_OK;
}

xv_status xv_dist_gather_bytes(const void *send, size_t len, void **out, size_t *lens) {
    *out = NULL;
    if (g_world == 1) {
        lens[0] = len;
        if (!(*out = malloc(len ? len : 1))) return xv_error(XV_ERR_NOMEM, "out of memory");
        memcpy(*out, send, len);
        return XV_OK;
    }
    if (len > CHUNK) return xv_error(XV_ERR_UNSUPPORTED, "gather of %zu bytes from one rank (limit 1 GiB)", len);
    int mine = (int)len, *counts = NULL, *displs = NULL;
    if (g_rank == 0) {
        counts = calloc((size_t)g_world, sizeof *counts);
        displs = calloc((size_t)g_world, sizeof *displs);
        if (!counts || !displs) {
            free(counts), free(displs);
            return xv_error(XV_ERR_NOMEM, "out of memory");
        }
    }
    xv_status st = XV_OK;
    MPI_Request q;
    int rc = started(MPI_Igather(&mine, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD, &q), &q, "MPI_Gather");
    if (rc != MPI_SUCCESS) st = mpi_fail(rc, "MPI_Gather (lengths)");
    size_t total = 0;
    if (st == XV_OK && g_rank == 0) {
        for (int r = 0; r < g_world; r++) {
            displs[r] = (int)total;
            lens[r] = (size_t)counts[r];
            total += (size_t)counts[r];
        }
        if (total > (size_t)INT32_MAX) st = xv_error(XV_ERR_UNSUPPORTED, "gather of %zu bytes (limit 2 GiB)", total);
        else if (!(*out = malloc(total ? total : 1))) st = xv_error(XV_ERR_NOMEM, "out of memory");
    }
    /* A rank that failed returns at once; the caller ends the job
     * (xv_dist_abort), which also frees the ranks waiting here. */
    if (st == XV_OK) {
        rc = started(MPI_Igatherv(send, mine, MPI_BYTE, *out, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD, &q), &q,
                     "MPI_Gatherv");
        if (rc != MPI_SUCCESS) st = mpi_fail(rc, "MPI_Gatherv");
    }
    free(counts), free(displs);
    if (st != XV_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}
