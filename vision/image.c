// image.c — decoded images: load PNG / JPEG (baseline and progressive) / BMP / GIF (first frame) /
// TGA into 8-bit RGB through stb_image, apply the EXIF orientation of JPEG (APP1) and PNG (eXIf)
// files, and write 8-bit RGB PNGs through libpng. Not here: resizing, cropping, normalisation for a
// model (preprocess.c), or any other pixel format.
//
// What "the same image as the reference" means here: HF processors call PIL's Image.convert("RGB"),
// so we match PIL's decoding:
//   - alpha is dropped, not composited (RGBA → its RGB; grey+alpha → grey; a palette's tRNS is
//     ignored), exactly as convert("RGB") does;
//   - 16-bit samples keep their high byte (v >> 8), as PIL does for 16-bit RGB(A) PNGs. For 16-bit
//     greyscale PIL opens mode "I" and convert("RGB") clamps at 255 (nearly every pixel white);
//     we deliberately do not copy that quirk;
//   - EXIF orientation (tag 0x0112 of IFD0) is applied as ImageOps.exif_transpose does. HF image
//     processors do NOT apply it themselves, but transformers' load_image() does, and a photo
//     taken on a phone is meant to be seen upright; so we always honour it;
//   - truncated files are errors, as in PIL without LOAD_TRUNCATED_IMAGES: stb would pad a JPEG
//     cut mid-scan (or a short BMP / GIF / TGA) with zeros, so files are checked before decoding;
//   - JPEG pixels differ from libjpeg's by a few levels (stb's IDCT and upsampling are not libjpeg's
//     ISLOW ones); lossless formats match PIL exactly. tests/test_image.c prints the JPEG gap.
// Not read: WebP, TIFF, HEIC, APNG/animated frames past the first, EXIF orientation carried in XMP
// or in PNG text chunks (PIL reads those two; cameras write Exif).
//
// stb_image is not hardened against hostile input, so before stb sees the bytes we: compile only
// the five decoders we need; read the size from the header and refuse images over the pixel cap;
// walk the file's structure for truncation, and for JPEGs the two defects Debian's stb 2.27 has and
// 2.28 fixed (see jpeg_check); and give stb's allocator a budget of 16 bytes a pixel, so that a
// deflate bomb in a PNG cannot grow its buffer to gigabytes. tests/test_image.c mutates fixtures at
// random under ASan + UBSan. Left as it is: signed-overflow UB in stb's JPEG DC prediction on
// crafted input (wraps harmlessly on our targets; 2.28 checks it).
//
// stb: the implementation is compiled here (Debian libstb-dev's header, v2.27), not linked from
// libstb0, so that STBI_ONLY_* / STBI_NO_STDIO trim it to what we use. Its failure reason is
// thread-local (STBI_THREAD_LOCAL), so concurrent loads report their own errors; the one shared
// write left is stb's static "XXXX PNG chunk not known" buffer, which STBI_FAILURE_USERMSG never
// reads (a benign race on a PNG with an unknown critical chunk). Other files must not define
// STB_IMAGE_IMPLEMENTATION again; they can include <stb_image.h> for the memory API only.
#include "vision/image.h"
#include "core/error.h"
#include "core/util.h"
#include <errno.h>
#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Every allocation stb makes goes through these, under a per-load budget set from the header's
// size: stb's PNG inflater grows its buffer without bound (a few MB of deflate can expand to GBs).
static _Thread_local size_t stb_budget;    // largest single allocation allowed now
static _Thread_local int stb_refused;      // set when the budget said no
static void *stb_malloc(size_t n) {
    if (n > stb_budget) { stb_refused = 1; return NULL; }
    return malloc(n);
}
static void *stb_realloc(void *p, size_t n) {
    if (n > stb_budget) { stb_refused = 1; return NULL; }
    return realloc(p, n);
}

