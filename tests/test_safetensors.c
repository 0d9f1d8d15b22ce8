/* safetensors: round trip, on-disk layout, writer argument checks, a battery of
 * corrupt files (each must be rejected with LOOM_EFORMAT and the path in the
 * message), every truncation, random header mutations, and atomic overwrite. */
#include "check.h"
#include "testutil.h"
#include "loom.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void mkpath(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", dir, name);
}

static bool write_raw(const char *path, const void *bytes, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return false;
    bool ok = fwrite(bytes, 1, n, fp) == n;
    return fclose(fp) == 0 && ok;
}

/* A safetensors file with an unpadded header: u64 length, json, data. */
static bool write_st(const char *path, const char *json, size_t jlen, const void *data,
                     size_t dlen) {
    size_t n = 8 + jlen + dlen;
    uint8_t *b = malloc(n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)jlen >> (8 * i));
    memcpy(b + 8, json, jlen);
    if (dlen) memcpy(b + 8 + jlen, data, dlen);
    bool ok = write_raw(path, b, n);
    free(b);
    return ok;
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Open `path` and require rejection: EFORMAT, no handle, one line naming the path
 * and containing `want`. */
static void expect_bad_file(const char *name, const char *path, const char *want) {
    loom_st_file *f = (loom_st_file *)&f; /* must be reset to NULL */
    loom_error err = {{0}};
    loom_status st = loom_safetensors_open(&f, path, &err);
    printf("# %-28s %s\n", name, err.msg);
    CHECK(name,
          st == LOOM_EFORMAT && f == NULL && strstr(err.msg, path) == err.msg &&
              !strchr(err.msg, '\n') && strstr(err.msg, want),
          "status %s, msg \"%s\", want \"%s\"", loom_status_name(st), err.msg, want);
    if (st == LOOM_OK) loom_safetensors_close(f);
}

static void expect_bad(const char *name, const char *json, const void *data, size_t dlen,
                       const char *want) {
    char path[128];
    mkpath(path, sizeof path, "bad.safetensors");
    write_st(path, json, strlen(json), data, dlen);
    expect_bad_file(name, path, want);
}

static loom_status open_json(const char *json, const void *data, size_t dlen, loom_st_file **f) {
    char path[128];
    mkpath(path, sizeof path, "good.safetensors");
    write_st(path, json, strlen(json), data, dlen);
    loom_error err = {{0}};
    loom_status st = loom_safetensors_open(f, path, &err);
    if (st != LOOM_OK) printf("# unexpected: %s\n", err.msg);
    return st;
}

/* ---------------------------------------------------------------- round trip */

static float w_data[6] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};
static uint8_t u8_data[5] = {1, 2, 3, 254, 255};
static int32_t i32_data[8] = {0, -7, 14, -21, 28, -35, 42, 2147483647};
static int64_t i64_data[1] = {-1234567890123LL};
static double f64_data[4] = {3.141592653589793, -2.5, 1e-300, 1e300};
static float s_data[1] = {3.25f};

#define NT 8
static const loom_tensor tensors[NT] = {
    {"w", LOOM_F32, 2, {2, 3}, w_data},
    {"bytes", LOOM_U8, 1, {5}, u8_data}, /* 5 bytes: everything after is misaligned */
    {"idx", LOOM_I32, 3, {2, 2, 2}, i32_data},
    {"step", LOOM_I64, 0, {0}, i64_data}, /* scalar, shape [] */
    {"rnn.0.is.weight", LOOM_F64, 4, {1, 2, 1, 2}, f64_data},
    {"empty", LOOM_F32, 2, {0, 4}, NULL}, /* zero-size tensors need no data */
    {"none", LOOM_U8, 1, {0}, NULL},
    {"scalar", LOOM_F32, 0, {0}, s_data},
};
static size_t tensor_bytes(const loom_tensor *t) {
    static const size_t sz[] = {4, 1, 4, 8, 8};
    size_t n = sz[t->dtype];
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}
#define NM 4
static const loom_kv meta[NM] = {
    {"format", "loom-1"},
    {"rng", "9e3779b97f4a7c15 bf58476d1ce4e5b9 94d049bb133111eb 0000000000000001"},
    {"unicode", "na\xc3\xafve \xe2\x9c\x93 \"quoted\" back\\slash\nnewline"},
    {"empty", ""},
};

