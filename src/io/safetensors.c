/* safetensors checkpoints: writer (atomic) and validating reader.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the
 * data buffer. See docs/checkpoint-format.md for what is validated and why. */
#include "common.h"
#include "atomic.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tensor bytes are written and read in host order; safetensors is little-endian. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "loom's safetensors code assumes a little-endian host"
#endif

/* The reference implementation's limit: a larger header is a corrupt length field. */
#define ST_MAX_HEADER ((uint64_t)100000000)
/* JSON numbers are doubles; at and beyond 2^53 a number no longer names one integer. */
#define ST_MAX_INT 9007199254740992.0
#define ST_META "__metadata__"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [LOOM_F32] = {"F32", 4}, [LOOM_U8] = {"U8", 1},   [LOOM_I32] = {"I32", 4},
    [LOOM_I64] = {"I64", 8}, [LOOM_F64] = {"F64", 8},
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

struct loom_st_file {
    char *path;
    uint8_t *bytes;        /* the whole file */
    size_t size;
    cJSON *root;           /* owns tensor names and metadata strings */
    const cJSON *meta;     /* the __metadata__ object, or NULL */
    loom_tensor *tensors;  /* header order; .data points into bytes */
    size_t ntensors;
};

/* ---------------------------------------------------------------- shared helpers */

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF); NUL is
 * rejected too because a C string would silently end there. */
static bool utf8_ok(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0) return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static bool str_ok(const char *s) { return s && utf8_ok((const uint8_t *)s, strlen(s)); }

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts names[0..n) in place; returns a name that occurs twice, or NULL. */
static const char *first_duplicate(const char **names, size_t n) {
    if (n < 2) return NULL;
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

/* "[64, 128]" (sep ", ") or "[64,128]" (sep ",") into buf. */
static const char *shape_str(char *buf, size_t cap, int ndim, const size_t *shape,
                             const char *sep) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%zu", d ? sep : "", shape[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

/* Byte size of a tensor whose shape has already been checked for overflow. */
static size_t tensor_nbytes(const loom_tensor *t) {
    size_t n = dtypes[t->dtype].size;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

/* ---------------------------------------------------------------- atomic write */

/* Flush, fsync and close fp (open on tmp), then rename tmp over path. On failure
 * tmp is removed and path is untouched. Always consumes fp. */
static loom_status commit_tmp(const char *path, const char *tmp, FILE *fp, loom_error *err) {
    int e = 0;
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) e = errno;
    if (fclose(fp) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        remove(tmp);
        return loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(e));
    }
    return loom_fsync_dir(path, err);
}

/* ---------------------------------------------------------------- write */

/* Test hook (docs/robustness.md), only in test builds (-DLOOM_TEST_HOOKS,
 * build/test/loom): with LOOM_FAULT_KILL_WRITE=N in the environment, the
 * process kills itself with SIGKILL once N bytes of the temp file have been
 * handed to the kernel: a deterministic crash in the middle of a checkpoint
 * write (tests/cli/faults.sh). */
static long long fault_kill_after(void) {
#ifdef LOOM_TEST_HOOKS
    const char *v = getenv("LOOM_FAULT_KILL_WRITE");
    return v && *v ? strtoll(v, NULL, 10) : -1;
#else
    return -1;
#endif
}

/* fwrite that honours the hook; *done counts the bytes written so far. */
static size_t put(const void *p, size_t n, FILE *fp, long long kill_after, size_t *done) {
    if (kill_after >= 0 && (unsigned long long)*done + n >= (unsigned long long)kill_after) {
        size_t part = (size_t)((unsigned long long)kill_after - *done);
        if (part) fwrite(p, 1, part, fp);
        fflush(fp);
        raise(SIGKILL);
    }
    *done += n;
    return fwrite(p, 1, n, fp);
}

