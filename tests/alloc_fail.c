#include "alloc_fail.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);

/* Atomic: the pretraining loader allocates from its worker threads too. */
static atomic_bool g_armed;
static atomic_long g_count;
static atomic_long g_fail_at;
static atomic_bool g_injected;

/* True when this allocation is the one to fail. */
static bool fail_this(void) {
    if (!atomic_load(&g_armed)) return false;
    long k = atomic_fetch_add(&g_count, 1) + 1;
    if (k != atomic_load(&g_fail_at)) return false;
    atomic_store(&g_injected, true);
    return true;
}

void *__wrap_malloc(size_t n) { return fail_this() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return fail_this() ? NULL : __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { return fail_this() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fail_this() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fail_this() ? NULL : __real_strndup(s, n); }
void *__wrap_aligned_alloc(size_t align, size_t n) { return fail_this() ? NULL : __real_aligned_alloc(align, n); }

static void *cjson_malloc(size_t n) { return __wrap_malloc(n); }

void xv_alloc_fail_install(void) {
    cJSON_Hooks hooks = {.malloc_fn = cjson_malloc, .free_fn = NULL}; /* NULL free: libc's */
    cJSON_InitHooks(&hooks);
}

void xv_alloc_fail_arm(long n) {
    atomic_store(&g_count, 0);
    atomic_store(&g_fail_at, n);
    atomic_store(&g_injected, false);
    atomic_store(&g_armed, true);
}

long xv_alloc_fail_disarm(void) {
    atomic_store(&g_armed, false);
    return atomic_load(&g_count);
}

bool xv_alloc_fail_injected(void) { return atomic_load(&g_injected); }
