/* A small mutation fuzzer for fuzz targets built without libFuzzer (gcc builds,
 * ctest smoke runs). It has no coverage feedback: it replays the seeds, then
 * mutates them (bit flips, byte edits, insertions, deletions, copies, splices,
 * interesting integers, edited ASCII numbers) with the project's seeded RNG, for
 * XV_FUZZ_SECONDS seconds. Each input is passed in a buffer of exactly its size
 * so that sanitizers see any read past the end.
 *
 * usage: fuzz_<name> [DIR|FILE]...
 *   directories: seed corpora (missing ones are skipped with a note)
 *   only files:  replay each once (reproduce a crash) and exit
 * environment: XV_FUZZ_SECONDS (10), XV_FUZZ_SEED (1), XV_FUZZ_MAX_LEN (65536),
 *   XV_FUZZ_TIMEOUT (per input, 20 s), XV_FUZZ_CRASH_DIR (.) where the input that
 *   crashed or hung is saved as crash-<target>-seed<seed>. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/rng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Present in sanitizer runtimes only: lets us save the input before they exit. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

typedef struct {
    uint8_t *data;
    size_t size;
} input;

typedef struct {
    input *v;
    size_t n, cap;
} corpus;

/* What the crash handlers save; set before every run. */
static const uint8_t *volatile g_cur;
static volatile size_t g_cur_size;
static char g_crash_path[4096];

static void save_current(const char *why) {
    if (!g_crash_path[0]) return; /* replaying files: the input is already on disk */
    int fd = open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        size_t off = 0;
        while (off < g_cur_size) {
            ssize_t k = write(fd, g_cur + off, g_cur_size - off);
            if (k <= 0) break;
            off += (size_t)k;
        }
        close(fd);
    }
    /* async-signal-safe reporting: write(2) only */
    const char *parts[] = {"\n== fuzz driver: ", why, "; input saved to ", g_crash_path, "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (write(2, parts[i], strlen(parts[i])) < 0) break;
}

static void on_death(void) { save_current("sanitizer error"); }

static void on_signal(int sig) {
    save_current(sig == SIGALRM ? "input timed out" : "crashed");
    signal(sig == SIGALRM ? SIGABRT : sig, SIG_DFL);
    raise(sig == SIGALRM ? SIGABRT : sig);
}

static double env_num(const char *name, double dflt) {
    const char *s = getenv(name);
    char *end;
    double v = s ? strtod(s, &end) : dflt;
    return s && (end == s || *end) ? dflt : v;
}

static void corpus_add(corpus *c, const uint8_t *d, size_t n) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
        if (!c->v) abort(); /* the driver, not the library: out of memory ends the run */
    }
    input in = {malloc(n ? n : 1), n};
    if (!in.data) abort();
    if (n) memcpy(in.data, d, n);
    c->v[c->n++] = in;
}

static bool read_file(const char *path, corpus *c) {
    uint8_t *buf = NULL;
    size_t n = 0;
    if (xv_fs_read_file(path, INT64_C(1) << 30, &buf, &n) != XV_OK) return false;
    corpus_add(c, buf, n);
    free(buf);
    return true;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Files of a directory in name order, so a run is reproducible from its seed. */
static void read_dir(const char *dir, corpus *c) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz driver: no seed directory %s, using built-in inputs\n", dir);
        return;
    }
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof *names);
        if (!names || !(names[n] = strdup(e->d_name))) abort();
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) read_file(path, c);
        free(names[i]);
    }
    free(names);
}

/* ---- mutations ---- */

typedef struct {
    uint8_t *d;
    size_t n, cap;
} buf;

static uint64_t below(xv_rng *r, uint64_t n) { return n ? xv_rng_below(r, n) : 0; }

static void insert_bytes(buf *b, size_t at, const uint8_t *src, size_t k) {
    if (b->n + k > b->cap) k = b->cap - b->n;
    memmove(b->d + at + k, b->d + at, b->n - at);
    if (src) memcpy(b->d + at, src, k);
    b->n += k;
}

static void erase_bytes(buf *b, size_t at, size_t k) {
    if (at + k > b->n) k = b->n - at;
    memmove(b->d + at, b->d + at + k, b->n - at - k);
    b->n -= k;
}

static const uint8_t k_special_bytes[] = {0, 1, 2, 7, 8, 0x10, 0x20, 0x7F, 0x80, 0xFF, '"', '\\', '[', ']', '{',
                                          '}', ',', ':', '-', '.', 'e', '0', '1', '9'};