#define STB_IMAGE_IMPLEMENTATION
#define STBI_MALLOC(n) stb_malloc(n)
#define STBI_REALLOC(p, n) stb_realloc(p, n)
#define STBI_FREE(p) free(p)
#define STBI_NO_STDIO          // files are read by t2_read_file
#define STBI_NO_LINEAR         // no float / HDR paths
#define STBI_FAILURE_USERMSG   // "Corrupt PNG" rather than "outofdata"
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"   // that buffer, under USERMSG
#include <stb_image.h>
#pragma GCC diagnostic pop

// ---- little readers over untrusted bytes (every caller checks the bounds first) ------------------

static uint32_t rd16(const uint8_t *p, int le) { return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[0] << 8 | p[1]; }
static uint32_t rd32(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// The format by its magic bytes (TGA has none: it is whatever stb's TGA test accepts).
typedef enum { FMT_OTHER, FMT_PNG, FMT_JPEG, FMT_GIF, FMT_BMP } img_format;

// P[I], or 0 past the end (what stb's readers return there).
static int byte_at(const uint8_t *p, size_t n, size_t i) { return i < n ? p[i] : 0; }

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

// Offset just past a JPEG's SOI marker as stb reads it (FF, any more FF, D8); 0 if not a JPEG.
static size_t jpeg_start(const uint8_t *p, size_t n) {
    if (n < 2 || p[0] != 0xFF) return 0;
    size_t i = 1;
    while (i < n && p[i] == 0xFF) i++;
    return i < n && p[i] == 0xD8 ? i + 1 : 0;
}

static img_format sniff(const uint8_t *p, size_t n) {
    if (n >= 8 && memcmp(p, png_sig, 8) == 0) return FMT_PNG;
    if (jpeg_start(p, n)) return FMT_JPEG;
    if (n >= 6 && memcmp(p, "GIF8", 4) == 0) return FMT_GIF;
    if (n >= 2 && p[0] == 'B' && p[1] == 'M') return FMT_BMP;
    return FMT_OTHER;
}

// BMP header fields (BITMAPCOREHEADER or BITMAPINFOHEADER and later); 0 if too short or unknown.
typedef struct { int64_t w, h; uint32_t bpp, comp, off; } bmp_header;
static int bmp_parse(const uint8_t *p, size_t n, bmp_header *b) {
    if (n < 18) return 0;
    uint32_t hsz = rd32(p + 14, 1);
    b->off = rd32(p + 10, 1);
    b->comp = 0;
    if (hsz == 12 && n >= 26) {
        b->w = (int16_t)rd16(p + 18, 1); b->h = (int16_t)rd16(p + 20, 1); b->bpp = rd16(p + 24, 1);
    } else if (hsz >= 40 && n >= 34) {
        b->w = (int32_t)rd32(p + 18, 1); b->h = (int32_t)rd32(p + 22, 1);
        b->bpp = rd16(p + 28, 1); b->comp = rd32(p + 30, 1);
    } else {
        return 0;
    }
    if (b->h < 0) b->h = -b->h;   // top-down rows
    return 1;
}

// Width and height as the header states them, before any decoder's own limits (stb refuses a PNG
// over 1 GB with a vague "unknown image type"), so that the pixel cap names them; 0 if not found.
static int header_dims(const uint8_t *p, size_t n, img_format fmt, uint64_t *w, uint64_t *h) {
    switch (fmt) {
    case FMT_PNG:
        if (n < 24 || memcmp(p + 12, "IHDR", 4) != 0) return 0;
        *w = rd32(p + 16, 0); *h = rd32(p + 20, 0);
        return 1;
    case FMT_GIF:
        if (n < 10) return 0;
        *w = rd16(p + 6, 1); *h = rd16(p + 8, 1);
        return 1;
    case FMT_BMP: {
        bmp_header b;
        if (!bmp_parse(p, n, &b) || b.w < 0) return 0;
        *w = (uint64_t)b.w; *h = (uint64_t)b.h;
        return 1;
    }
    case FMT_JPEG:   // segments up to the first SOFn (any C0..CF but DHT C4, JPG C8, DAC CC)
        for (size_t i = jpeg_start(p, n); i + 4 <= n;) {
            if (p[i] != 0xFF) return 0;
            uint8_t m = p[i + 1];
            if (m == 0xFF) { i++; continue; }
            if (m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) { i += 2; continue; }
            if (m == 0xD9 || m == 0xDA) return 0;
            size_t len = rd16(p + i + 2, 0);
            if (len < 2 || len > n - i - 2) return 0;
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                if (len < 7) return 0;
                *h = rd16(p + i + 5, 0); *w = rd16(p + i + 7, 0);
                return 1;
            }
            i += 2 + len;
        }
        return 0;
    default:
        return 0;
    }
}