static void test_round_trip(const char *path) {
    loom_error err = {{0}};
    loom_status st = loom_safetensors_write(path, tensors, NT, meta, NM, &err);
    CHECK("write ok", st == LOOM_OK, "%s: %s", loom_status_name(st), err.msg);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK("write leaves no temp file", !exists(tmp), "%s exists", tmp);

    loom_st_file *f = NULL;
    st = loom_safetensors_open(&f, path, &err);
    CHECK("open ok", st == LOOM_OK && f, "%s: %s", loom_status_name(st), err.msg);
    if (!f) return;
    CHECK("count", loom_st_count(f) == NT, "%zu", loom_st_count(f));
    bool same = loom_st_count(f) == NT;
    for (size_t i = 0; same && i < NT; i++) {
        const loom_tensor *a = &tensors[i], *b = loom_st_get(f, i);
        same = b && strcmp(a->name, b->name) == 0 && a->dtype == b->dtype && a->ndim == b->ndim &&
               loom_st_find(f, a->name) == b;
        for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
        size_t n = tensor_bytes(a);
        if (same && n) same = memcmp(a->data, b->data, n) == 0;
        if (!same) printf("# tensor %zu (%s) differs\n", i, a->name);
    }
    CHECK("tensors round trip in order (names, dtypes, shapes, bytes)", same, "see above");
    CHECK("get out of range is NULL", loom_st_get(f, NT) == NULL, "not NULL");
    CHECK("find missing is NULL", loom_st_find(f, "nope") == NULL, "not NULL");

    bool meta_ok = true;
    for (size_t i = 0; i < NM; i++) {
        const char *v = loom_st_meta(f, meta[i].key);
        meta_ok = meta_ok && v && strcmp(v, meta[i].value) == 0;
    }
    CHECK("metadata round trip", meta_ok, "mismatch");
    CHECK("missing metadata is NULL", loom_st_meta(f, "nope") == NULL, "not NULL");

    float w[6] = {0}, s = 0, e = 0;
    st = loom_st_read_f32(f, "w", w, 2, (size_t[]){2, 3}, &err);
    CHECK("read_f32", st == LOOM_OK && memcmp(w, w_data, sizeof w) == 0, "%s", err.msg);
    st = loom_st_read_f32(f, "scalar", &s, 0, NULL, &err);
    CHECK("read_f32 scalar", st == LOOM_OK && s == 3.25f, "%s %g", err.msg, (double)s);
    st = loom_st_read_f32(f, "empty", &e, 2, (size_t[]){0, 4}, &err);
    CHECK("read_f32 zero-size", st == LOOM_OK, "%s", err.msg);

    char want[512];
    st = loom_st_read_f32(f, "w", w, 2, (size_t[]){3, 2}, &err);
    snprintf(want, sizeof want, "%s: tensor w has shape [2, 3], expected [3, 2]", path);
    CHECK("read_f32 wrong shape", st == LOOM_EFORMAT && strcmp(err.msg, want) == 0, "%s", err.msg);
    st = loom_st_read_f32(f, "w", w, 1, (size_t[]){6}, &err);
    snprintf(want, sizeof want, "%s: tensor w has shape [2, 3], expected [6]", path);
    CHECK("read_f32 wrong ndim", st == LOOM_EFORMAT && strcmp(err.msg, want) == 0, "%s", err.msg);
    st = loom_st_read_f32(f, "head2.bias", w, 1, (size_t[]){6}, &err);
    snprintf(want, sizeof want, "%s: missing tensor head2.bias", path);
    CHECK("read_f32 missing", st == LOOM_EFORMAT && strcmp(err.msg, want) == 0, "%s", err.msg);
    st = loom_st_read_f32(f, "bytes", w, 1, (size_t[]){5}, &err);
    snprintf(want, sizeof want, "%s: tensor bytes has dtype U8, expected F32", path);
    CHECK("read_f32 wrong dtype", st == LOOM_EFORMAT && strcmp(err.msg, want) == 0, "%s",
          err.msg);
    loom_safetensors_close(f);
}

