/* `cmake --install` into a DESTDIR staging tree gives a usable library: the
 * header, libxvlm.so with its soname exporting only xvlm_* symbols, the xvlm
 * program and xvlm.pc; the README's C snippet and examples/retrieve_and_ground.c
 * build with `cc $(pkg-config --cflags --libs xvlm)` against that tree alone
 * and run on a tiny model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

static char g_dir[256];

/* g_dir/name; keeps its last 8 results (a command line needs up to 7). */
static char *in_dir(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

/* The README's first ```c block, written to `path`. */
static bool readme_snippet(const char *src, const char *path) {
    char readme[512];
    snprintf(readme, sizeof readme, "%s/README.md", src);
    char *text = xv_test_read_file(readme, NULL);
    char *a = text ? strstr(text, "```c\n") : NULL, *b = a ? strstr(a + 5, "```") : NULL;
    bool ok = a && b;
    if (ok) {
        *b = 0;
        ok = xv_test_write_file(path, a + 5);
    }
    free(text);
    return ok;
}

int main(void) {
    const char *build = getenv("XV_BUILD_DIR"), *src = getenv("XV_SOURCE_DIR");
    if (!build || !src) return xv_test_skip("XV_BUILD_DIR / XV_SOURCE_DIR not set");
    if (system("command -v pkg-config > /dev/null && command -v cc > /dev/null") != 0)
        return xv_test_skip("pkg-config or cc not found");
    CHECK(xv_test_scratch_dir("xv_install", g_dir, sizeof g_dir), "scratch dir");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "DESTDIR='%s' cmake --install '%s' --prefix /opt/xvlm > '%s' 2>&1", in_dir("stage"),
             build, in_dir("install.log"));
    CHECK(xv_test_run(cmd) == 0, "cmake --install with DESTDIR");
    const char *root = in_dir("stage/opt/xvlm");
    char env[1024];
    /* the .pc file and libxvlm.so live in the libdir GNUInstallDirs chose (lib, or lib/<multiarch>) */
    snprintf(env, sizeof env,
             "export PKG_CONFIG_PATH=$(dirname $(find '%s' -name xvlm.pc)); export LD_LIBRARY_PATH=$(dirname $(find "
             "'%s' -name 'libxvlm.so.0')); ",
             root, root);
    snprintf(cmd, sizeof cmd, "test -f '%s/include/xvlm.h' && test -x '%s/bin/xvlm' && %s test -n \"$PKG_CONFIG_PATH\"",
             root, root, env);
    CHECK(xv_test_run(cmd) == 0, "header, program, xvlm.pc and libxvlm.so.0 are installed");

    /* Only the public API is exported, and the soname carries the ABI version. */
    snprintf(cmd, sizeof cmd,
             "%s so=$LD_LIBRARY_PATH/libxvlm.so.0; n=$(nm -D --defined-only $so | awk '{print $3}' | grep -c '^xvlm_'); "
             "other=$(nm -D --defined-only $so | awk '{print $3}' | grep -v '^xvlm_' | grep -v '^$' | head -3); "
             "echo \"$n xvlm_* symbols; others: $other\"; test \"$n\" -ge 20 && test -z \"$other\" && "
             "objdump -p $so | grep -q 'SONAME *libxvlm.so.0'",
             env);
    CHECK(xv_test_run(cmd) == 0, "libxvlm.so exports only xvlm_* symbols and has the soname libxvlm.so.0");

    mkdir(in_dir("model"), 0755);
    if (!xv_test_tiny_model_dir(in_dir("model"), 7, true)) return xv_test_finish("test_install");
    CHECK(xv_test_tiny_image(in_dir("a.jpg"), 40, 30, 2) && xv_test_tiny_image(in_dir("b.jpg"), 50, 37, 3), "images");
    CHECK(readme_snippet(src, in_dir("snippet.c")), "the README has a ```c snippet");

    /* Outside the source tree: only the installed header and library are seen. */
    snprintf(cmd, sizeof cmd,
             "%s cc -std=c11 -Wall -Wextra -Werror '%s' $(pkg-config --cflags --libs xvlm) -o '%s' && '%s' '%s' '%s' "
             "'the red square' > '%s' && grep -q 'ITC similarity' '%s'",
             env, in_dir("snippet.c"), in_dir("snippet"), in_dir("snippet"), in_dir("model"), in_dir("a.jpg"),
             in_dir("snippet.out"), in_dir("snippet.out"));
    CHECK(xv_test_run(cmd) == 0, "the README snippet builds against the installed tree and runs");
    snprintf(cmd, sizeof cmd,
             "%s cc -std=c11 -Wall -Wextra -Werror '%s/examples/retrieve_and_ground.c' $(pkg-config --cflags --libs "
             "xvlm) -o '%s' && '%s' '%s' 'the yellow square' '%s' '%s' > '%s'",
             env, src, in_dir("example"), in_dir("example"), in_dir("model"), in_dir("a.jpg"), in_dir("b.jpg"),
             in_dir("example.out"));
    CHECK(xv_test_run(cmd) == 0, "examples/retrieve_and_ground.c builds against the installed tree and runs");
    char *out = xv_test_read_file(in_dir("example.out"), NULL);
    CHECK(out && strstr(out, "b.jpg") && strstr(out, "a.jpg"), "the example ranks both images: %s", out ? out : "");
    free(out);
    xv_test_remove_dir(g_dir);
    return xv_test_finish("test_install");
}
