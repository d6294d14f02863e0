/* The web page (web/), embedded into the program at build time by
 * cmake/embed_web.cmake, so `xvlm serve` needs no files beside it. */
#ifndef XV_SERVE_WEB_ASSETS_H
#define XV_SERVE_WEB_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;         /* "/index.html" */
    const char *content_type;
    const unsigned char *data;
    size_t size;
} xv_web_asset;

/* Ends with an entry whose path is NULL. */
extern const xv_web_asset xv_web_assets[];

#endif