/* The file on disk is what docs/checkpoint-format.md says. */
static void test_layout(const char *path) {
    size_t n = 0;
    uint8_t *b = test_read_file(path, &n);
    uint64_t hlen = 0;
    for (int i = 0; i < 8 && n >= 8; i++) hlen |= (uint64_t)b[i] << (8 * i);
    size_t data = 0;
    for (size_t i = 0; i < NT; i++) data += tensor_bytes(&tensors[i]);
    CHECK("layout: size = 8 + header + data", n >= 8 && n == 8 + hlen + data,
          "file %zu, header %llu, data %zu", n, (unsigned long long)hlen, data);
    CHECK("layout: data starts 8-byte aligned", (8 + hlen) % 8 == 0, "header %llu",
          (unsigned long long)hlen);
    if (n != 8 + hlen + data) {
        free(b);
        return;
    }
    const char *json = (const char *)b + 8;
    size_t jlen = (size_t)hlen;
    while (jlen && json[jlen - 1] == ' ') jlen--;
    CHECK("layout: header is JSON padded with spaces",
          json[0] == '{' && jlen && json[jlen - 1] == '}' && hlen - jlen < 8, "bad padding");
    cJSON *root = cJSON_ParseWithLength(json, jlen);
    CHECK("layout: header parses", root != NULL, "cJSON failed");
    if (!root) {
        free(b);
        return;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    CHECK("layout: __metadata__ holds strings",
          cJSON_IsObject(m) && cJSON_GetArraySize(m) == NM &&
              strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "format")),
                     "loom-1") == 0,
          "bad metadata");
    /* Tensors in the given order, contiguous from offset 0. */
    size_t off = 0;
    bool ok = true;
    for (size_t i = 0; i < NT; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, tensors[i].name);
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "shape");
        size_t nb = tensor_bytes(&tensors[i]);
        ok = ok && cJSON_GetArraySize(o) == 2 &&
             cJSON_GetArrayItem(o, 0)->valuedouble == (double)off &&
             cJSON_GetArrayItem(o, 1)->valuedouble == (double)(off + nb) &&
             cJSON_GetArraySize(s) == tensors[i].ndim &&
             memcmp(b + 8 + hlen + off, tensors[i].data ? tensors[i].data : "", nb) == 0;
        off += nb;
    }
    CHECK("layout: offsets contiguous in the given order, bytes in place", ok, "mismatch");
    const cJSON *first = root->child;
    CHECK("layout: __metadata__ first, then tensors in order",
          first && strcmp(first->string, "__metadata__") == 0 && first->next &&
              strcmp(first->next->string, "w") == 0,
          "order differs");
    cJSON_Delete(root);
    free(b);
}

/* ---------------------------------------------------------------- writer checks */

static void expect_write_fail(const char *name, const loom_tensor *t, size_t nt,
                              const loom_kv *m, size_t nm, loom_status want) {
    char path[128];
    mkpath(path, sizeof path, "reject.safetensors");
    loom_error err = {{0}};
    loom_status st = loom_safetensors_write(path, t, nt, m, nm, &err);
    printf("# %-28s %s\n", name, err.msg);
    CHECK(name, st == want && !exists(path) && strstr(err.msg, path), "status %s, msg \"%s\"",
          loom_status_name(st), err.msg);
}