static loom_status build_header(char **out, const char *path, const loom_tensor *tensors,
                                size_t ntensors, const loom_kv *meta, size_t nmeta,
                                loom_error *err) {
    cJSON *root = cJSON_CreateObject();
    if (!root) goto oom;
    if (nmeta) {
        cJSON *m = cJSON_AddObjectToObject(root, ST_META);
        if (!m) goto oom;
        for (size_t i = 0; i < nmeta; i++)
            if (!cJSON_AddStringToObject(m, meta[i].key, meta[i].value)) goto oom;
    }
    size_t offset = 0;
    for (size_t i = 0; i < ntensors; i++) {
        const loom_tensor *t = &tensors[i];
        size_t nbytes = tensor_nbytes(t);
        /* Integers are printed by hand: cJSON prints doubles with 15 significant
         * digits, which would round offsets beyond 10^15. */
        char buf[LOOM_MAXDIM * 24 + 8];
        cJSON *obj = cJSON_AddObjectToObject(root, t->name);
        if (!obj || !cJSON_AddStringToObject(obj, "dtype", dtypes[t->dtype].name)) goto oom;
        shape_str(buf, sizeof buf, t->ndim, t->shape, ",");
        if (!cJSON_AddRawToObject(obj, "shape", buf)) goto oom;
        snprintf(buf, sizeof buf, "[%zu,%zu]", offset, offset + nbytes);
        if (!cJSON_AddRawToObject(obj, "data_offsets", buf)) goto oom;
        offset += nbytes; /* the caller checked that the total fits */
    }
    *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!*out) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory building the header", path);
    return LOOM_OK;
oom:
    cJSON_Delete(root);
    return loom_fail(err, LOOM_ENOMEM, "%s: out of memory building the header", path);
}

/* Everything the reader would reject is rejected here, before any file is touched. */
static loom_status check_write_args(const char *path, const loom_tensor *tensors,
                                    size_t ntensors, const loom_kv *meta, size_t nmeta,
                                    loom_error *err) {
    if ((ntensors && !tensors) || (nmeta && !meta))
        return loom_fail(err, LOOM_EINVAL, "%s: NULL tensor or metadata array", path);
    size_t sum = 0;
    for (size_t i = 0; i < ntensors; i++) {
        const loom_tensor *t = &tensors[i];
        if (!t->name || !t->name[0])
            return loom_fail(err, LOOM_EINVAL, "%s: tensor %zu has a NULL or empty name", path,
                             i);
        if (!str_ok(t->name))
            return loom_fail(err, LOOM_EINVAL, "%s: tensor %zu's name is not valid UTF-8", path,
                             i);
        if (strcmp(t->name, ST_META) == 0)
            return loom_fail(err, LOOM_EINVAL, "%s: tensor name %s is reserved", path, ST_META);
        if ((unsigned)t->dtype >= NDTYPES)
            return loom_fail(err, LOOM_EINVAL, "%s: tensor %s has unknown dtype %d", path,
                             t->name, (int)t->dtype);
        if (t->ndim < 0 || t->ndim > LOOM_MAXDIM)
            return loom_fail(err, LOOM_EINVAL, "%s: tensor %s has %d dimensions (0..%d allowed)",
                             path, t->name, t->ndim, LOOM_MAXDIM);
        size_t nbytes = dtypes[t->dtype].size;
        for (int d = 0; d < t->ndim; d++) {
            /* The reader rejects such numbers, so never write them. */
            if ((double)t->shape[d] >= ST_MAX_INT)
                return loom_fail(err, LOOM_EINVAL, "%s: tensor %s has dimension %zu >= 2^53",
                                 path, t->name, t->shape[d]);
            if (!loom_mul_ok(nbytes, t->shape[d], &nbytes))
                return loom_fail(err, LOOM_ENOMEM, "%s: tensor %s: size overflows", path,
                                 t->name);
        }
        if (nbytes && !t->data)
            return loom_fail(err, LOOM_EINVAL, "%s: tensor %s has no data", path, t->name);
        if (nbytes > SIZE_MAX - sum || (double)(sum + nbytes) >= ST_MAX_INT)
            return loom_fail(err, LOOM_ENOMEM, "%s: total tensor size overflows", path);
        sum += nbytes;
    }
    for (size_t i = 0; i < nmeta; i++) {
        if (!str_ok(meta[i].key) || !str_ok(meta[i].value))
            return loom_fail(err, LOOM_EINVAL,
                             "%s: metadata entry %zu: key or value is NULL or not UTF-8", path, i);
    }

    size_t n = LOOM_MAX(ntensors, nmeta);
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < ntensors; i++) names[i] = tensors[i].name;
    const char *dup = first_duplicate(names, ntensors);
    loom_status st = LOOM_OK;
    if (dup) {
        st = loom_fail(err, LOOM_EINVAL, "%s: duplicate tensor name %s", path, dup);
    } else {
        for (size_t i = 0; i < nmeta; i++) names[i] = meta[i].key;
        dup = first_duplicate(names, nmeta);
        if (dup) st = loom_fail(err, LOOM_EINVAL, "%s: duplicate metadata key %s", path, dup);
    }
    free(names);
    return st;
}

