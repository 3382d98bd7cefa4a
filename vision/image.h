// image.h — decoded images: load (PNG, JPEG, BMP, GIF first frame, TGA via stb_image; JPEG / PNG EXIF
// orientation applied), always 8-bit RGB; and PNG writing through libpng. Not here: resizing and
// normalisation for a model (preprocess.h).
#ifndef T2_IMAGE_H
#define T2_IMAGE_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int w, h;
    uint8_t *rgb;   // (h, w, 3) row-major, interleaved RGB, malloc'd
} t2_image;

// Default cap on width × height for loading (a decoded 64 Mpx image is 192 MB).
#define T2_IMAGE_MAX_PIXELS ((size_t)64 << 20)

// Contract: decode the image file PATH into IM (grey, grey+alpha, RGBA, 16-bit → RGB8; alpha dropped,
// not composited, as PIL's convert("RGB") does); images over MAX_PIXELS (0 = T2_IMAGE_MAX_PIXELS) are
// refused before decoding. -1 + error naming the file on missing, corrupt, truncated, empty files
// (IM is then left empty).
int t2_image_load(const char *path, t2_image *im, size_t max_pixels);
// Contract: the same from memory; NAME is used in error messages (e.g. "request image 2").
int t2_image_load_mem(const void *data, size_t n, const char *name, t2_image *im, size_t max_pixels);
void t2_image_free(t2_image *im);
// Contract: write IM as an 8-bit RGB PNG to PATH atomically (temp + rename); -1 + error naming PATH.
int t2_image_write_png(const char *path, const t2_image *im);

#endif
