/* core/fs: the atomic writer keeps the old file on abort and failure, leaves
 * no temp file, refuses to replace a FIFO or a folder; mkdir -p; whole-file
 * reads with a cap; path joining; the clocks. All in a scratch folder under
 * $TMPDIR. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "testutil.h"

static char g_dir[512];

static const char *at(const char *name) {
    static char buf[4][700];
    static int k;
    char *s = buf[k++ % 4];
    snprintf(s, sizeof buf[0], "%s/%s", g_dir, name);
    return s;
}

/* The file's text, "" when unreadable (the reads themselves are tested below). */
static char *text_of(const char *path) {
    uint8_t *d = NULL;
    size_t n = 0;
    if (xv_fs_read_file(path, 1 << 20, &d, &n) != XV_OK) return strdup("");
    return (char *)d;
}

static bool exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Names in the scratch folder that end in ".tmp". */
static int temp_files(void) {
    DIR *d = opendir(g_dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        n += len > 4 && !strcmp(e->d_name + len - 4, ".tmp");
    }
    if (d) closedir(d);
    return n;
}

static void test_atomic_write(void) {
    const char *path = at("out.txt");
    CHECK_OK(xv_fs_write_file(path, "old", 3, XV_FS_DURABLE));
    char *s = text_of(path);
    CHECK(!strcmp(s, "old"), "written: '%s'", s);
    free(s);

    xv_fs_atomic w;
    CHECK_OK(xv_fs_atomic_open(path, XV_FS_DURABLE, &w));
    CHECK(w.f && exists(w.tmp), "temp file open while writing");
    fputs("new but abandoned", w.f);
    xv_fs_atomic_abort(&w);
    s = text_of(path);
    CHECK(!strcmp(s, "old"), "abort leaves the old file: '%s'", s);
    free(s);
    CHECK(temp_files() == 0, "abort removes the temp file");
    xv_fs_atomic_abort(&w); /* released already: a no-op */

    CHECK_OK(xv_fs_atomic_open(path, XV_FS_DURABLE, &w));
    fputs("new", w.f);
    s = text_of(path);
    CHECK(!strcmp(s, "old"), "target unchanged until commit: '%s'", s);
    free(s);
    CHECK_OK(xv_fs_atomic_commit(&w));
    s = text_of(path);
    CHECK(!strcmp(s, "new"), "commit replaces the file: '%s'", s);
    free(s);
    CHECK(temp_files() == 0 && w.f == NULL && w.tmp == NULL, "commit leaves no temp file and releases the writer");

    /* A write error on the stream fails the commit and keeps the old file. */
    CHECK_OK(xv_fs_atomic_open(path, XV_FS_DURABLE, &w));
    fputs("half", w.f);
    char c;
    (void)!fread(&c, 1, 1, w.f); /* reading a write-only stream sets its error flag */
    CHECK(xv_fs_atomic_commit(&w) == XV_ERR_IO && strstr(xv_error_message(), "out.txt.tmp"),
          "stream error fails the commit, naming the temp file: %s", xv_error_message());
    s = text_of(path);
    CHECK(!strcmp(s, "new"), "failed commit leaves the old file: '%s'", s);
    free(s);
    CHECK(temp_files() == 0, "failed commit removes the temp file");

    /* A stale temp file from a killed run is simply overwritten. */
    CHECK_OK(xv_fs_write_file(at("stale.txt.tmp"), "junk", 4, XV_FS_DURABLE));
    CHECK_OK(xv_fs_write_file(at("stale.txt"), "fresh", 5, XV_FS_NO_FSYNC));
    CHECK(!exists(at("stale.txt.tmp")), "stale temp file replaced and renamed");
    char *fresh = text_of(at("stale.txt"));
    CHECK(!strcmp(fresh, "fresh"), "written without fsync: %s", fresh);
    free(fresh);
    CHECK_OK(xv_fs_write_file(at("empty.txt"), NULL, 0, XV_FS_DURABLE));
    CHECK(exists(at("empty.txt")), "empty file written");

    CHECK(xv_fs_write_file(at("no/such/dir/x"), "x", 1, XV_FS_DURABLE) == XV_ERR_IO && strstr(xv_error_message(), "no/such/dir"),
          "missing folder named: %s", xv_error_message());
    CHECK(xv_fs_atomic_open("", XV_FS_DURABLE, &w) == XV_ERR_INVALID_ARG && w.f == NULL, "empty path refused");
}