loom_status loom_safetensors_write(const char *path, const loom_tensor *tensors, size_t ntensors,
                                   const loom_kv *meta, size_t nmeta, loom_error *err) {
    if (!path || !path[0]) return loom_fail(err, LOOM_EINVAL, "safetensors: empty path");
    loom_status st = check_write_args(path, tensors, ntensors, meta, nmeta, err);
    if (st != LOOM_OK) return st;

    char *json = NULL;
    st = build_header(&json, path, tensors, ntensors, meta, nmeta, err);
    if (st != LOOM_OK) return st;
    /* Pad with spaces so the data buffer starts 8-byte aligned in the file. */
    size_t len = strlen(json);
    size_t padded = (len + 7) & ~(size_t)7;
    if (padded > ST_MAX_HEADER) {
        cJSON_free(json);
        return loom_fail(err, LOOM_EINVAL, "%s: header of %zu bytes exceeds the 100 MB limit",
                         path, padded);
    }
    uint8_t *head = malloc(8 + padded);
    if (!head) {
        cJSON_free(json);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(head + 8, json, len);
    memset(head + 8 + len, ' ', padded - len);
    cJSON_free(json);

    char *tmp = loom_tmp_path(path);
    if (!tmp) {
        free(head);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        /* Nothing was created, so there is nothing to remove (tmp may be someone's directory). */
        st = loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(errno));
        free(tmp);
        free(head);
        return st;
    }
    /* fwrite sets errno on failure; EIO covers a libc that does not. */
    int e = 0;
    long long kill_after = fault_kill_after();
    size_t done = 0;
    errno = 0;
    if (put(head, 8 + padded, fp, kill_after, &done) != 8 + padded) e = errno ? errno : EIO;
    free(head);
    for (size_t i = 0; i < ntensors && !e; i++) {
        size_t nbytes = tensor_nbytes(&tensors[i]);
        errno = 0;
        if (nbytes && put(tensors[i].data, nbytes, fp, kill_after, &done) != nbytes)
            e = errno ? errno : EIO;
    }
    if (e) {
        fclose(fp);
        remove(tmp);
        st = loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(e));
    } else {
        st = commit_tmp(path, tmp, fp, err);
    }
    free(tmp);
    return st;
}