// ---- EXIF orientation ----------------------------------------------------------------------------

// Orientation (1..8) from a TIFF block as Exif carries it (TIFF 6.0 §2: "II"/"MM", 42, offset of
// IFD0; 12-byte entries tag/type/count/value); 1 when absent, malformed or out of range — which is
// what PIL's exif_transpose does with such files (nothing).
static int tiff_orientation(const uint8_t *p, size_t n) {
    if (n < 8) return 1;
    int le;
    if (p[0] == 'I' && p[1] == 'I') le = 1;
    else if (p[0] == 'M' && p[1] == 'M') le = 0;
    else return 1;
    if (rd16(p + 2, le) != 42) return 1;
    size_t ifd = rd32(p + 4, le);
    if (ifd > n || n - ifd < 2) return 1;
    size_t count = rd16(p + ifd, le);
    for (size_t i = 0; i < count; i++) {
        size_t e = ifd + 2 + 12 * i;
        if (e > n || n - e < 12) return 1;
        if (rd16(p + e, le) != 0x0112) continue;
        uint32_t type = rd16(p + e + 2, le), v;
        if (type == 3) v = rd16(p + e + 8, le);        // SHORT, the type the standard prescribes
        else if (type == 4) v = rd32(p + e + 8, le);   // LONG, seen in the wild; PIL reads it too
        else return 1;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

// JPEG: the first APP1 segment that starts "Exif\0\0" before the first scan (PIL keeps the first).
static int jpeg_orientation(const uint8_t *p, size_t n) {
    size_t i = jpeg_start(p, n);
    while (i + 4 <= n) {
        if (p[i] != 0xFF) return 1;
        uint8_t m = p[i + 1];
        if (m == 0xFF) { i++; continue; }                                              // fill byte
        if (m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) { i += 2; continue; }  // no length
        if (m == 0xD9 || m == 0xDA) return 1;                                          // EOI, SOS
        size_t len = rd16(p + i + 2, 0);
        if (len < 2 || len > n - i - 2) return 1;
        const uint8_t *seg = p + i + 4;
        size_t sn = len - 2;
        if (m == 0xE1 && sn >= 6 && memcmp(seg, "Exif\0\0", 6) == 0) return tiff_orientation(seg + 6, sn - 6);
        i += 2 + len;
    }
    return 1;
}

// PNG: the eXIf chunk (PNG 1.5 extensions §3.7), a bare TIFF block, wherever it sits (PIL reads it
// before or after IDAT).
static int png_orientation(const uint8_t *p, size_t n) {
    size_t i = 8;
    while (i + 8 <= n) {
        size_t len = rd32(p + i, 0);
        if (len > n - i - 8) return 1;
        if (memcmp(p + i + 4, "eXIf", 4) == 0) return tiff_orientation(p + i + 8, len);
        if (memcmp(p + i + 4, "IEND", 4) == 0) return 1;
        if (n - i - 8 - len < 4) return 1;
        i += 12 + len;
    }
    return 1;
}

// A new (h', w', 3) buffer holding SRC (h, w, 3) transformed as EXIF orientation O says (PIL's
// transpose methods: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270,
// 7 TRANSVERSE, 8 ROTATE_90). Output pixel (x, y) reads source pixel BASE + x·DX + y·DY.
static uint8_t *orient(const uint8_t *src, int w, int h, int o, int *ow, int *oh) {
    ptrdiff_t W = w, H = h, base, dx, dy;
    switch (o) {
    case 2: base = W - 1;               dx = -1; dy = W;  break;
    case 3: base = (H - 1) * W + W - 1; dx = -1; dy = -W; break;
    case 4: base = (H - 1) * W;         dx = 1;  dy = -W; break;
    case 5: base = 0;                   dx = W;  dy = 1;  break;
    case 6: base = (H - 1) * W;         dx = -W; dy = 1;  break;
    case 7: base = (H - 1) * W + W - 1; dx = -W; dy = -1; break;
    case 8: base = W - 1;               dx = W;  dy = -1; break;
    default: T2_ASSERT(0); return NULL;
    }
    int swap = o >= 5;
    *ow = swap ? h : w;
    *oh = swap ? w : h;
    uint8_t *dst = t2_malloc((size_t)w * (size_t)h * 3);
    uint8_t *d = dst;
    for (ptrdiff_t y = 0; y < *oh; y++) {
        for (ptrdiff_t x = 0, k = base + y * dy; x < *ow; x++, k += dx, d += 3) {
            const uint8_t *s = src + 3 * k;
            d[0] = s[0]; d[1] = s[1]; d[2] = s[2];
        }
    }
    return dst;
}

// ---- truncation checks (stb reads zeros past the end of the data instead of failing) -------------

// PNG: chunk framing (length, type, data, CRC) up to IEND. stb would fail too, but with a vague
// message (or an empty one: it names the "unknown chunk" of type 0 it read past the end).
static int png_check_complete(const uint8_t *p, size_t n, const char *name) {
    size_t i = 8;
    while (i + 8 <= n) {
        size_t len = rd32(p + i, 0);
        if (len > 0x7fffffff) return 0;   // corrupt, not short: stb's error
        if (len > n - i - 8 || n - i - 8 - len < 4) break;
        if (memcmp(p + i + 4, "IEND", 4) == 0) return 0;
        i += 12 + len;
    }
    return t2_fail("%s: truncated PNG (the data ends after %zu bytes, before the IEND chunk)", name, n);
}

// JPEG, walked the way stb walks it (stbi__decode_jpeg_header, stbi__decode_jpeg_image: markers
// FF [FF...] X; before the frame header it skips stray bytes to resync; each scan's entropy-coded
// data runs to the next marker). Refused here, as stb 2.28 refuses them but Debian's 2.27 does not:
// a Huffman table of more than 256 codes (it overruns its tables; stb issue #1289), and a scan that
// uses a table never defined (stb would read uninitialised tables). Refused as PIL refuses them:
// data that ends before EOI. Anything else stb refuses itself (this snapshot already checks
// sampling-factor ratios, #1178), so we return 0 and let it say why.
static int jpeg_check(const uint8_t *p, size_t n, size_t i, const char *name) {
    int sof = 0, progressive = 0, have[2][4] = {{0}};
    for (;;) {
        if (i >= n) goto truncated;
        if (p[i] != 0xFF) {
            if (sof) return 0;   // stb: "expected marker"
            i++;
            continue;
        }
        while (i < n && p[i] == 0xFF) i++;
        if (i >= n) goto truncated;
        uint8_t m = p[i++];
        if (m == 0xD9) return 0;                                               // EOI: complete
        int known = m == 0xC0 || m == 0xC1 || m == 0xC2 || m == 0xC4 || m == 0xDA || m == 0xDB ||
                    m == 0xDC || m == 0xDD || m == 0xFE || (m >= 0xE0 && m <= 0xEF);
        if (!known) return 0;                                                  // stb: "unknown marker"
        if (i + 2 > n) goto truncated;
        size_t len = rd16(p + i, 0);
        if (len < 2) return 0;
        if (len > n - i) goto truncated;
        const uint8_t *seg = p + i + 2;
        size_t sl = len - 2;
        i += len;
        if (m == 0xC4) {
            // DHT: stb reads a table's 17-byte head and builds the table before it checks the
            // segment's length, reading on past the segment (and zeros past the end) if told to
            size_t k = 0;
            while (k < sl) {
                size_t at = (size_t)(seg - p) + k;
                int q = byte_at(p, n, at), tc = q >> 4, th = q & 15, codes = 0;
                if (tc > 1 || th > 3) return 0;
                for (size_t b = 1; b <= 16; b++) codes += byte_at(p, n, at + b);
                if (codes > 256)
                    return t2_fail("%s: corrupt JPEG (a Huffman table with %d codes; at most 256)", name, codes);
                if (17 + (size_t)codes > sl - k) return 0;   // stb's count goes negative: its error
                have[tc][th] = 1;
                k += 17 + (size_t)codes;
            }
        } else if (m == 0xC0 || m == 0xC1 || m == 0xC2) {
            if (sof) return 0;                   // a second frame: stb's "unknown marker"
            sof = 1;
            progressive = m == 0xC2;
        } else if (m == 0xDA) {
            if (!sof || sl < 1) return 0;
            size_t ns = seg[0];
            if (ns < 1 || ns > 4 || sl != 4 + 2 * ns) return 0;
            int ss = seg[1 + 2 * ns], ah = seg[3 + 2 * ns] >> 4;
            for (size_t c = 0; c < ns; c++) {
                int td = seg[2 + 2 * c] >> 4, ta = seg[2 + 2 * c] & 15;
                if (td > 3 || ta > 3) return 0;
                int need_dc = !progressive || (ss == 0 && ah == 0), need_ac = !progressive || ss > 0;
                if ((need_dc && !have[0][td]) || (need_ac && !have[1][ta]))
                    return t2_fail("%s: corrupt JPEG (a scan uses a Huffman table that was never defined)", name);
            }
            // entropy-coded data, read as stb's bit reader reads it: FF [FF...] 00 is a stuffed
            // FF, FF [FF...] RSTn a restart, FF [FF...] X any other marker, which ends the scan
            for (;;) {
                const uint8_t *ff = i < n ? memchr(p + i, 0xFF, n - i) : NULL;
                if (!ff) goto truncated;
                i = (size_t)(ff - p);
                size_t j = i + 1;
                while (j < n && p[j] == 0xFF) j++;
                if (j >= n) goto truncated;
                if (p[j] == 0x00 || (p[j] >= 0xD0 && p[j] <= 0xD7)) { i = j + 1; continue; }
                break;                           // the marker's FF run starts at i
            }
        }
    }
truncated:
    return t2_fail("%s: truncated JPEG (the data ends after %zu bytes, before the end-of-image marker)", name, n);
}

// GIF: the blocks up to the end of the first image's data sub-blocks (GIF89a §§17-23).
static int gif_check_complete(const uint8_t *p, size_t n, const char *name) {
    if (n < 13) return 0;   // stb reports a short header itself
    size_t i = 13;
    if (p[10] & 0x80) i += 3 * ((size_t)1 << ((p[10] & 7) + 1));
    for (;;) {
        if (i >= n) break;
        uint8_t b = p[i++];
        if (b == 0x2C) {                                   // image descriptor
            if (i + 9 > n) break;
            uint8_t flags = p[i + 8];
            i += 9;
            if (flags & 0x80) i += 3 * ((size_t)1 << ((flags & 7) + 1));
            i++;                                           // LZW minimum code size
        } else if (b == 0x21) {                            // extension: label, then sub-blocks
            i++;
        } else {
            return 0;                                      // trailer or junk: stb decides
        }
        for (;;) {                                         // data sub-blocks up to a zero length
            if (i >= n) goto truncated;
            uint8_t sz = p[i++];
            if (sz == 0) break;
            i += sz;
        }
        if (b == 0x2C) return 0;
    }
truncated:
    return t2_fail("%s: truncated GIF (the data ends after %zu bytes, inside the first frame)", name, n);
}

// BMP: uncompressed / bitfield pixel arrays must fit in the file (stb supports no BMP RLE anyway).
static int bmp_check_complete(const uint8_t *p, size_t n, const char *name) {
    bmp_header b;
    if (!bmp_parse(p, n, &b)) return 0;
    if (b.comp != 0 && b.comp != 3 && b.comp != 6) return 0;
    if (b.bpp != 1 && b.bpp != 4 && b.bpp != 8 && b.bpp != 16 && b.bpp != 24 && b.bpp != 32) return 0;
    if (b.w <= 0 || b.h <= 0 || b.w > (1 << 24) || b.h > (1 << 24)) return 0;
    uint64_t need = (uint64_t)b.off + (((uint64_t)b.w * b.bpp + 31) / 32) * 4 * (uint64_t)b.h;
    if (n >= need) return 0;
    return t2_fail("%s: truncated BMP (%zu bytes, the pixel data needs %llu)", name, n, (unsigned long long)need);
}

// TGA (no magic: called once stb has taken the file for one): an uncompressed image's pixels must
// all be there — stb copies a short row with an unchecked read, leaving uninitialised bytes in the
// image. RLE data past the end reads as zeros, as in the other formats, and is not checked.
static int tga_check_complete(const uint8_t *p, size_t n, const char *name) {
    if (n < 18) return 0;
    int type = p[2];
    if (type != 1 && type != 2 && type != 3) return 0;
    uint64_t pal = p[1] ? (uint64_t)rd16(p + 5, 1) * ((p[7] + 7u) / 8) : 0;
    uint64_t need = 18 + (uint64_t)p[0] + pal + (uint64_t)rd16(p + 12, 1) * rd16(p + 14, 1) * ((p[16] + 7u) / 8);
    if (n >= need) return 0;
    return t2_fail("%s: truncated TGA (%zu bytes, the pixel data needs %llu)", name, n, (unsigned long long)need);
}

// ---- load ----------------------------------------------------------------------------------------

static const char *stb_reason(void) {
    const char *r = stbi_failure_reason();
    return r && *r ? r : "unknown error";
}

static int over_cap(const char *name, uint64_t w, uint64_t h, size_t max_pixels) {
    if (w == 0 || h == 0) return t2_fail("%s: image has zero size (%llux%llu)", name, (unsigned long long)w, (unsigned long long)h);
    if (w <= max_pixels / h) return 0;
    return t2_fail("%s: image is %llux%llu = %.0f pixels, over the limit of %zu pixels; refused before decoding",
                   name, (unsigned long long)w, (unsigned long long)h, (double)w * (double)h, max_pixels);
}

int t2_image_load_mem(const void *data, size_t n, const char *name, t2_image *im, size_t max_pixels) {
    T2_ASSERT(im != NULL);
    memset(im, 0, sizeof *im);
    if (!name) name = "image";
    if (!data || n == 0) return t2_fail("%s: empty file (0 bytes), not an image", name);
    if (n > INT_MAX) return t2_fail("%s: %zu bytes is too large for the image decoder", name, n);
    if (max_pixels == 0) max_pixels = T2_IMAGE_MAX_PIXELS;
    const uint8_t *p = data;
    img_format fmt = sniff(p, n);

    // 1. the size the header states, against the cap, before anything is allocated
    uint64_t hw, hh;
    if (header_dims(p, n, fmt, &hw, &hh) && over_cap(name, hw, hh, max_pixels) != 0) return -1;
    // 2. all of the data present (stb would decode a short file as if padded with zeros)
    int rc = 0;
    if (fmt == FMT_PNG) rc = png_check_complete(p, n, name);
    if (fmt == FMT_JPEG) rc = jpeg_check(p, n, jpeg_start(p, n), name);
    if (fmt == FMT_GIF) rc = gif_check_complete(p, n, name);
    if (fmt == FMT_BMP) rc = bmp_check_complete(p, n, name);
    if (rc != 0) return -1;
    // 3. stb's own reading of the header (TGA's only check), then the pixels
    int w = 0, h = 0, comp = 0;
    stb_budget = (size_t)1 << 20;             // headers only: stb's JPEG / GIF state is ~40 kB
    stb_refused = 0;
    if (!stbi_info_from_memory(p, (int)n, &w, &h, &comp))
        return t2_fail("%s: not a readable PNG, JPEG, BMP, GIF or TGA image (%s)", name, stb_reason());
    if (over_cap(name, (uint64_t)(w < 0 ? 0 : w), (uint64_t)(h < 0 ? 0 : h), max_pixels) != 0) return -1;
    if (fmt == FMT_OTHER && tga_check_complete(p, n, name) != 0) return -1;

    // 16 bytes a pixel covers the largest honest buffer (16-bit RGBA, progressive JPEG coefficients);
    // 2n the PNG reader's buffer of all IDAT data, which grows by doubling
    int dw = 0, dh = 0, dc = 0;
    size_t budget = ((size_t)1 << 20) + 16 * (size_t)w * (size_t)h + 2 * n;
    stb_budget = budget;
    stb_refused = 0;
    uint8_t *rgb = stbi_load_from_memory(p, (int)n, &dw, &dh, &dc, 3);
    stb_budget = 0;
    if (!rgb && stb_refused)
        return t2_fail("%s: corrupt image: decoding a %dx%d image asked for more than %zu bytes (a decompression bomb?)",
                       name, w, h, budget);
    if (!rgb) return t2_fail("%s: cannot decode image: %s", name, stb_reason());
    if (dw != w || dh != h) {   // the header said one size and the decoder produced another
        stbi_image_free(rgb);
        return t2_fail("%s: corrupt image (header says %dx%d, decoded %dx%d)", name, w, h, dw, dh);
    }

    int o = fmt == FMT_JPEG ? jpeg_orientation(p, n) : fmt == FMT_PNG ? png_orientation(p, n) : 1;
    if (o != 1) {
        uint8_t *t = orient(rgb, w, h, o, &dw, &dh);
        stbi_image_free(rgb);
        rgb = t;
    }
    im->w = dw;
    im->h = dh;
    im->rgb = rgb;   // stb_malloc is malloc, so t2_image_free's free() releases it
    return 0;
}

int t2_image_load(const char *path, t2_image *im, size_t max_pixels) {
    T2_ASSERT(im != NULL && path != NULL);
    memset(im, 0, sizeof *im);
    size_t n = 0;
    char *data = t2_read_file(path, &n);
    if (!data) return -1;
    int rc = t2_image_load_mem(data, n, path, im, max_pixels);
    free(data);
    return rc;
}

void t2_image_free(t2_image *im) {
    if (!im) return;
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

// ---- PNG writing (libpng) ------------------------------------------------------------------------

// libpng's message for the failing write on this thread (kept outside the setjmp frame).
static _Thread_local char png_msg[256];

static void on_png_error(png_structp png, png_const_charp msg) {
    snprintf(png_msg, sizeof png_msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}
static void on_png_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int t2_image_write_png(const char *path, const t2_image *im) {
    T2_ASSERT(path != NULL && im != NULL);
    if (!im->rgb || im->w <= 0 || im->h <= 0)
        return t2_fail("%s: cannot write an empty image (%dx%d)", path, im->w, im->h);
    if (im->w > 0x7fffffff / 3) return t2_fail("%s: image too wide for PNG (%d)", path, im->w);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return t2_fail("%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return t2_fail("%s: cannot create %s: %s", path, tmp, strerror(errno));

    png_msg[0] = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        fclose(f); unlink(tmp);
        return t2_fail("%s: cannot start libpng (out of memory)", path);
    }
    if (setjmp(png_jmpbuf(png))) {   // png, info and f are not modified after this point
        png_destroy_write_struct(&png, &info);
        fclose(f); unlink(tmp);
        return t2_fail("%s: PNG write failed: %s", path, png_msg);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_text text = {0};
    text.compression = PNG_TEXT_COMPRESSION_NONE;
    text.key = (png_charp) "Software";
    text.text = (png_charp) "t2";
    png_set_text(png, info, &text, 1);
    png_write_info(png, info);
    size_t stride = (size_t)im->w * 3;
    for (int y = 0; y < im->h; y++) png_write_row(png, im->rgb + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);

    int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) { bad = 1; e = errno; }
    if (bad) { unlink(tmp); return t2_fail("%s: write failed: %s", path, strerror(e)); }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return t2_fail("%s: cannot rename %s into place: %s", path, tmp, strerror(e));
    }
    return 0;
}