static const uint64_t k_special_ints[] = {0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x7FFFFFFF,
                                          0x80000000u, 0xFFFFFFFFu, 100000000, 100000001, 0x7FFFFFFFFFFFFFFFull,
                                          0x8000000000000000ull, ~0ull};
static const char *const k_special_numbers[] = {"0", "-1", "1", "2147483647", "2147483648", "4294967296",
                                                "9007199254740992", "9007199254740993", "18446744073709551615",
                                                "1e308", "1.5", "-0", "1e-300", "100000000"};

/* Replace a run of ASCII digits: text formats keep their sizes and offsets there. */
static void mutate_number(buf *b, xv_rng *r) {
    if (!b->n) return;
    size_t start = below(r, b->n), i = start;
    while (i < b->n && !(b->d[i] >= '0' && b->d[i] <= '9')) i++;
    if (i == b->n) return;
    size_t j = i;
    while (j < b->n && b->d[j] >= '0' && b->d[j] <= '9') j++;
    char num[32];
    if (xv_rng_u32(r) & 1) {
        snprintf(num, sizeof num, "%s", k_special_numbers[below(r, sizeof k_special_numbers / sizeof *k_special_numbers)]);
    } else { /* a nearby value: off-by-one and small shifts of offsets */
        size_t k = j - i < 20 ? j - i : 20;
        memcpy(num, b->d + i, k);
        num[k] = '\0';
        unsigned long long v = strtoull(num, NULL, 10);
        long long delta = (long long)below(r, 17) - 8;
        snprintf(num, sizeof num, "%llu", v + (unsigned long long)delta);
    }
    erase_bytes(b, i, j - i);
    insert_bytes(b, i, (const uint8_t *)num, strlen(num));
}

static void mutate_once(buf *b, xv_rng *r, const corpus *c) {
    switch (below(r, 10)) {
    case 0: /* flip a bit */
        if (b->n) b->d[below(r, b->n)] ^= (uint8_t)(1u << below(r, 8));
        break;
    case 1: /* random byte */
        if (b->n) b->d[below(r, b->n)] = (uint8_t)xv_rng_u32(r);
        break;
    case 2: /* special byte */
        if (b->n) b->d[below(r, b->n)] = k_special_bytes[below(r, sizeof k_special_bytes)];
        break;
    case 3: { /* insert random bytes */
        uint8_t tmp[8];
        size_t k = 1 + below(r, 8);
        for (size_t i = 0; i < k; i++) tmp[i] = (uint8_t)xv_rng_u32(r);
        insert_bytes(b, below(r, b->n + 1), tmp, k);
        break;
    }
    case 4: /* delete a range */
        if (b->n) erase_bytes(b, below(r, b->n), 1 + below(r, 16));
        break;
    case 5: { /* copy a range elsewhere (insert) */
        if (!b->n) break;
        size_t from = below(r, b->n), k = 1 + below(r, b->n - from < 32 ? b->n - from : 32);
        uint8_t tmp[32];
        memcpy(tmp, b->d + from, k);
        insert_bytes(b, below(r, b->n + 1), tmp, k);
        break;
    }
    case 6: { /* splice: our prefix, another input's suffix */
        const input *o = &c->v[below(r, c->n)];
        size_t keep = below(r, b->n + 1), from = below(r, o->size + 1);
        b->n = keep;
        insert_bytes(b, keep, o->data + from, o->size - from);
        break;
    }
    case 7: { /* little-endian special integer (length fields) */
        uint64_t v = k_special_ints[below(r, sizeof k_special_ints / sizeof *k_special_ints)];
        size_t w = (size_t)1 << below(r, 4); /* 1, 2, 4, 8 bytes */
        if (b->n < w) break;
        size_t at = below(r, b->n - w + 1);
        for (size_t i = 0; i < w; i++) b->d[at + i] = (uint8_t)(v >> (8 * i));
        break;
    }
    case 8:
        mutate_number(b, r);
        break;
    case 9: /* truncate */
        b->n = below(r, b->n + 1);
        break;
    }
}

static void run_one(const uint8_t *d, size_t n) {
    uint8_t *exact = malloc(n ? n : 1); /* exactly n bytes: overreads are caught */
    if (!exact) abort();
    if (n) memcpy(exact, d, n);
    g_cur = exact;
    g_cur_size = n;
    LLVMFuzzerTestOneInput(exact, n);
    g_cur_size = 0;
    free(exact);
}