static void test_write_args(void) {
    float x[4] = {0};
    loom_tensor t[2] = {{"a", LOOM_F32, 1, {4}, x}, {"a", LOOM_F32, 1, {4}, x}};
    expect_write_fail("write: duplicate names", t, 2, NULL, 0, LOOM_EINVAL);
    t[1].name = "";
    expect_write_fail("write: empty name", t, 2, NULL, 0, LOOM_EINVAL);
    t[1].name = NULL;
    expect_write_fail("write: NULL name", t, 2, NULL, 0, LOOM_EINVAL);
    t[1].name = "__metadata__";
    expect_write_fail("write: reserved name", t, 2, NULL, 0, LOOM_EINVAL);
    t[1].name = "bad\xff";
    expect_write_fail("write: name not UTF-8", t, 2, NULL, 0, LOOM_EINVAL);
    t[1].name = "b";
    t[1].ndim = 5;
    expect_write_fail("write: 5 dims", t, 2, NULL, 0, LOOM_EINVAL);
    t[1].ndim = -1;
    expect_write_fail("write: negative ndim", t, 2, NULL, 0, LOOM_EINVAL);
    t[1].ndim = 1;
    t[1].dtype = (loom_dtype)99;
    expect_write_fail("write: unknown dtype", t, 2, NULL, 0, LOOM_EINVAL);
    t[1].dtype = LOOM_F32;
    t[1].data = NULL;
    expect_write_fail("write: NULL data", t, 2, NULL, 0, LOOM_EINVAL);
    t[1].data = x;
    t[1].ndim = 2;
    t[1].shape[0] = (size_t)1 << 40;
    t[1].shape[1] = (size_t)1 << 40;
    expect_write_fail("write: size overflow", t, 2, NULL, 0, LOOM_ENOMEM);
    t[1].shape[0] = (size_t)1 << 53;
    t[1].shape[1] = 0;
    expect_write_fail("write: dimension >= 2^53", t, 2, NULL, 0, LOOM_EINVAL);
    t[1].ndim = 1;
    t[1].shape[0] = 4;
    loom_kv m[2] = {{"k", "v"}, {"k", "w"}};
    expect_write_fail("write: duplicate metadata keys", t, 2, m, 2, LOOM_EINVAL);
    m[1].key = "k2";
    m[1].value = NULL;
    expect_write_fail("write: NULL metadata value", t, 2, m, 2, LOOM_EINVAL);
    expect_write_fail("write: NULL tensor array", NULL, 2, NULL, 0, LOOM_EINVAL);

    /* No tensors at all is a valid (if useless) file: "{}" padded to 8 bytes. */
    char path[128];
    mkpath(path, sizeof path, "empty.safetensors");
    loom_error err = {{0}};
    loom_status st = loom_safetensors_write(path, NULL, 0, NULL, 0, &err);
    loom_st_file *f = NULL;
    if (st == LOOM_OK) st = loom_safetensors_open(&f, path, &err);
    size_t n = 0;
    uint8_t *b = test_read_file(path, &n);
    CHECK("write: zero tensors", st == LOOM_OK && loom_st_count(f) == 0 && n == 16 &&
                                     b[0] == 8 && memcmp(b + 8, "{}      ", 8) == 0,
          "%s (%zu bytes)", err.msg, n);
    free(b);
    loom_safetensors_close(f);
    loom_safetensors_close(NULL); /* NULL-safe */
}

/* ---------------------------------------------------------------- corrupt files */

/* One header entry, and a header holding just tensor "a". */
#define ENTRY(name, dtype, shape, offs) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}"
#define ONE(dtype, shape, offs) "{" ENTRY("a", dtype, shape, offs) "}"
#define A8 ENTRY("a", "F32", "[2]", "[0,8]")

