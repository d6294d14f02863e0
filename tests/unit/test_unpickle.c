/* The restricted unpickler on hand-built pickles: what torch.save emits is
 * accepted; code execution attempts, malformed and resource-hungry input are
 * refused with a message naming the problem. */
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "io/unpickle.h"
#include "testutil.h"

/* ---- a pickle builder ---- */

typedef struct {
    uint8_t *b;
    size_t n, cap;
} pk;

static void put(pk *p, const void *d, size_t n) {
    if (p->n + n > p->cap) {
        p->cap = (p->n + n) * 2 + 64;
        p->b = realloc(p->b, p->cap);
    }
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void op(pk *p, uint8_t c) { put(p, &c, 1); }
static void ops(pk *p, const char *s) { put(p, s, strlen(s)); }
static void u32(pk *p, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(p, b, 4);
}
static void str(pk *p, const char *s) { /* BINUNICODE */
    op(p, 'X');
    u32(p, (uint32_t)strlen(s));
    ops(p, s);
}
static void global(pk *p, const char *mod, const char *name) {
    op(p, 'c');
    ops(p, mod), op(p, '\n'), ops(p, name), op(p, '\n');
}
static pk start(void) {
    pk p = {0};
    op(&p, 0x80), op(&p, 2);
    return p;
}

/* Storages "0".."9" exist with 48 bytes; "big" has 1 GiB; others are missing. */
static xv_status resolver(void *ctx, const char *key, uint64_t *nbytes) {
    (void)ctx;
    if (!strcmp(key, "big")) return *nbytes = 1ull << 30, XV_OK;
    if (strlen(key) == 1 && key[0] >= '0' && key[0] <= '9') return *nbytes = 48, XV_OK;
    return xv_error(XV_ERR_MISSING, "no storage '%s'", key);
}

/* torch.save's form: _rebuild_tensor_v2(pid, offset, size, stride, False, OrderedDict()) */
static void tensor(pk *p, const char *storage_type, const char *key, int numel, int offset, int nd,
                   const int *size, const int *stride) {
    global(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '(');
    op(p, '(');
    str(p, "storage");
    global(p, "torch", storage_type);
    str(p, key);
    str(p, "cpu");
    op(p, 'J'), u32(p, (uint32_t)numel);
    op(p, 't');
    op(p, 'Q');
    op(p, 'J'), u32(p, (uint32_t)offset);
    op(p, '(');
    for (int i = 0; i < nd; i++) op(p, 'J'), u32(p, (uint32_t)size[i]);
    op(p, 't');
    op(p, '(');
    for (int i = 0; i < nd; i++) op(p, 'J'), u32(p, (uint32_t)stride[i]);
    op(p, 't');
    op(p, 0x89);
    global(p, "collections", "OrderedDict");
    op(p, ')'), op(p, 'R');
    op(p, 't');
    op(p, 'R');
}

/* {'w': tensor} */
static pk state_dict_with(const char *storage_type, const char *key, int numel, int offset, int nd, const int *size,
                          const int *stride) {
    pk p = start();
    op(&p, '}');
    op(&p, '(');
    str(&p, "w");
    tensor(&p, storage_type, key, numel, offset, nd, size, stride);
    op(&p, 'u');
    op(&p, '.');
    return p;
}

static xv_unpickled *parse(pk *p, const xv_unpickle_limits *lim, xv_status *st) {
    xv_unpickled *u = NULL;
    *st = xv_unpickle(p->b, p->n, "test.pkl", lim, resolver, NULL, &u);
    return u;
}

/* Parse must fail with `code` and a message containing `needle`. */
static void expect_fail(const char *what, pk *p, const xv_unpickle_limits *lim, xv_status code, const char *needle) {
    xv_status st;
    xv_unpickled *u = parse(p, lim, &st);
    CHECK(st == code && !u, "%s: status %d (want %d)", what, (int)st, (int)code);
    CHECK(strstr(xv_error_message(), needle) != NULL, "%s: message '%s' lacks '%s'", what, xv_error_message(), needle);
    xv_unpickled_free(u);
    free(p->b);
}

/* ---- accepted ---- */

static void test_state_dict(void) {
    int size[2] = {3, 4}, stride[2] = {1, 3};
    pk p = state_dict_with("FloatStorage", "0", 12, 0, 2, size, stride);
    xv_status st;
    xv_unpickled *u = parse(&p, NULL, &st);
    CHECK_OK(st);
    if (u) {
        const xv_pvalue *w = xv_pdict_get(xv_unpickled_root(u), "w");
        CHECK(w && w->kind == XV_PV_TENSOR, "w is a tensor");
        if (w && w->kind == XV_PV_TENSOR) {
            const xv_ptensor *t = w->u.tensor;
            CHECK(t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 4 && t->stride[0] == 1 && t->stride[1] == 3,
                  "shape/stride");
            CHECK(t->numel == 12 && t->offset == 0 && t->type->st_dtype == XV_ST_F32, "numel/dtype");
            CHECK(!strcmp(t->storage->key, "0") && t->storage->nbytes == 48, "storage");
        }
        CHECK(xv_unpickled_storage_count(u) == 1, "one storage");
    }
    xv_unpickled_free(u);
    free(p.b);
}

/* pickle.dumps({'a': [1, 2.5, None, True, -5, 2**40, -2**40, 300, 70000],
 *               'b': ('x', 'é', False), 'c': {}}, protocol=4):
 * FRAME, MEMOIZE, SHORT_BINUNICODE, LONG1, BININT2, TUPLE3 */
static void test_protocol4_plain_values(void) {
    static const uint8_t b[] = {
        0x80, 0x04, 0x95, 0x4d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7d, 0x94, 0x28, 0x8c, 0x01, 0x61, 0x94,
        0x5d, 0x94, 0x28, 0x4b, 0x01, 0x47, 0x40, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4e, 0x88, 0x4a, 0xfb,
        0xff, 0xff, 0xff, 0x8a, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x8a, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xff, 0x4d, 0x2c, 0x01, 0x4a, 0x70, 0x11, 0x01, 0x00, 0x65, 0x8c, 0x01, 0x62, 0x94, 0x8c, 0x01, 0x78, 0x94,
        0x8c, 0x02, 0xc3, 0xa9, 0x94, 0x89, 0x87, 0x94, 0x8c, 0x01, 0x63, 0x94, 0x7d, 0x94, 0x75, 0x2e};
    xv_unpickled *u = NULL;
    CHECK_OK(xv_unpickle(b, sizeof b, "p4", NULL, NULL, NULL, &u));
    if (!u) return;
    const xv_pvalue *root = xv_unpickled_root(u), *a = xv_pdict_get(root, "a"), *t = xv_pdict_get(root, "b");
    CHECK(a && a->kind == XV_PV_LIST && a->u.seq.n == 9, "list of 9");
    if (a && a->kind == XV_PV_LIST && a->u.seq.n == 9) {
        xv_pvalue **e = a->u.seq.items;
        CHECK(e[0]->kind == XV_PV_INT && e[0]->u.i == 1, "1");
        CHECK(e[1]->kind == XV_PV_FLOAT && e[1]->u.f == 2.5, "2.5");
        CHECK(e[2]->kind == XV_PV_NONE && e[3]->kind == XV_PV_BOOL && e[3]->u.b, "None, True");
        CHECK(e[4]->u.i == -5 && e[5]->u.i == (1ll << 40) && e[6]->u.i == -(1ll << 40), "-5, 2^40, -2^40");
        CHECK(e[7]->u.i == 300 && e[8]->u.i == 70000, "300, 70000");
    }
    CHECK(t && t->kind == XV_PV_TUPLE && t->u.seq.n == 3, "tuple of 3");
    if (t && t->kind == XV_PV_TUPLE && t->u.seq.n == 3)
        CHECK(!strcmp(t->u.seq.items[1]->u.str.s, "\xc3\xa9") && !t->u.seq.items[2]->u.b, "'é', False");
    const xv_pvalue *c = xv_pdict_get(root, "c");
    CHECK(c && c->kind == XV_PV_DICT && c->u.dict.n == 0, "empty dict");
    xv_unpickled_free(u);
}

/* ---- code execution attempts ---- */

static void test_hostile_globals(void) {
    pk p = start();
    global(&p, "os", "system");
    str(&p, "touch /tmp/xvlm_pwned");
    op(&p, 0x85), op(&p, 'R'), op(&p, '.');
    expect_fail("os.system", &p, NULL, XV_ERR_FORMAT, "global 'os.system' is not allowed");

    p = start(); /* STACK_GLOBAL form, as protocol 4 writes it */
    str(&p, "builtins"), str(&p, "eval"), op(&p, 0x93);
    str(&p, "1+1"), op(&p, 0x85), op(&p, 'R'), op(&p, '.');
    expect_fail("builtins.eval", &p, NULL, XV_ERR_FORMAT, "global 'builtins.eval' is not allowed");

    p = start();
    global(&p, "subprocess", "Popen");
    expect_fail("subprocess.Popen", &p, NULL, XV_ERR_FORMAT, "global 'subprocess.Popen' is not allowed");

    p = start(); /* protocol 2 writes Python 2 names; the message gives both */
    global(&p, "__builtin__", "eval");
    expect_fail("__builtin__.eval", &p, NULL, XV_ERR_FORMAT, "'__builtin__.eval' (Python 3: builtins.eval)");

    p = start(); /* an allowlisted module with another name */
    global(&p, "torch._utils", "_load_from_bytes");
    expect_fail("torch._utils._load_from_bytes", &p, NULL, XV_ERR_FORMAT, "'torch._utils._load_from_bytes'");

    p = start(); /* REDUCE must apply an allowlisted global */
    op(&p, ']'), op(&p, ')'), op(&p, 'R'), op(&p, '.');
    expect_fail("REDUCE list", &p, NULL, XV_ERR_FORMAT, "REDUCE applies a list");

    p = start();
    global(&p, "torch", "FloatStorage");
    op(&p, ')'), op(&p, 'R'), op(&p, '.');
    expect_fail("call storage", &p, NULL, XV_ERR_FORMAT, "cannot be called");

    p = start();
    global(&p, "collections", "OrderedDict");
    op(&p, ']'), op(&p, 0x85), op(&p, 'R'), op(&p, '.');
    expect_fail("OrderedDict(args)", &p, NULL, XV_ERR_FORMAT, "OrderedDict() with arguments");

    p = start(); /* a module line without its newline */
    op(&p, 'c');
    for (int i = 0; i < 300; i++) op(&p, 'a');
    expect_fail("long GLOBAL", &p, NULL, XV_ERR_FORMAT, "no newline");

    p = start(); /* non-printable bytes are escaped in the message */
    global(&p, "os\x01", "sys");
    expect_fail("escaped", &p, NULL, XV_ERR_FORMAT, "'os\\x01.sys'");
}

/* ---- structure and resource limits ---- */

static void test_nesting_and_limits(void) {
    pk p = start(); /* 100000 nested lists */
    for (int i = 0; i < 100000; i++) op(&p, ']');
    for (int i = 0; i < 99999; i++) op(&p, 'a');
    op(&p, '.');
    expect_fail("100000 nested lists", &p, NULL, XV_ERR_FORMAT, "nested deeper than 64 levels");

    p = start(); /* 100000 nested tuples via MARK */
    for (int i = 0; i < 100000; i++) op(&p, '(');
    expect_fail("100000 MARKs", &p, NULL, XV_ERR_FORMAT, "more than 1024 nested MARKs");

    p = start(); /* a list appended to itself */
    op(&p, ']'), op(&p, 'q'), op(&p, 0), op(&p, 'h'), op(&p, 0), op(&p, 'a'), op(&p, '.');
    expect_fail("self cycle", &p, NULL, XV_ERR_FORMAT, "inserted into itself");

    p = start(); /* a = [], b = [a], then a.append(b): a cycle through the memo */
    op(&p, ']'), op(&p, 'q'), op(&p, 0);
    op(&p, ']'), op(&p, 'q'), op(&p, 1);
    op(&p, 'h'), op(&p, 0), op(&p, 'a');
    op(&p, 'h'), op(&p, 0), op(&p, 'h'), op(&p, 1), op(&p, 'a'), op(&p, '.');
    expect_fail("two-list cycle", &p, NULL, XV_ERR_FORMAT, "modified after it was stored");

    xv_unpickle_limits lim = xv_unpickle_default_limits();
    lim.max_stack = 1000;
    p = start();
    for (int i = 0; i < 1001; i++) op(&p, 'N');
    expect_fail("stack", &p, &lim, XV_ERR_FORMAT, "stack deeper than 1000");

    lim = xv_unpickle_default_limits();
    lim.max_values = 500;
    p = start();
    op(&p, ']'), op(&p, '(');
    for (int i = 0; i < 600; i++) op(&p, 'N');
    op(&p, 'e'), op(&p, '.');
    expect_fail("values", &p, &lim, XV_ERR_NOMEM, "more than 500 values");

    p = start();
    op(&p, 'N'), op(&p, 'r'), u32(&p, 0xffffffffu);
    expect_fail("memo index", &p, NULL, XV_ERR_FORMAT, "memo index 4294967295 exceeds");

    p = start();
    op(&p, 'h'), op(&p, 5);
    expect_fail("memo get", &p, NULL, XV_ERR_FORMAT, "memo index 5 was never set");

    p = start(); /* a 4 GiB string is refused before anything is allocated */
    op(&p, 'X'), u32(&p, 0xffffffffu);
    expect_fail("huge string", &p, NULL, XV_ERR_FORMAT, "exceeds the 1048576-byte limit");
}

static void test_malformed(void) {
    pk p = start();
    op(&p, 'X'), u32(&p, 10), ops(&p, "abc");
    expect_fail("short string", &p, NULL, XV_ERR_FORMAT, "truncated");

    p = start();
    op(&p, 'X'), u32(&p, 2), op(&p, 0xc3), op(&p, 0x28), op(&p, '.');
    expect_fail("bad utf-8", &p, NULL, XV_ERR_FORMAT, "UTF-8");

    p = start();
    op(&p, 'X'), u32(&p, 3), op(&p, 'a'), op(&p, 0), op(&p, 'b'), op(&p, '.');
    expect_fail("NUL", &p, NULL, XV_ERR_FORMAT, "NUL");

    p = start();
    op(&p, 0x8a), op(&p, 9);
    for (int i = 0; i < 9; i++) op(&p, 1);
    expect_fail("LONG1 9", &p, NULL, XV_ERR_UNSUPPORTED, "does not fit in 64 bits");

    p = start();
    ops(&p, "i");
    expect_fail("INST", &p, NULL, XV_ERR_UNSUPPORTED, "opcode 0x69 ('i')");

    p = start();
    op(&p, 'N');
    expect_fail("no STOP", &p, NULL, XV_ERR_FORMAT, "without a STOP");

    p = (pk){0};
    op(&p, 0x80), op(&p, 6);
    expect_fail("protocol 6", &p, NULL, XV_ERR_UNSUPPORTED, "pickle protocol 6");

    p = start();
    op(&p, 'R');
    expect_fail("underflow", &p, NULL, XV_ERR_FORMAT, "stack underflow");

    p = start(); /* values below an open MARK are out of reach */
    op(&p, ']'), op(&p, '('), op(&p, 'N'), op(&p, 'a');
    expect_fail("append across MARK", &p, NULL, XV_ERR_FORMAT, "stack underflow");

    p = start();
    op(&p, '}'), op(&p, '('), op(&p, 'N'), op(&p, 'u');
    expect_fail("odd SETITEMS", &p, NULL, XV_ERR_FORMAT, "odd number");

    p = start();
    op(&p, '}'), op(&p, 'N'), op(&p, 'a');
    expect_fail("APPEND to dict", &p, NULL, XV_ERR_FORMAT, "APPEND to a dict");

    p = start();
    op(&p, ']'), op(&p, '}'), op(&p, 'b');
    expect_fail("BUILD on list", &p, NULL, XV_ERR_FORMAT, "BUILD on a list");

    p = start(); /* persistent id that is not a storage tuple */
    op(&p, 'N'), op(&p, 'Q');
    expect_fail("pid", &p, NULL, XV_ERR_FORMAT, "persistent id is a None");
}

/* ---- tensors against their storage ---- */

static void test_tensor_bounds(void) {
    int s34[2] = {3, 4}, c34[2] = {4, 1}, s44[2] = {4, 4}, big[2] = {2000000000, 2000000000};
    pk p;

    p = state_dict_with("FloatStorage", "7x", 12, 0, 2, s34, c34); /* key not in the archive */
    expect_fail("missing key", &p, NULL, XV_ERR_MISSING, "no storage '7x'");

    p = state_dict_with("FloatStorage", "../../etc/passwd", 12, 0, 2, s34, c34);
    expect_fail("path key", &p, NULL, XV_ERR_FORMAT, "storage key '../../etc/passwd'");

    p = state_dict_with("FloatStorage", "0", 100, 0, 2, s34, c34);
    expect_fail("numel", &p, NULL, XV_ERR_FORMAT, "declared as 100 x float32");

    p = state_dict_with("FloatStorage", "0", 12, 0, 2, s44, c34);
    expect_fail("size past", &p, NULL, XV_ERR_FORMAT, "reaches past the end of storage '0' (12 elements)");

    p = state_dict_with("FloatStorage", "0", 12, 1, 2, s34, c34);
    expect_fail("offset past", &p, NULL, XV_ERR_FORMAT, "offset 1) reaches past the end");

    int stride_big[2] = {100, 1};
    p = state_dict_with("FloatStorage", "0", 12, 0, 2, s34, stride_big);
    expect_fail("stride past", &p, NULL, XV_ERR_FORMAT, "stride [100,1]");

    /* 20000 x 20000 floats do not fit 1 GiB; 2e9 x 2e9 elements overflow the count. */
    p = state_dict_with("FloatStorage", "big", 1 << 28, 0, 2, (int[]){20000, 20000}, (int[]){20000, 1});
    expect_fail("extent", &p, NULL, XV_ERR_FORMAT, "reaches past the end of storage 'big'");
    p = state_dict_with("FloatStorage", "big", 1 << 28, 0, 2, big, (int[]){1, 1});
    expect_fail("count overflow", &p, NULL, XV_ERR_FORMAT, "element count overflows");

    int s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    p = state_dict_with("FloatStorage", "0", 12, 0, 9, s9, s9);
    expect_fail("9 dims", &p, NULL, XV_ERR_UNSUPPORTED, "at most 8");

    int neg[2] = {-1, 4};
    p = state_dict_with("FloatStorage", "0", 12, 0, 2, neg, c34);
    expect_fail("negative size", &p, NULL, XV_ERR_FORMAT, "size[0] is not a non-negative int");

    p = state_dict_with("DoubleStorage", "0", 6, 0, 2, (int[]){2, 3}, (int[]){3, 1});
    expect_fail("float64", &p, NULL, XV_ERR_UNSUPPORTED, "dtype float64 (torch.DoubleStorage)");

    /* A storage shared by two tensors at different offsets is fine. */
    p = start();
    op(&p, '}'), op(&p, '(');
    str(&p, "a"), tensor(&p, "HalfStorage", "1", 24, 0, 1, (int[]){10}, (int[]){1});
    str(&p, "b"), tensor(&p, "HalfStorage", "1", 24, 10, 2, (int[]){2, 7}, (int[]){7, 1});
    op(&p, 'u'), op(&p, '.');
    xv_status st;
    xv_unpickled *u = parse(&p, NULL, &st);
    CHECK_OK(st);
    CHECK(u && xv_unpickled_storage_count(u) == 1, "one shared storage");
    xv_unpickled_free(u);
    free(p.b);

    /* 24 halves: offset 10 + 2x7 = 24 fits exactly, one more does not. */
    p = start();
    op(&p, '}'), op(&p, '(');
    str(&p, "b"), tensor(&p, "HalfStorage", "1", 24, 11, 2, (int[]){2, 7}, (int[]){7, 1});
    op(&p, 'u'), op(&p, '.');
    expect_fail("one past", &p, NULL, XV_ERR_FORMAT, "reaches past the end");
}

/* The fuzz seeds must parse completely under the fuzz target's storage rule
 * (key k in 0..9 has 64·(k+1) bytes), or the fuzzer starts from rejections. */
static xv_status seed_resolver(void *ctx, const char *key, uint64_t *nbytes) {
    (void)ctx;
    if (key[0] >= '0' && key[0] <= '9' && key[1] == '\0') return *nbytes = 64u * (uint64_t)(key[0] - '0' + 1), XV_OK;
    return XV_ERR_MISSING;
}

static void test_fuzz_seeds(void) {
    const char *src = getenv("XV_SOURCE_DIR");
    static const char *seeds[] = {"state_dict_p2.pkl", "bare_p2.pkl", "state_dict_p4.pkl", "plain_p4.pkl"};
    for (size_t i = 0; src && i < sizeof seeds / sizeof *seeds; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/fuzz/seeds/unpickler/%s", src, seeds[i]);
        uint8_t *buf = NULL;
        size_t n = 0;
        CHECK_OK(xv_fs_read_file(path, 1 << 16, &buf, &n));
        xv_unpickled *u = NULL;
        CHECK(n > 0, "%s readable", path);
        CHECK_OK(xv_unpickle(buf, n, seeds[i], NULL, seed_resolver, NULL, &u));
        xv_unpickled_free(u);
        free(buf);
    }
}

int main(void) {
    test_fuzz_seeds();
    test_state_dict();
    test_protocol4_plain_values();
    test_hostile_globals();
    test_nesting_and_limits();
    test_malformed();
    test_tensor_bounds();
    return xv_test_finish("test_unpickle");
}