int main(int argc, char **argv) {
    double seconds = env_num("XV_FUZZ_SECONDS", 10);
    uint64_t seed = (uint64_t)env_num("XV_FUZZ_SEED", 1);
    size_t max_len = (size_t)env_num("XV_FUZZ_MAX_LEN", 65536);
    unsigned timeout = (unsigned)env_num("XV_FUZZ_TIMEOUT", 20);
    const char *crash_dir = getenv("XV_FUZZ_CRASH_DIR");
    const char *target = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    snprintf(g_crash_path, sizeof g_crash_path, "%s/crash-%s-seed%llu", crash_dir ? crash_dir : ".", target,
             (unsigned long long)seed);
    if (crash_dir) mkdir(crash_dir, 0755);

    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(on_death);
    } else {
        signal(SIGSEGV, on_signal);
        signal(SIGBUS, on_signal);
        signal(SIGFPE, on_signal);
        signal(SIGILL, on_signal);
        signal(SIGABRT, on_signal);
    }
    signal(SIGALRM, on_signal);

    corpus c = {0};
    bool all_files = argc > 1;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        all_files &= stat(argv[i], &sb) == 0 && S_ISREG(sb.st_mode);
    }
    if (all_files) { /* reproduce mode */
        g_crash_path[0] = '\0';
        for (int i = 1; i < argc; i++) {
            if (!read_file(argv[i], &c)) {
                fprintf(stderr, "%s: cannot read %s\n", target, argv[i]);
                return 1;
            }
            printf("%s: running %s (%zu bytes)\n", target, argv[i], c.v[c.n - 1].size);
            fflush(stdout);
            alarm(timeout);
            run_one(c.v[c.n - 1].data, c.v[c.n - 1].size);
            alarm(0);
        }
        printf("%s: %zu inputs ran without a crash\n", target, c.n);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) == 0 && S_ISREG(sb.st_mode)) read_file(argv[i], &c);
        else read_dir(argv[i], &c);
    }

    xv_rng r;
    xv_rng_seed(&r, seed);
    size_t n_seeds = c.n;
    corpus_add(&c, NULL, 0);
    for (int i = 0; i < 16; i++) { /* random inputs so targets without seeds still get bytes */
        uint8_t tmp[256];
        size_t n = below(&r, sizeof tmp + 1);
        for (size_t k = 0; k < n; k++) tmp[k] = (uint8_t)xv_rng_u32(&r);
        corpus_add(&c, tmp, n);
    }
    size_t biggest = max_len;
    for (size_t i = 0; i < c.n; i++) biggest = c.v[i].size > biggest ? c.v[i].size : biggest;
    buf b = {malloc(biggest), 0, biggest};
    if (!b.d) abort();

    double t0 = xv_monotonic_seconds();
    unsigned long long runs = 0;
    for (size_t i = 0; i < c.n; i++, runs++) {
        alarm(timeout);
        run_one(c.v[i].data, c.v[i].size);
    }
    /* Random walk: keep mutating the last mutant (deeper edits), restart from a corpus entry at times. */
    b.n = 0;
    while (xv_monotonic_seconds() - t0 < seconds) {
        for (int k = 0; k < 64; k++, runs++) {
            if (!b.n || below(&r, 4) == 0) {
                /* seed files when there are some: random bytes rarely get past a parser's first check */
                size_t pick = n_seeds && below(&r, 4) ? below(&r, n_seeds) : below(&r, c.n);
                const input *in = &c.v[pick];
                b.n = in->size;
                memcpy(b.d, in->data, in->size);
            }
            size_t edits = 1 + below(&r, 2);
            for (size_t e = 0; e < edits; e++) mutate_once(&b, &r, &c);
            alarm(timeout);
            run_one(b.d, b.n);
        }
    }
    alarm(0);
    double dt = xv_monotonic_seconds() - t0;
    printf("%s: %llu runs in %.1f s (%.0f/s), %zu seed files, seed %llu, no crash\n", target, runs, dt,
           runs / (dt > 0 ? dt : 1), n_seeds, (unsigned long long)seed);
    for (size_t i = 0; i < c.n; i++) free(c.v[i].data);
    free(c.v);
    free(b.d);
    return 0;
}