static void test_corrupt(void) {
    static const uint8_t z[64] = {0};
    char path[128];
    mkpath(path, sizeof path, "bad.safetensors");

    write_raw(path, "", 0);
    expect_bad_file("empty file", path, "too short");
    write_raw(path, "\x02\0\0\0\0\0\0", 7);
    expect_bad_file("7-byte file", path, "too short");
    write_raw(path, "\0\0\0\0\0\0\0\x80{}", 10);
    expect_bad_file("header length 2^63", path, "100 MB");
    write_raw(path, "\x00\xc2\xeb\x0b\0\0\0\0{}", 10); /* 200e6 */
    expect_bad_file("header length 200 MB", path, "100 MB");
    write_raw(path, "\x64\0\0\0\0\0\0\0{}", 10);
    expect_bad_file("header length > file", path, "exceeds");
    write_st(path, "{\"a\0\":{}}", 9, NULL, 0);
    expect_bad_file("NUL byte in header", path, "UTF-8");

    expect_bad("garbage header", "\xde\xad\xbe\xef\x01\x02", NULL, 0, "UTF-8");
    expect_bad("overlong UTF-8", "{\"\xc0\xaf\":1}", NULL, 0, "UTF-8");
    expect_bad("not JSON", "{\"a\":", NULL, 0, "not valid JSON");
    expect_bad("empty header", "", NULL, 0, "not valid JSON");
    expect_bad("JSON array", "[1,2]", NULL, 0, "not a JSON object");
    expect_bad("JSON string", "\"x\"", NULL, 0, "not a JSON object");
    expect_bad("trailing bytes", "{} x", NULL, 0, "trailing");
    expect_bad("two objects", "{}{}", NULL, 0, "trailing");
    /* cJSON stops at 1000 levels; below that the entry is merely not an object. */
    char *deep = malloc(2 * 5000 + 16);
    for (size_t depth = 100; depth <= 5000; depth += 4900) {
        size_t k = 0;
        k += (size_t)sprintf(deep, "{\"a\":");
        for (size_t i = 0; i < depth; i++) deep[k++] = '[';
        for (size_t i = 0; i < depth; i++) deep[k++] = ']';
        deep[k++] = '}';
        deep[k] = '\0';
        expect_bad(depth == 100 ? "nesting 100 deep" : "nesting 5000 deep", deep, NULL, 0,
                   depth == 100 ? "not an object" : "not valid JSON");
    }
    free(deep);
    expect_bad("entry not object", "{\"a\":3}", NULL, 0, "not an object");
    expect_bad("empty name", "{" ENTRY("", "F32", "[2]", "[0,8]") "}", z, 8, "empty name");
    expect_bad("unsupported dtype", ONE("F16", "[4]", "[0,8]"), z, 8, "dtype \"F16\"");
    expect_bad("dtype not string", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", z,
               8, "dtype");
    expect_bad("missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", z, 8,
               "no \"dtype\"");
    expect_bad("missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", z, 8,
               "no \"shape\"");
    expect_bad("offsets missing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", z, 8,
               "no \"data_offsets\"");
    expect_bad("unknown key", ONE("F32", "[2]", "[0,8],\"x\":1"), z, 8, "unknown key");
    expect_bad("key twice", ONE("F32\",\"dtype\":\"F32", "[2]", "[0,8]"), z, 8, "twice");
    expect_bad("negative shape", ONE("F32", "[-2]", "[0,8]"), z, 8, "shape");
    expect_bad("float shape", ONE("F32", "[2.5]", "[0,10]"), z, 10, "shape");
    expect_bad("string in shape", ONE("F32", "[\"2\"]", "[0,8]"), z, 8, "shape");
    expect_bad("shape not array", ONE("F32", "2", "[0,8]"), z, 8, "shape");
    expect_bad("shape 5 dims", ONE("F32", "[1,1,1,1,2]", "[0,8]"), z, 8, "more than 4");
    expect_bad("shape overflow", ONE("F32", "[4294967296,4294967296,4294967296]", "[0,8]"), z, 8,
               "overflow");
    expect_bad("shape 1e300", ONE("F32", "[1e300]", "[0,8]"), z, 8, "shape");
    expect_bad("shape 2^53", ONE("U8", "[9007199254740992,0]", "[0,0]"), NULL, 0, "shape");
    expect_bad("offsets one number", ONE("F32", "[2]", "[8]"), z, 8, "data_offsets");
    expect_bad("offsets three numbers", ONE("F32", "[2]", "[0,8,8]"), z, 8, "data_offsets");
    expect_bad("offsets not array", ONE("F32", "[2]", "8"), z, 8, "data_offsets");
    expect_bad("negative offset", ONE("F32", "[2]", "[-8,0]"), z, 8, "data_offsets");
    expect_bad("begin > end", ONE("F32", "[2]", "[8,0]"), z, 8, "end before");
    expect_bad("offsets out of range", "{" A8 "}", z, 4, "beyond");
    expect_bad("offsets 1e20", ONE("F32", "[2]", "[0,1e20]"), z, 8, "data_offsets");
    expect_bad("size mismatch", ONE("F32", "[3]", "[0,8]"), z, 8, "needs 12");
    expect_bad("overlapping tensors", "{" A8 "," ENTRY("b", "F32", "[2]", "[4,12]") "}", z, 12,
               "overlap");
    expect_bad("hole between tensors",
               "{" ENTRY("a", "F32", "[1]", "[0,4]") "," ENTRY("b", "F32", "[1]", "[8,12]") "}",
               z, 12, "belong to no tensor");
    expect_bad("hole at start", ONE("F32", "[1]", "[4,8]"), z, 8, "belong to no tensor");
    expect_bad("uncovered tail", "{" A8 "}", z, 12, "belong to no tensor");
    expect_bad("empty tensor inside another", "{" A8 "," ENTRY("z", "F32", "[0]", "[4,4]") "}", z,
               8, "overlap");
    expect_bad("duplicate names", "{" A8 "," ENTRY("a", "F32", "[2]", "[8,16]") "}", z, 16,
               "duplicate tensor name a");
    expect_bad("metadata value not string", "{\"__metadata__\":{\"k\":1}," A8 "}", z, 8,
               "not a string");
    expect_bad("metadata not object", "{\"__metadata__\":\"x\"," A8 "}", z, 8, "not an object");
    expect_bad("metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}," A8 "}", z, 8,
               "twice");
    expect_bad("metadata duplicate key", "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}," A8 "}", z,
               8, "duplicate __metadata__ key");
    expect_bad("newline in name stays one line", "{" ENTRY("a\\nb", "F16", "[4]", "[0,8]") "}", z,
               8, "a?b");
}