static void test_refuses_special_targets(void) {
    const char *fifo = at("pipe");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo %s: %s", fifo, strerror(errno));
    xv_fs_atomic w;
    CHECK(xv_fs_atomic_open(fifo, XV_FS_DURABLE, &w) == XV_ERR_IO && strstr(xv_error_message(), fifo) &&
              strstr(xv_error_message(), "FIFO"),
          "FIFO target refused, named: %s", xv_error_message());
    CHECK(w.f == NULL && !exists(at("pipe.tmp")), "nothing created for a refused FIFO");
    struct stat st;
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO is still there");

    const char *dir = at("folder");
    CHECK(mkdir(dir, 0755) == 0, "mkdir");
    CHECK(xv_fs_write_file(dir, "x", 1, XV_FS_DURABLE) == XV_ERR_IO && strstr(xv_error_message(), dir) &&
              strstr(xv_error_message(), "directory"),
          "folder target refused, named: %s", xv_error_message());
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && !exists(at("folder.tmp")), "folder untouched");

    /* A FIFO sitting at the temp name must not block the writer. */
    CHECK(mkfifo(at("t.txt.tmp"), 0600) == 0, "mkfifo");
    CHECK(xv_fs_write_file(at("t.txt"), "x", 1, XV_FS_DURABLE) == XV_ERR_IO && strstr(xv_error_message(), "t.txt.tmp"),
          "FIFO at the temp name refused: %s", xv_error_message());
    CHECK(!exists(at("t.txt")), "no target written");
    unlink(at("t.txt.tmp"));
    unlink(fifo);
}

static void test_mkdir_p(void) {
    const char *deep = at("a/b//c/d/");
    CHECK_OK(xv_fs_mkdir_p(deep));
    struct stat st;
    CHECK(stat(at("a/b/c/d"), &st) == 0 && S_ISDIR(st.st_mode), "nested folders created");
    CHECK_OK(xv_fs_mkdir_p(deep)); /* existing: fine */
    CHECK_OK(xv_fs_mkdir_p(g_dir));
    CHECK_OK(xv_fs_write_file(at("a/file"), "x", 1, XV_FS_DURABLE));
    CHECK(xv_fs_mkdir_p(at("a/file")) == XV_ERR_IO && strstr(xv_error_message(), "a/file") &&
              strstr(xv_error_message(), "not a folder"),
          "existing file in the way named: %s", xv_error_message());
    CHECK(xv_fs_mkdir_p(at("a/file/sub")) == XV_ERR_IO && strstr(xv_error_message(), "a/file/sub"),
          "a file as a parent named: %s", xv_error_message());
    CHECK(xv_fs_mkdir_p("") == XV_ERR_INVALID_ARG, "empty path refused");

    /* Undoing a mkdir -p: only the folders it made go, the existing parent stays. */
    char *made = xv_fs_first_missing(at("a/new/x/y"));
    CHECK(made && !strcmp(made, at("a/new")), "first missing: %s", made ? made : "(none)");
    CHECK_OK(xv_fs_mkdir_p(at("a/new/x/y")));
    xv_fs_rmdir_up(at("a/new/x/y"), made);
    CHECK(stat(at("a/new"), &st) != 0 && stat(at("a/b"), &st) == 0, "a/new removed, a/b kept");
    free(made);
    CHECK(xv_fs_first_missing(at("a/b")) == NULL, "an existing folder: nothing to undo");
    made = xv_fs_first_missing(at("a/new2/x"));
    CHECK_OK(xv_fs_mkdir_p(at("a/new2/x")));
    CHECK_OK(xv_fs_write_file(at("a/new2/keep"), "x", 1, XV_FS_DURABLE));
    xv_fs_rmdir_up(at("a/new2/x"), made);
    CHECK(stat(at("a/new2/x"), &st) != 0 && stat(at("a/new2/keep"), &st) == 0, "stops at a folder not empty");
    free(made);
}

static void test_read_file(void) {
    uint8_t *d = NULL;
    size_t n = 99;
    CHECK_OK(xv_fs_write_file(at("r.bin"), "ab\0cd", 5, XV_FS_DURABLE));
    CHECK_OK(xv_fs_read_file(at("r.bin"), 5, &d, &n));
    CHECK(d && n == 5 && !memcmp(d, "ab\0cd", 5) && d[5] == '\0', "bytes read, NUL after them");
    free(d);
    CHECK(xv_fs_read_file(at("r.bin"), 4, &d, &n) == XV_ERR_NOMEM && !d && n == 0 &&
              strstr(xv_error_message(), "r.bin") && strstr(xv_error_message(), "limit 4"),
          "over the cap refused, naming file and limit: %s", xv_error_message());
    CHECK(xv_fs_read_file(at("missing"), 100, &d, &n) == XV_ERR_IO && !d && strstr(xv_error_message(), "missing"),
          "missing file named: %s", xv_error_message());
    CHECK(xv_fs_read_file(g_dir, 100, &d, &n) == XV_ERR_IO && strstr(xv_error_message(), "not a regular file"),
          "a folder refused: %s", xv_error_message());
    CHECK(mkfifo(at("rp"), 0600) == 0, "mkfifo");
    CHECK(xv_fs_read_file(at("rp"), 100, &d, &n) == XV_ERR_IO && strstr(xv_error_message(), "rp"),
          "a FIFO refused without blocking: %s", xv_error_message());
    unlink(at("rp"));
    CHECK_OK(xv_fs_read_file(at("empty.txt"), 100, &d, &n));
    CHECK(d && n == 0 && d[0] == '\0', "empty file reads as an empty string");
    free(d);
}