/* ---------------------------------------------------------------- read */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static loom_status bad(const loom_st_file *f, loom_error *err, const char *fmt, ...) {
    if (!err) return LOOM_EFORMAT;
    char msg[LOOM_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    loom_fail(err, LOOM_EFORMAT, "%s: %s", f->path, msg);
    /* Names come from the file: keep the message on one line whatever they hold. */
    for (char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return LOOM_EFORMAT;
}

/* A JSON number that is a non-negative integer below 2^53 (and fits size_t). */
static bool json_size(const cJSON *it, size_t *out) {
    if (!cJSON_IsNumber(it)) return false;
    double v = it->valuedouble;
    if (!(v >= 0) || signbit(v) || v >= ST_MAX_INT || v > (double)SIZE_MAX || v != floor(v))
        return false;
    *out = (size_t)v;
    return true;
}

typedef struct range {
    size_t begin, end, idx;
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* One tensor entry {"dtype":..., "shape":[...], "data_offsets":[b, e]}. */
static loom_status parse_entry(loom_st_file *f, const cJSON *e, loom_tensor *t, range *r,
                               size_t data_len, loom_error *err) {
    const char *name = e->string;
    if (!name[0]) return bad(f, err, "tensor with an empty name");
    if (!cJSON_IsObject(e)) return bad(f, err, "entry %s is not an object", name);
    const cJSON *dt = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *k = e->child; k; k = k->next) {
        const cJSON **slot = strcmp(k->string, "dtype") == 0          ? &dt
                             : strcmp(k->string, "shape") == 0        ? &shape
                             : strcmp(k->string, "data_offsets") == 0 ? &offs
                                                                      : NULL;
        if (!slot) return bad(f, err, "tensor %s has unknown key \"%s\"", name, k->string);
        if (*slot) return bad(f, err, "tensor %s has key \"%s\" twice", name, k->string);
        *slot = k;
    }
    if (!dt || !shape || !offs)
        return bad(f, err, "tensor %s has no \"%s\"", name,
                   !dt ? "dtype" : !shape ? "shape" : "data_offsets");

    if (!cJSON_IsString(dt)) return bad(f, err, "tensor %s: dtype is not a string", name);
    size_t k = 0;
    while (k < NDTYPES && strcmp(dt->valuestring, dtypes[k].name) != 0) k++;
    if (k == NDTYPES)
        return bad(f, err, "tensor %s has unsupported dtype \"%s\"", name, dt->valuestring);
    t->name = name;
    t->dtype = (loom_dtype)k;

    if (!cJSON_IsArray(shape)) return bad(f, err, "tensor %s: shape is not an array", name);
    size_t nbytes = dtypes[k].size;
    t->ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (t->ndim == LOOM_MAXDIM)
            return bad(f, err, "tensor %s has more than %d dimensions", name, LOOM_MAXDIM);
        size_t v;
        if (!json_size(d, &v))
            return bad(f, err, "tensor %s: shape is not a list of integers in [0, 2^53)", name);
        if (!loom_mul_ok(nbytes, v, &nbytes))
            return bad(f, err, "tensor %s: shape overflows the size", name);
        t->shape[t->ndim++] = v;
    }

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_size(offs->child, &r->begin) || !json_size(offs->child->next, &r->end))
        return bad(f, err, "tensor %s: data_offsets is not two integers in [0, 2^53)", name);
    if (r->begin > r->end)
        return bad(f, err, "tensor %s: data_offsets [%zu, %zu] end before they begin", name,
                   r->begin, r->end);
    if (r->end > data_len)
        return bad(f, err, "tensor %s: data_offsets [%zu, %zu] go beyond the %zu-byte data buffer",
                   name, r->begin, r->end, data_len);
    if (r->end - r->begin != nbytes) {
        char sb[LOOM_MAXDIM * 24 + 8];
        return bad(f, err, "tensor %s: data_offsets [%zu, %zu] hold %zu bytes but %s %s needs %zu",
                   name, r->begin, r->end, r->end - r->begin, dtypes[k].name,
                   shape_str(sb, sizeof sb, t->ndim, t->shape, ", "), nbytes);
    }
    return LOOM_OK;
}