/* Files that look odd but are valid. */
static void test_valid_odd(void) {
    loom_st_file *f = NULL;
    /* Unpadded header: the F32 data lands on an odd address; read_f32 must memcpy. */
    char json[256];
    const char *base = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
    size_t len = strlen(base);
    memcpy(json, base, len);
    while ((8 + len) % 4 != 1) json[len++] = ' ';
    json[len] = '\0';
    float x[3] = {1.5f, -2.0f, 1e-30f}, y[3] = {0};
    char path[128];
    mkpath(path, sizeof path, "odd.safetensors");
    write_st(path, json, len, x, sizeof x);
    loom_error err = {{0}};
    loom_status st = loom_safetensors_open(&f, path, &err);
    if (st == LOOM_OK) st = loom_st_read_f32(f, "x", y, 1, (size_t[]){3}, &err);
    CHECK("unaligned F32 data", st == LOOM_OK && memcmp(x, y, sizeof x) == 0 &&
                                    ((uintptr_t)loom_st_get(f, 0)->data & 3) != 0,
          "%s", err.msg);
    loom_safetensors_close(f);

    f = NULL;
    st = open_json("{" ENTRY("b", "U8", "[4]", "[4,8]") "," ENTRY("a", "I32", "[]", "[0,4]")
                   "} \n\t\r ",
                   "abcdefgh", 8, &f);
    CHECK("header order differs from offset order",
          st == LOOM_OK && loom_st_count(f) == 2 && strcmp(loom_st_get(f, 0)->name, "b") == 0 &&
              memcmp(loom_st_get(f, 0)->data, "efgh", 4) == 0 && loom_st_get(f, 1)->ndim == 0,
          "status %s", loom_status_name(st));
    loom_safetensors_close(f);

    f = NULL;
    st = open_json("{" ENTRY("e0", "U8", "[0]", "[0,0]") "," ENTRY("a", "F32", "[1]", "[0,4]")
                   "," ENTRY("e1", "F64", "[3,0]", "[4,4]") ","
                   ENTRY("e2", "I64", "[0,9007199254740991]", "[4,4]") "}",
                   "abcd", 4, &f);
    CHECK("zero-size tensors at the start, the end and together", st == LOOM_OK &&
                                                                     loom_st_count(f) == 4,
          "status %s", loom_status_name(st));
    loom_safetensors_close(f);

    f = NULL;
    st = open_json("{\"__metadata__\":{}}", NULL, 0, &f);
    CHECK("metadata only", st == LOOM_OK && loom_st_count(f) == 0, "status %s",
          loom_status_name(st));
    loom_safetensors_close(f);
}