static void join_is(const char *dir, const char *name, const char *want) {
    char *s = xv_fs_join(dir, name);
    CHECK(s && !strcmp(s, want), "join('%s', '%s') = '%s', want '%s'", dir ? dir : "(null)", name, s ? s : "(null)",
          want);
    free(s);
}

static void test_join(void) {
    join_is("a", "b", "a/b");
    join_is("a/", "b", "a/b");
    join_is("a//", "b/c", "a/b/c");
    join_is("/", "b", "/b");
    join_is("", "b", "b");
    join_is(NULL, "b", "b");
    join_is("a", "/abs", "/abs");
    join_is("a", "", "a/");
}

static void test_clocks(void) {
    double t0 = xv_monotonic_seconds(), c0 = xv_cpu_seconds();
    volatile double x = 0;
    for (int i = 0; i < 2000000; i++) x += i * 1e-9;
    double t1 = xv_monotonic_seconds(), c1 = xv_cpu_seconds();
    CHECK(t0 > 0 && t1 >= t0, "monotonic clock does not go back (%.9f, %.9f)", t0, t1);
    CHECK(c1 > c0 && c0 >= 0, "CPU time advances while computing (%.9f, %.9f)", c0, c1);
    double prev = t1, worst = 0;
    for (int i = 0; i < 100000; i++) {
        double t = xv_monotonic_seconds();
        if (prev - t > worst) worst = prev - t;
        prev = t;
    }
    CHECK(worst == 0, "never steps back over 100000 reads (%.3g s)", worst);
}

/* The dataset path policy (hostile names): "..", absolute paths and a
 * symbolic link out of the root are refused, the root's parent holds a decoy
 * that must never be reached, a FIFO is refused without blocking (alarm()
 * is the watchdog), and allow_outside_root opts out. */
static void test_root_policy(void) {
    alarm(10);
    char root[600], decoy[600], in[600], link[600], fifo[600], abs_decoy[700];
    snprintf(root, sizeof root, "%s/root", g_dir);
    snprintf(decoy, sizeof decoy, "%s/decoy.jpg", g_dir);
    snprintf(in, sizeof in, "%s/root/a.jpg", g_dir);
    snprintf(link, sizeof link, "%s/root/out.jpg", g_dir);
    snprintf(fifo, sizeof fifo, "%s/root/pipe.jpg", g_dir);
    CHECK_OK(xv_fs_mkdir_p(root));
    xv_test_write_file(decoy, "decoy");
    xv_test_write_file(in, "inside");
    CHECK(symlink(decoy, link) == 0, "symlink");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    snprintf(abs_decoy, sizeof abs_decoy, "%s", decoy);
    const xv_fs_root strict = {.root = root}, loose = {.root = root, .allow_outside_root = true}, none = {0};
    char *p = NULL;
    CHECK(xv_fs_resolve(&strict, "a.jpg", &p) == XV_FS_NAME_OK && p && strstr(p, "/root/a.jpg"), "inside: %s", p);
    free(p);
    CHECK(xv_fs_resolve(&strict, "sub/../a.jpg", &p) == XV_FS_NAME_ABSENT && !p, "missing component");
    CHECK(xv_fs_resolve(&strict, "../decoy.jpg", &p) == XV_FS_NAME_OUTSIDE_ROOT && !p &&
              strstr(xv_error_message(), "outside the image root"),
          "..: %s", xv_error_message());
    CHECK(xv_fs_resolve(&strict, abs_decoy, &p) == XV_FS_NAME_OUTSIDE_ROOT && !p, "absolute path");
    CHECK(xv_fs_resolve(&strict, "out.jpg", &p) == XV_FS_NAME_OUTSIDE_ROOT && !p, "symlink out of the root");
    CHECK(xv_fs_resolve(&strict, "nope.jpg", &p) == XV_FS_NAME_ABSENT && !p, "absent");
    CHECK(xv_fs_resolve(&loose, "../decoy.jpg", &p) == XV_FS_NAME_OK && p, "allow_outside_root");
    free(p);
    CHECK(xv_fs_resolve(&none, in, &p) == XV_FS_NAME_OK && p && !strcmp(p, in), "no root: as written");
    free(p);
    /* the FIFO resolves inside the root but is not opened: no hang */
    CHECK(xv_fs_resolve(&strict, "pipe.jpg", &p) == XV_FS_NAME_OK && p, "fifo resolves");
    int fd = 0;
    CHECK(xv_fs_open_regular(p, &fd) != XV_OK && fd == -1 && strstr(xv_error_message(), "a FIFO"), "fifo refused: %s",
          xv_error_message());
    uint8_t *d = NULL;
    size_t n;
    CHECK(xv_fs_read_file(p, 100, &d, &n) != XV_OK && !d, "fifo not read");
    free(p);
    CHECK(xv_fs_write_file(fifo, "x", 1, XV_FS_NO_FSYNC) != XV_OK, "a FIFO is never replaced by a write");
    alarm(0);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/xv_fs_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) return xv_test_skip("cannot create a scratch folder");
    test_atomic_write();
    test_refuses_special_targets();
    test_mkdir_p();
    test_read_file();
    test_join();
    test_clocks();
    test_root_policy();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return xv_test_finish("test_fs");
}
