/* libFuzzer target: arbitrary bytes decoded as JPEG/PNG, then resized both
 * ways (down to a small square, up along one axis) and normalised.
 * Properties: no crash, no sanitizer report, no leak; a failure always leaves
 * a message naming the input.
 * Built by fuzz/CMakeLists.txt (smoke runs and `make fuzz`); by hand, from the repository root:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc fuzz/fuzz_image.c \
 *     src/data/image*.c src/data/resize.c src/data/transforms.c src/core/error.c src/core/rng.c \
 *     -ljpeg -lpng -lm -o fuzz_image && ./fuzz_image -max_total_time=60 CORPUS_DIR */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "data/resize.h"
#include "data/transforms.h"

/* Keeps each run fast (4 Mpx); the library's own 128 Mpx cap is exercised by
 * the unit tests. */
#define FUZZ_MAX_PIXELS (1 << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xv_image im;
    if (xv_image_decode_capped(data, size, "fuzz-input", FUZZ_MAX_PIXELS, &im) != XV_OK) {
        if (!strstr(xv_error_message(), "fuzz-input")) abort(); /* errors must name the input */
        return 0;
    }
    xv_image small, tall;
    if (xv_resize_bicubic(xv_image_view_of(&im), 13, 13, &small) == XV_OK) {
        float t[3 * 13 * 13];
        xv_image_normalize(&small, t);
        xv_image_free(&small);
    }
    if (im.width * (int64_t)im.height <= 4096 &&
        xv_resize_bicubic(xv_image_view_of(&im), im.width, im.height * 3 + 1, &tall) == XV_OK)
        xv_image_free(&tall);
    xv_image_free(&im);
    return 0;
}