/* ---------------------------------------------------------------- truncation, fuzz */

static void test_truncations(const char *good) {
    size_t n = 0;
    uint8_t *b = test_read_file(good, &n);
    char path[128];
    mkpath(path, sizeof path, "trunc.safetensors");
    size_t wrong = 0;
    for (size_t len = 0; len < n; len++) {
        write_raw(path, b, len);
        loom_st_file *f = NULL;
        loom_error err = {{0}};
        loom_status st = loom_safetensors_open(&f, path, &err);
        if (st != LOOM_EFORMAT || f || !strstr(err.msg, path)) {
            if (wrong++ < 5)
                printf("# truncated to %zu: %s %s\n", len, loom_status_name(st), err.msg);
            loom_safetensors_close(f);
        }
    }
    CHECK("every truncation rejected", wrong == 0 && n > 100, "%zu of %zu accepted or misreported",
          wrong, n);
    free(b);
}

static const char interesting[] = "{}[]\",:0123456789-.eE \\u";

static void test_fuzz(const char *good) {
    size_t n = 0;
    uint8_t *b = test_read_file(good, &n);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)b[i] << (8 * i);
    size_t hend = 8 + (size_t)hlen; /* mutate the length field and the header */
    uint8_t *m = malloc(n);
    char path[128];
    mkpath(path, sizeof path, "fuzz.safetensors");
    loom_rng rng;
    loom_rng_seed(&rng, 20240601);
    size_t bad = 0, accepted = 0;
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(m, b, n);
        size_t k = 1 + loom_rng_below(&rng, 3);
        for (size_t j = 0; j < k; j++) {
            size_t pos = loom_rng_below(&rng, hend);
            switch (loom_rng_below(&rng, 3)) {
            case 0: m[pos] = (uint8_t)loom_rng_u64(&rng); break;
            case 1: m[pos] ^= (uint8_t)(1u << loom_rng_below(&rng, 8)); break;
            default: m[pos] = (uint8_t)interesting[loom_rng_below(&rng, sizeof interesting - 1)];
            }
        }
        write_raw(path, m, n);
        loom_st_file *f = NULL;
        loom_error err = {{0}};
        loom_status st = loom_safetensors_open(&f, path, &err);
        if (st == LOOM_EFORMAT && !f && strstr(err.msg, path) && !strchr(err.msg, '\n')) continue;
        if (st != LOOM_OK || !f) {
            if (bad++ < 5) printf("# mutation %d: %s %s\n", iter, loom_status_name(st), err.msg);
            continue;
        }
        accepted++;
        /* Accepted: the tensors must tile [8 + N, n) exactly and hold the file's bytes. */
        uint64_t h2 = 0;
        for (int i = 0; i < 8; i++) h2 |= (uint64_t)m[i] << (8 * i);
        const uint8_t *lo = NULL;
        size_t sum = 0;
        for (size_t i = 0; i < loom_st_count(f); i++) {
            const loom_tensor *t = loom_st_get(f, i);
            if (tensor_bytes(t) && (!lo || (const uint8_t *)t->data < lo)) lo = t->data;
            sum += tensor_bytes(t);
        }
        bool ok = h2 <= n - 8 && sum == n - 8 - h2;
        for (size_t i = 0; ok && i < loom_st_count(f); i++) {
            const loom_tensor *t = loom_st_get(f, i);
            size_t nb = tensor_bytes(t);
            if (!nb) continue;
            size_t off = (size_t)((const uint8_t *)t->data - lo);
            ok = off + nb <= sum && memcmp(t->data, m + 8 + h2 + off, nb) == 0 && t->name[0];
        }
        if (!ok && bad++ < 5) printf("# mutation %d accepted with misplaced tensors\n", iter);
        loom_safetensors_close(f);
    }
    printf("# fuzz: %zu of 2000 mutations accepted\n", accepted);
    CHECK("2000 header mutations: EFORMAT or a consistent file", bad == 0, "%zu bad", bad);
    free(m);
    free(b);
}

/* ---------------------------------------------------------------- atomic write */

