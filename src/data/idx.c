/* IDX reader (the MNIST / Fashion-MNIST container).
 *
 * Layout, all integers big-endian:
 *   bytes 0-1  zero
 *   byte  2    data type (only 0x08 = unsigned byte is accepted)
 *   byte  3    number of dimensions (3 for images: n, rows, cols; 1 for labels: n)
 *   then one uint32 per dimension, then the data, row-major, nothing after it.
 *
 * Files may be gzip-compressed; zlib's gz* functions read raw files
 * transparently, but the first two bytes are checked anyway so that errors can
 * say which kind of file was being read.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Refuse datasets above 2 GiB: far beyond anything a CPU trainer uses, and a
 * declared size this large in a small file is a corrupt header. */
#define IDX_MAX_BYTES ((size_t)1 << 31)
/* gzread takes an unsigned length; read in slices well below that. */
#define IDX_READ_CHUNK ((size_t)1 << 24)

typedef struct idx_stream {
    gzFile gz;
    const char *path;
    bool gzip; /* content started with the gzip magic 1f 8b */
} idx_stream;

static loom_status idx_open(idx_stream *s, const char *path, loom_error *err) {
    s->gz = NULL;
    s->path = path;
    s->gzip = false;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return loom_fail(err, loom_open_status(errno), "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return loom_fail(err, LOOM_EINVAL, "%s: is a directory, expected an IDX file", path);
    }
    unsigned char magic[2];
    ssize_t got = pread(fd, magic, 2, 0);
    if (got < 0) {
        int e = errno;
        close(fd);
        return loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(e));
    }
    s->gzip = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    s->gz = gzdopen(fd, "rb");
    if (!s->gz) {
        close(fd);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory opening the file", path);
    }
    gzbuffer(s->gz, 1u << 17);
    return LOOM_OK;
}

static void idx_close(idx_stream *s) {
    if (s->gz) gzclose(s->gz);
    s->gz = NULL;
}

/* Reads up to len bytes; *got < len only at the end of the data. A gzip
 * stream that stops before its end marker is reported here as an error
 * (zlib signals it with Z_BUF_ERROR rather than a failed read). */
static loom_status idx_read(idx_stream *s, void *buf, size_t len, size_t *got, loom_error *err) {
    unsigned char *p = buf;
    *got = 0;
    while (*got < len) {
        size_t want = LOOM_MIN(len - *got, IDX_READ_CHUNK);
        int n = gzread(s->gz, p + *got, (unsigned)want);
        if (n < 0) break;
        *got += (size_t)n;
        if (n == 0) break;
    }
    int errnum = Z_OK;
    const char *zmsg = gzerror(s->gz, &errnum);
    switch (errnum) {
    case Z_OK: return LOOM_OK;
    case Z_ERRNO: return loom_fail(err, LOOM_EIO, "%s: %s", s->path, strerror(errno));
    case Z_MEM_ERROR: return loom_fail(err, LOOM_ENOMEM, "%s: out of memory in zlib", s->path);
    case Z_BUF_ERROR:
        return loom_fail(err, LOOM_EFORMAT, "%s: gzip data is truncated (the stream ends early)",
                         s->path);
    default:
        /* gzerror prefixes its own name for the stream ("<fd:3>: "). */
        if (zmsg && zmsg[0] == '<' && strstr(zmsg, ">: ")) zmsg = strstr(zmsg, ">: ") + 3;
        return loom_fail(err, LOOM_EFORMAT, "%s: corrupt gzip data (%s)", s->path,
                         zmsg ? zmsg : "zlib error");
    }
}

static const char *idx_type_name(unsigned t) {
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return "unknown type";
}

/* Reads a whole ubyte IDX file with `ndim` dimensions into dims (ndim) and
 * *data (product of dims bytes, malloc'ed). `item` names one record of the
 * data in messages ("pixels" / "labels"), `last` the last record ("image"). */