static loom_status parse_meta(loom_st_file *f, const cJSON *m, loom_error *err) {
    if (f->meta) return bad(f, err, "%s appears twice", ST_META);
    if (!cJSON_IsObject(m)) return bad(f, err, "%s is not an object", ST_META);
    size_t n = 0;
    for (const cJSON *k = m->child; k; k = k->next, n++)
        if (!cJSON_IsString(k))
            return bad(f, err, "%s value for key \"%s\" is not a string", ST_META, k->string);
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", f->path);
    n = 0;
    for (const cJSON *k = m->child; k; k = k->next) keys[n++] = k->string;
    const char *dup = first_duplicate(keys, n);
    loom_status st = dup ? bad(f, err, "duplicate %s key \"%s\"", ST_META, dup) : LOOM_OK;
    free(keys);
    f->meta = m;
    return st;
}

/* Validate the header and fill f->tensors. f->bytes holds the whole file. */
static loom_status parse(loom_st_file *f, loom_error *err) {
    if (f->size < 8) return bad(f, err, "file is %zu bytes, too short for a header", f->size);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)f->bytes[i] << (8 * i);
    /* a text file, an image or another format read by mistake: say so first */
    if (hlen > ST_MAX_HEADER)
        return bad(f, err, "not a safetensors file (header length %llu exceeds the 100 MB limit)",
                   (unsigned long long)hlen);
    if (hlen > f->size - 8)
        return bad(f, err, "not a safetensors file (header length %llu exceeds the %zu bytes after the length field)",
                   (unsigned long long)hlen, f->size - 8);
    const char *json = (const char *)f->bytes + 8;
    size_t n = (size_t)hlen;
    if (!utf8_ok((const uint8_t *)json, n)) return bad(f, err, "header is not valid UTF-8");

    const char *end = NULL;
    f->root = cJSON_ParseWithLengthOpts(json, n, &end, 0);
    if (!f->root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        return bad(f, err, "header is not valid JSON (near byte %zu)", at);
    }
    for (const char *p = end; p < json + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return bad(f, err, "header has trailing bytes after the JSON object (at byte %zu)",
                       (size_t)(p - json));
    if (!cJSON_IsObject(f->root)) return bad(f, err, "header is not a JSON object");

    size_t count = 0;
    for (const cJSON *e = f->root->child; e; e = e->next) count += strcmp(e->string, ST_META) != 0;
    size_t data_len = f->size - 8 - n;
    const uint8_t *data = f->bytes + 8 + n;
    f->tensors = calloc(count ? count : 1, sizeof *f->tensors);
    range *ranges = calloc(count ? count : 1, sizeof *ranges);
    const char **names = calloc(count ? count : 1, sizeof *names);
    loom_status st = LOOM_OK;
    if (!f->tensors || !ranges || !names) {
        st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", f->path);
        goto done;
    }

    size_t i = 0;
    for (const cJSON *e = f->root->child; e && st == LOOM_OK; e = e->next) {
        if (strcmp(e->string, ST_META) == 0) {
            st = parse_meta(f, e, err);
            continue;
        }
        st = parse_entry(f, e, &f->tensors[i], &ranges[i], data_len, err);
        if (st != LOOM_OK) break;
        f->tensors[i].data = data + ranges[i].begin;
        ranges[i].idx = i;
        names[i] = e->string;
        i++;
    }
    if (st != LOOM_OK) goto done;
    f->ntensors = count;

    const char *dup = first_duplicate(names, count);
    if (dup) {
        st = bad(f, err, "duplicate tensor name %s", dup);
        goto done;
    }
    /* The tensors must tile the data buffer exactly: sorted by offset, each begins
     * where the previous one ended (the safetensors spec forbids holes). */
    qsort(ranges, count, sizeof *ranges, cmp_range);
    size_t covered = 0;
    for (size_t k = 0; k < count; k++) {
        const range *r = &ranges[k];
        if (r->begin < covered) {
            st = bad(f, err, "tensors %s and %s overlap", f->tensors[ranges[k - 1].idx].name,
                     f->tensors[r->idx].name);
            goto done;
        }
        if (r->begin > covered) {
            st = bad(f, err, "data bytes [%zu, %zu) belong to no tensor (before %s)", covered,
                     r->begin, f->tensors[r->idx].name);
            goto done;
        }
        covered = r->end;
    }
    if (covered != data_len)
        st = bad(f, err, "data bytes [%zu, %zu) at the end belong to no tensor", covered,
                 data_len);
done:
    free(ranges);
    free(names);
    return st;
}