static void test_atomic(void) {
    float old_v[2] = {1, 2}, new_v[2] = {3, 4}, got[2] = {0};
    loom_tensor t = {"v", LOOM_F32, 1, {2}, old_v};
    char path[128], tmp[160], nodir[160];
    loom_error err = {{0}};

    mkpath(nodir, sizeof nodir, "no/such/dir/ckpt.safetensors");
    loom_status st = loom_safetensors_write(nodir, &t, 1, NULL, 0, &err);
    printf("# %-28s %s\n", "missing directory", err.msg);
    CHECK("write into a missing directory", st == LOOM_EIO && strstr(err.msg, nodir) &&
                                                strstr(err.msg, "No such file or directory"),
          "%s %s", loom_status_name(st), err.msg);

    mkpath(path, sizeof path, "ckpt.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    st = loom_safetensors_write(path, &t, 1, NULL, 0, &err);
    CHECK("write old checkpoint", st == LOOM_OK, "%s", err.msg);

    /* The temp file cannot be created: the old checkpoint must survive intact. */
    mkdir(tmp, 0700);
    t.data = new_v;
    st = loom_safetensors_write(path, &t, 1, NULL, 0, &err);
    printf("# %-28s %s\n", "tmp is a directory", err.msg);
    CHECK("failed overwrite reports EIO with the path", st == LOOM_EIO && strstr(err.msg, path) &&
                                                            strstr(err.msg, "Is a directory"),
          "%s %s", loom_status_name(st), err.msg);
    loom_st_file *f = NULL;
    st = loom_safetensors_open(&f, path, &err);
    if (st == LOOM_OK) st = loom_st_read_f32(f, "v", got, 1, (size_t[]){2}, &err);
    CHECK("failed overwrite leaves the old file", st == LOOM_OK && got[0] == 1 && got[1] == 2,
          "%s", err.msg);
    loom_safetensors_close(f);
    CHECK("failed overwrite does not remove a tmp it did not create", is_dir(tmp), "gone");
    rmdir(tmp);

    st = loom_safetensors_write(path, &t, 1, NULL, 0, &err);
    f = NULL;
    if (st == LOOM_OK) st = loom_safetensors_open(&f, path, &err);
    if (st == LOOM_OK) st = loom_st_read_f32(f, "v", got, 1, (size_t[]){2}, &err);
    CHECK("overwrite replaces", st == LOOM_OK && got[0] == 3 && got[1] == 4 && !exists(tmp), "%s",
          err.msg);
    loom_safetensors_close(f);

    /* rename fails (the target is a directory): the temp file must be removed. */
    char dpath[128], dtmp[160];
    mkpath(dpath, sizeof dpath, "adir.safetensors");
    snprintf(dtmp, sizeof dtmp, "%s.tmp", dpath);
    mkdir(dpath, 0700);
    st = loom_safetensors_write(dpath, &t, 1, NULL, 0, &err);
    printf("# %-28s %s\n", "rename onto a directory", err.msg);
    CHECK("failed rename removes the temp file",
          st == LOOM_EIO && strstr(err.msg, dpath) && !exists(dtmp) && is_dir(dpath), "%s %s",
          loom_status_name(st), err.msg);
    rmdir(dpath);

    char missing[128];
    mkpath(missing, sizeof missing, "missing.safetensors");
    f = (loom_st_file *)&f;
    st = loom_safetensors_open(&f, missing, &err);
    CHECK("open missing file: bad input (EINVAL)", st == LOOM_EINVAL && !f && strstr(err.msg, missing), "%s %s",
          loom_status_name(st), err.msg);
    st = loom_safetensors_open(&f, dir, &err);
    CHECK("open a directory: EIO", st == LOOM_EIO && !f && strstr(err.msg, dir), "%s %s",
          loom_status_name(st), err.msg);
}

static void cleanup(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/loom_st_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char good[128];
    mkpath(good, sizeof good, "round.safetensors");
    test_round_trip(good);
    test_layout(good);
    test_write_args();
    test_corrupt();
    test_valid_odd();
    test_truncations(good);
    test_fuzz(good);
    test_atomic();
    cleanup();
    CHECK("temp directory removed", !exists(dir), "%s left behind", dir);
    CHECK_DONE();
}
