/* The web page in a real browser: `xvlm serve` on a tiny model and a small
 * index, Debian's headless chromium driven over the DevTools protocol by
 * tests/browser/drive_page.py (search -> results grid, click + phrase ->
 * grounding box, upload -> ranked texts). Skipped (77) without chromium or
 * /usr/bin/python3 with python3-websocket. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "serve_client.h"
#include "testutil.h"

int main(void) {
    const char *src = getenv("XV_SOURCE_DIR");
    if (!getenv("XV_BIN") || !src) return xv_test_skip("$XV_BIN / $XV_SOURCE_DIR not set");
    if (access("/usr/bin/chromium", X_OK) != 0) return xv_test_skip("chromium is not installed (apt-get install chromium)");
    if (xv_test_run("/usr/bin/python3 -c 'import websocket' 2>/dev/null") != 0)
        return xv_test_skip("/usr/bin/python3 has no websocket module (apt-get install python3-websocket)");
    xv_test_serve_world w;
    if (!xv_test_serve_world_make(&w, "serve_web", 6)) return xv_test_finish("test_serve_web");
    char args[1200];
    xv_test_serve_world_args(&w, args, sizeof args);
    xv_test_server s;
    if (xv_test_server_start(&s, args)) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/browser/drive_page.py' http://127.0.0.1:%d/ '%s/img2.jpg' '%s/page.png'",
                 src, s.port, w.images, w.dir);
        int rc = xv_test_run(cmd);
        if (rc == 77) {
            xv_test_server_stop(&s);
            xv_test_remove_dir(w.dir);
            return xv_test_skip("the browser could not be driven here");
        }
        CHECK(rc == 0, "drive_page.py exit %d: the page did not show what it should", rc);
        CHECK(xv_test_server_stop(&s) == 0, "the server exits 0 on SIGTERM");
    } else {
        CHECK(0, "the server did not start");
    }
    xv_test_remove_dir(w.dir);
    return xv_test_finish("test_serve_web");
}