static loom_status idx_read_file(const char *path, int ndim, const char *item, const char *last,
                                 size_t *dims, uint8_t **data, loom_error *err) {
    *data = NULL;
    idx_stream s;
    loom_status st = idx_open(&s, path, err);
    if (st != LOOM_OK) return st;
    const char *kind = s.gzip ? " (gzip-compressed)" : "";

    unsigned char hdr[4 + 4 * 3];
    size_t hlen = 4 + 4 * (size_t)ndim, got = 0;
    st = idx_read(&s, hdr, 4, &got, err);
    if (st != LOOM_OK) goto fail;
    if (got == 4 && (hdr[0] != 0 || hdr[1] != 0)) {
        st = loom_fail(err, LOOM_EFORMAT,
                       "%s: not an IDX file%s: starts with bytes %02x %02x %02x %02x, expected "
                       "00 00 08 %02x",
                       path, kind, hdr[0], hdr[1], hdr[2], hdr[3], (unsigned)ndim);
        goto fail;
    }
    if (got == 4 && hdr[2] != 0x08) {
        st = loom_fail(err, LOOM_EFORMAT,
                       "%s: IDX data type 0x%02x (%s) is not supported, only 0x08 (unsigned byte)",
                       path, hdr[2], idx_type_name(hdr[2]));
        goto fail;
    }
    if (got == 4 && hdr[3] != ndim) {
        st = loom_fail(err, LOOM_EFORMAT,
                       "%s: IDX magic 0x000008%02x (%u dimension%s), expected 0x000008%02x for "
                       "an IDX %s file",
                       path, hdr[3], hdr[3], hdr[3] == 1 ? "" : "s", (unsigned)ndim,
                       ndim == 3 ? "image" : "label");
        goto fail;
    }
    if (got == 4) {
        size_t more = 0;
        st = idx_read(&s, hdr + 4, hlen - 4, &more, err);
        if (st != LOOM_OK) goto fail;
        got += more;
    }
    if (got < hlen) {
        st = loom_fail(err, LOOM_EFORMAT, "%s: truncated header%s: expected %zu bytes, got %zu",
                       path, kind, hlen, got);
        goto fail;
    }

    size_t need = 1;
    bool fits = true;
    for (int i = 0; i < ndim; i++) {
        const unsigned char *b = hdr + 4 + 4 * i;
        dims[i] = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | (size_t)b[3];
        if (dims[i] == 0) {
            static const char *const names[3] = {"items", "rows", "columns"};
            st = loom_fail(err, LOOM_EFORMAT, "%s: the IDX header gives 0 %s", path,
                           ndim == 1 ? "labels" : i == 0 ? "images" : names[i]);
            goto fail;
        }
        if (fits && !loom_mul_ok(need, dims[i], &need)) fits = false;
    }
    if (!fits || need > IDX_MAX_BYTES) {
        char shape[64];
        if (ndim == 3)
            snprintf(shape, sizeof shape, "%zu x %zu x %zu", dims[0], dims[1], dims[2]);
        else
            snprintf(shape, sizeof shape, "%zu", dims[0]);
        st = loom_fail(err, LOOM_EFORMAT, "%s: IDX shape %s is larger than the 2 GiB limit", path,
                       shape);
        goto fail;
    }

    /* Grow the buffer as data arrives so that a header claiming 2 GiB in a
     * tiny file fails on "truncated" without first allocating 2 GiB. */
    size_t cap = LOOM_MIN(need, (size_t)1 << 24), have = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory for %zu bytes", path, cap);
        goto fail;
    }
    for (;;) {
        size_t n = 0;
        st = idx_read(&s, buf + have, cap - have, &n, err);
        if (st != LOOM_OK) {
            free(buf);
            goto fail;
        }
        have += n;
        if (have < cap || cap == need) break;
        size_t ncap = cap > need / 2 ? need : cap * 2;
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) {
            free(buf);
            st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory for %zu bytes", path, ncap);
            goto fail;
        }
        buf = nb;
        cap = ncap;
    }
    if (have < need) {
        free(buf);
        st = loom_fail(err, LOOM_EFORMAT, "%s: truncated%s: expected %zu bytes of %s, got %zu", path,
                       kind, need, item, have);
        goto fail;
    }

    size_t extra = 0;
    for (;;) {
        unsigned char tail[4096];
        size_t n = 0;
        st = idx_read(&s, tail, sizeof tail, &n, err);
        if (st != LOOM_OK) {
            free(buf);
            goto fail;
        }
        extra += n;
        if (n < sizeof tail) break;
    }
    if (extra) {
        free(buf);
        st = loom_fail(err, LOOM_EFORMAT, "%s: %zu byte%s after the last %s%s", path, extra,
                       extra == 1 ? "" : "s", last, kind);
        goto fail;
    }
    idx_close(&s);
    *data = buf;
    return LOOM_OK;

fail:
    idx_close(&s);
    return st;
}

loom_status loom_idx_load(loom_images *out, const char *images_path, const char *labels_path,
                          loom_error *err) {
    if (!out) return loom_fail(err, LOOM_EINVAL, "loom_idx_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!images_path) return loom_fail(err, LOOM_EINVAL, "loom_idx_load: images_path is NULL");

    size_t dims[3];
    uint8_t *pixels = NULL;
    loom_status st = idx_read_file(images_path, 3, "pixels", "image", dims, &pixels, err);
    if (st != LOOM_OK) return st;

    int32_t *labels = NULL;
    int nclasses = 0;
    if (labels_path) {
        size_t nl;
        uint8_t *raw = NULL;
        st = idx_read_file(labels_path, 1, "labels", "label", &nl, &raw, err);
        if (st != LOOM_OK) {
            free(pixels);
            return st;
        }
        if (nl != dims[0]) {
            free(raw);
            free(pixels);
            return loom_fail(err, LOOM_EFORMAT, "%s: %zu labels but %s has %zu images", labels_path,
                             nl, images_path, dims[0]);
        }
        labels = malloc(nl * sizeof *labels);
        if (!labels) {
            free(raw);
            free(pixels);
            return loom_fail(err, LOOM_ENOMEM, "%s: out of memory for %zu labels", labels_path, nl);
        }
        /* Labels are ubyte, so every value is < 256 by construction. */
        for (size_t i = 0; i < nl; i++) {
            labels[i] = raw[i];
            if (raw[i] + 1 > nclasses) nclasses = raw[i] + 1;
        }
        free(raw);
    }

    out->n = dims[0];
    out->h = dims[1];
    out->w = dims[2];
    out->t = out->c = 1;
    out->pixels = pixels;
    out->labels = labels;
    out->nclasses = nclasses;
    return LOOM_OK;
}