static loom_status read_all(loom_st_file *f, loom_error *err) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return loom_fail(err, loom_open_status(errno), "%s: %s", f->path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return loom_fail(err, LOOM_EIO, "%s: %s", f->path, strerror(e));
    }
    if (sb.st_size < 0 || (uintmax_t)sb.st_size >= SIZE_MAX) {
        close(fd);
        return loom_fail(err, LOOM_ENOMEM, "%s: file too large", f->path);
    }
    size_t cap = (size_t)sb.st_size;
    f->bytes = malloc(cap ? cap : 1);
    if (!f->bytes) {
        close(fd);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory for %zu bytes", f->path, cap);
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, f->bytes + got, cap - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return loom_fail(err, LOOM_EIO, "%s: %s", f->path, strerror(e));
        }
        if (r == 0) break; /* the file shrank; validation sees what is there */
        got += (size_t)r;
    }
    close(fd);
    f->size = got;
    return LOOM_OK;
}

loom_status loom_safetensors_open(loom_st_file **out, const char *path, loom_error *err) {
    if (!out || !path) return loom_fail(err, LOOM_EINVAL, "safetensors: NULL argument");
    *out = NULL;
    loom_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    }
    loom_status st = read_all(f, err);
    if (st == LOOM_OK) st = parse(f, err);
    if (st != LOOM_OK) {
        loom_safetensors_close(f);
        return st;
    }
    *out = f;
    return LOOM_OK;
}

void loom_safetensors_close(loom_st_file *f) {
    if (!f) return;
    cJSON_Delete(f->root);
    free(f->tensors);
    free(f->bytes);
    free(f->path);
    free(f);
}

const char *loom_st_meta(const loom_st_file *f, const char *key) {
    if (!f || !f->meta || !key) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f->meta, key);
    return v ? v->valuestring : NULL;
}

size_t loom_st_count(const loom_st_file *f) { return f ? f->ntensors : 0; }

const loom_tensor *loom_st_get(const loom_st_file *f, size_t i) {
    return f && i < f->ntensors ? &f->tensors[i] : NULL;
}

const loom_tensor *loom_st_find(const loom_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (size_t i = 0; i < f->ntensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

loom_status loom_st_read_f32(const loom_st_file *f, const char *name, float *dst, int ndim,
                             const size_t *shape, loom_error *err) {
    if (!f || !name || (ndim > 0 && !shape) || ndim < 0 || ndim > LOOM_MAXDIM)
        return loom_fail(err, LOOM_EINVAL, "loom_st_read_f32: bad argument");
    const loom_tensor *t = loom_st_find(f, name);
    if (!t) return bad(f, err, "missing tensor %s", name);
    if (t->dtype != LOOM_F32)
        return bad(f, err, "tensor %s has dtype %s, expected F32", name, dtypes[t->dtype].name);
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char have[LOOM_MAXDIM * 24 + 8], want[LOOM_MAXDIM * 24 + 8];
        return bad(f, err, "tensor %s has shape %s, expected %s", name,
                   shape_str(have, sizeof have, t->ndim, t->shape, ", "),
                   shape_str(want, sizeof want, ndim, shape, ", "));
    }
    size_t n = tensor_nbytes(t);
    if (n && !dst) return loom_fail(err, LOOM_EINVAL, "loom_st_read_f32: NULL destination");
    /* memcpy, not a cast: the data is only 4-byte aligned if the header length is. */
    if (n) memcpy(dst, t->data, n);
    return LOOM_OK;
}
