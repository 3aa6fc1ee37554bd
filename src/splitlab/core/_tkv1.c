/*
 * Optional accelerator for assignment algorithms tk-v1 and sl-v2 (see assignment.py for the
 * contract).
 *
 * The pure-Python implementation in assignment.py is the reference; this module computes the
 * same thing in one call per unit (or per batch) so that a single assignment costs less than a
 * Python-level SHA-256 call. The tests run every vector through both. SHA-256 is FIPS 180-4;
 * its constants below are the first 32 bits of the fractional parts of the cube roots (K) and
 * square roots (H0) of the first primes, computed for this file with integer arithmetic.
 *
 * SHA-256 itself comes from the process's OpenSSL libcrypto when it can be found (it uses the
 * CPU's SHA instructions where present); otherwise from the portable implementation below.
 * BACKEND says which ("openssl" or "builtin"); sha256_builtin(data) exposes the portable one so
 * the tests can check it against hashlib whichever backend is in use.
 *
 * Functions:
 *   assign_one(identifier, salt, slot_groups, threshold, result_type) -> result_type instance
 *       (subject_id, in_sample, group); identifier is an int or a str; slot_groups[k] is the
 *       group owning slot k (tk-v1: the groups themselves).
 *   assign_batch(identifiers, salt, slot_codes, threshold) -> (joined_subject_ids, group_codes)
 *       slot_codes[k] (bytes) is the index of the group owning slot k; group_codes[i] is the
 *       group index of unit i, or 255 when it is out of sample.
 * With S slots (at most 10000) and threshold = rate * 2**24, a unit is in sample when
 * (value * S) mod 2**24 < threshold, value being the first 24 bits of the digest, and its slot
 * is (value * S) >> 24.
 *   resolve_plan, Plan, Resolver (_tkv1_plan.c): the whole sl-v2 evaluation of one unit, gates
 *       included; Condition (_tkv1_condition.c): targeting conditions compiled for C.
 */
#include "_tkv1.h"

#include <dlfcn.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98U, 0x71374491U, 0xb5c0fbcfU, 0xe9b5dba5U, 0x3956c25bU, 0x59f111f1U, 0x923f82a4U,
    0xab1c5ed5U, 0xd807aa98U, 0x12835b01U, 0x243185beU, 0x550c7dc3U, 0x72be5d74U, 0x80deb1feU,
    0x9bdc06a7U, 0xc19bf174U, 0xe49b69c1U, 0xefbe4786U, 0x0fc19dc6U, 0x240ca1ccU, 0x2de92c6fU,
    0x4a7484aaU, 0x5cb0a9dcU, 0x76f988daU, 0x983e5152U, 0xa831c66dU, 0xb00327c8U, 0xbf597fc7U,
    0xc6e00bf3U, 0xd5a79147U, 0x06ca6351U, 0x14292967U, 0x27b70a85U, 0x2e1b2138U, 0x4d2c6dfcU,
    0x53380d13U, 0x650a7354U, 0x766a0abbU, 0x81c2c92eU, 0x92722c85U, 0xa2bfe8a1U, 0xa81a664bU,
    0xc24b8b70U, 0xc76c51a3U, 0xd192e819U, 0xd6990624U, 0xf40e3585U, 0x106aa070U, 0x19a4c116U,
    0x1e376c08U, 0x2748774cU, 0x34b0bcb5U, 0x391c0cb3U, 0x4ed8aa4aU, 0x5b9cca4fU, 0x682e6ff3U,
    0x748f82eeU, 0x78a5636fU, 0x84c87814U, 0x8cc70208U, 0x90befffaU, 0xa4506cebU, 0xbef9a3f7U,
    0xc67178f2U};

static const uint32_t H0[8] = {0x6a09e667U, 0xbb67ae85U, 0x3c6ef372U, 0xa54ff53aU,
                               0x510e527fU, 0x9b05688cU, 0x1f83d9abU, 0x5be0cd19U};

typedef struct {
    uint32_t state[8];
    uint8_t block[64];
    size_t used;     /* bytes in block */
    uint64_t total;  /* bytes hashed so far */
} Sha256;

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_compress(uint32_t state[8], const uint8_t block[64]) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
               (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] +
                      w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
    state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

static void sha256_init(Sha256 *ctx) {
    memcpy(ctx->state, H0, sizeof H0);
    ctx->used = 0;
    ctx->total = 0;
}

static void sha256_update(Sha256 *ctx, const uint8_t *data, size_t size) {
    ctx->total += size;
    while (size > 0) {
        size_t take = 64 - ctx->used < size ? 64 - ctx->used : size;
        memcpy(ctx->block + ctx->used, data, take);
        ctx->used += take;
        data += take;
        size -= take;
        if (ctx->used == 64) {
            sha256_compress(ctx->state, ctx->block);
            ctx->used = 0;
        }
    }
}

static void sha256_final(Sha256 *ctx, uint8_t out[32]) {
    uint64_t bits = ctx->total * 8;
    ctx->block[ctx->used++] = 0x80;
    if (ctx->used > 56) {
        memset(ctx->block + ctx->used, 0, 64 - ctx->used);
        sha256_compress(ctx->state, ctx->block);
        ctx->used = 0;
    }
    memset(ctx->block + ctx->used, 0, 56 - ctx->used);
    for (int i = 0; i < 8; i++) ctx->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_compress(ctx->state, ctx->block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(ctx->state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(ctx->state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(ctx->state[i] >> 8);
        out[4 * i + 3] = (uint8_t)ctx->state[i];
    }
}

static void builtin_hash(const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size,
                         uint8_t out[32]) {
    Sha256 ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, a, a_size);
    sha256_update(&ctx, b, b_size);
    sha256_final(&ctx, out);
}

/* OpenSSL's low-level SHA256_Init/Update/Final, looked up at run time (no headers or link-time
 * dependency); the context is opaque to us, 112 bytes in OpenSSL 1.1 and 3.x. */
typedef int (*ossl_init_fn)(void *);
typedef int (*ossl_update_fn)(void *, const void *, size_t);
typedef int (*ossl_final_fn)(unsigned char *, void *);
static ossl_init_fn ossl_init;
static ossl_update_fn ossl_update;
static ossl_final_fn ossl_final;

static void load_openssl(void) {
    static const char *names[] = {"libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so", NULL};
    for (int i = 0; names[i] != NULL; i++) {
        void *library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (library == NULL) continue;
        ossl_init = (ossl_init_fn)dlsym(library, "SHA256_Init");
        ossl_update = (ossl_update_fn)dlsym(library, "SHA256_Update");
        ossl_final = (ossl_final_fn)dlsym(library, "SHA256_Final");
        if (ossl_init && ossl_update && ossl_final) return;
        ossl_init = NULL;
        dlclose(library);
    }
}

void tkv1_hash_two(const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size,
                     uint8_t out[32]) {
    if (ossl_init != NULL) {
        uint64_t ctx[32]; /* generously larger than SHA256_CTX */
        if (ossl_init(ctx) && ossl_update(ctx, a, a_size) && ossl_update(ctx, b, b_size) &&
            ossl_final(out, ctx)) {
            return;
        }
    }
    builtin_hash(a, a_size, b, b_size, out);
}

/* The UTF-8 text of str(identifier) for a str, or of the decimal digits of an int. On success
 * *text points into *owner (or the identifier itself) and *owner must be released. */
int tkv1_identifier_text(PyObject *identifier, const char **text, Py_ssize_t *size,
                           PyObject **owner) {
    *owner = NULL;
    if (PyUnicode_CheckExact(identifier) && PyUnicode_IS_COMPACT_ASCII(identifier)) {
        *text = (const char *)PyUnicode_1BYTE_DATA(identifier); /* ASCII is its own UTF-8 */
        *size = PyUnicode_GET_LENGTH(identifier);
        return 0;
    }
    if (PyUnicode_Check(identifier)) {
        *text = PyUnicode_AsUTF8AndSize(identifier, size);
        return *text == NULL ? -1 : 0;
    }
    if (PyLong_Check(identifier) && !PyBool_Check(identifier)) {
        *owner = PyLong_Type.tp_repr(identifier);
        if (*owner == NULL) return -1;
        *text = PyUnicode_AsUTF8AndSize(*owner, size);
        return *text == NULL ? -1 : 0;
    }
    PyErr_Format(PyExc_TypeError, "identifier must be an int or a str, not %s",
                 Py_TYPE(identifier)->tp_name);
    return -1;
}

static char pairs[512]; /* the two hex digits of each byte value (filled at module init) */

static void fill_pairs(void) {
    static const char digits[] = "0123456789abcdef";
    for (int b = 0; b < 256; b++) {
        pairs[2 * b] = digits[b >> 4];
        pairs[2 * b + 1] = digits[b & 15];
    }
}

/* Hashes text + salt (no Python calls: safe without the GIL); writes the 64 hex digits to hex
 * and returns the digest's first 24 bits. */
long tkv1_hex_digest(const uint8_t *text, size_t size, const uint8_t *salt, size_t salt_size,
                       Py_UCS1 *hex) {
    uint8_t out[32];
    tkv1_hash_two(text, size, salt, salt_size, out);
#if defined(__SSE2__)
    /* 16 bytes at a time: high and low nibbles interleaved, then '0' + n, + 39 above 9 */
    const __m128i mask = _mm_set1_epi8(0x0f), nine = _mm_set1_epi8(9);
    const __m128i zero = _mm_set1_epi8('0'), letters = _mm_set1_epi8('a' - '0' - 10);
    for (int j = 0; j < 2; j++) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)(out + 16 * j));
        __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
        __m128i low = _mm_and_si128(bytes, mask);
        __m128i halves[2] = {_mm_unpacklo_epi8(high, low), _mm_unpackhi_epi8(high, low)};
        for (int k = 0; k < 2; k++) {
            __m128i n = halves[k];
            __m128i digits = _mm_add_epi8(_mm_add_epi8(n, zero),
                                          _mm_and_si128(_mm_cmpgt_epi8(n, nine), letters));
            _mm_storeu_si128((__m128i *)(hex + 32 * j + 16 * k), digits);
        }
    }
#else
    for (int i = 0; i < 32; i++) memcpy(hex + 2 * i, pairs + 2 * out[i], 2);
#endif
    return (long)out[0] << 16 | (long)out[1] << 8 | (long)out[2];
}

/* hex_digest for a Python identifier; -1 with an exception set when it is not an int or str. */
static long digest_unit(PyObject *identifier, const uint8_t *salt, Py_ssize_t salt_size,
                        Py_UCS1 *hex) {
    const char *text;
    Py_ssize_t size;
    PyObject *owner;
    if (tkv1_identifier_text(identifier, &text, &size, &owner) < 0) return -1;
    long value = tkv1_hex_digest((const uint8_t *)text, (size_t)size, salt, (size_t)salt_size, hex);
    Py_XDECREF(owner);
    return value;
}

/* The slot of a 24-bit value among count slots, or -1 when the unit is out of sample. */
long tkv1_place(long value, long count, double threshold) {
    if (count <= 0) return -1; /* no slots: nobody is in sample */
    int64_t scaled = (int64_t)value * count;
    return (double)(scaled & 0xFFFFFF) < threshold ? (long)(scaled >> 24) : -1;
}

static PyObject *assign_one(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 5 || !PyBytes_Check(args[1]) || !PyTuple_Check(args[2]) ||
        !PyFloat_Check(args[3]) || !PyType_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "assign_one(identifier, salt: bytes, slot_groups: tuple, "
                        "threshold: float, result_type)");
        return NULL;
    }
    PyObject *groups = args[2];
    if (PyTuple_GET_SIZE(groups) > MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "at most 10000 slots");
        return NULL;
    }
    PyObject *subject = PyUnicode_New(64, 127);
    if (subject == NULL) return NULL;
    long value = digest_unit(args[0], (const uint8_t *)PyBytes_AS_STRING(args[1]),
                             PyBytes_GET_SIZE(args[1]), PyUnicode_1BYTE_DATA(subject));
    if (value < 0) {
        Py_DECREF(subject);
        return NULL;
    }
    long index = tkv1_place(value, PyTuple_GET_SIZE(groups), PyFloat_AS_DOUBLE(args[3]));
    PyTypeObject *type = (PyTypeObject *)args[4];
    PyObject *result = type->tp_alloc(type, 3);
    if (result == NULL) {
        Py_DECREF(subject);
        return NULL;
    }
    PyObject *in_sample = index >= 0 ? Py_True : Py_False;
    PyObject *group = index >= 0 ? PyTuple_GET_ITEM(groups, index) : Py_None;
    Py_INCREF(in_sample);
    Py_INCREF(group);
    PyTuple_SET_ITEM(result, 0, subject);
    PyTuple_SET_ITEM(result, 1, in_sample);
    PyTuple_SET_ITEM(result, 2, group);
    return result;
}

/* Batches hash with the GIL released, so threads give real parallelism: the identifiers'
 * UTF-8 texts are gathered first (holding references), then hashed without touching Python. */
static PyObject *assign_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 4 || !PyBytes_Check(args[1]) || !PyBytes_Check(args[2]) ||
        !PyFloat_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "assign_batch(identifiers, salt: bytes, slot_codes: bytes, "
                        "threshold: float)");
        return NULL;
    }
    long count = (long)PyBytes_GET_SIZE(args[2]);
    const uint8_t *slot_codes = (const uint8_t *)PyBytes_AS_STRING(args[2]);
    double threshold = PyFloat_AS_DOUBLE(args[3]);
    if (count > MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "at most 10000 slots");
        return NULL;
    }
    for (long k = 0; k < count; k++) {
        if (slot_codes[k] == 255) {
            PyErr_SetString(PyExc_ValueError, "slot codes must be group indexes below 255");
            return NULL;
        }
    }
    PyObject *units = PySequence_Fast(args[0], "identifiers must be a sequence");
    if (units == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(units);
    Py_ssize_t gathered = 0;
    PyObject *joined = PyUnicode_New(64 * n, 127);
    PyObject *codes = PyBytes_FromStringAndSize(NULL, n);
    const char **texts = PyMem_Calloc((size_t)n + 1, sizeof *texts);
    Py_ssize_t *sizes = PyMem_Calloc((size_t)n + 1, sizeof *sizes);
    PyObject **holders = PyMem_Calloc((size_t)n + 1, sizeof *holders);
    if (joined == NULL || codes == NULL || texts == NULL || sizes == NULL || holders == NULL) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    PyObject **items = PySequence_Fast_ITEMS(units);
    for (; gathered < n; gathered++) {
        PyObject *owner;
        if (tkv1_identifier_text(items[gathered], &texts[gathered], &sizes[gathered], &owner) < 0) {
            goto done;
        }
        holders[gathered] = owner != NULL ? owner : Py_NewRef(items[gathered]);
    }
    Py_UCS1 *hex = PyUnicode_1BYTE_DATA(joined);
    uint8_t *code = (uint8_t *)PyBytes_AS_STRING(codes);
    const uint8_t *salt = (const uint8_t *)PyBytes_AS_STRING(args[1]);
    size_t salt_size = (size_t)PyBytes_GET_SIZE(args[1]);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        long value = tkv1_hex_digest((const uint8_t *)texts[i], (size_t)sizes[i], salt, salt_size,
                                hex + 64 * i);
        long index = tkv1_place(value, count, threshold);
        code[i] = index < 0 ? 255 : slot_codes[index];
    }
    Py_END_ALLOW_THREADS
done:
    for (Py_ssize_t i = 0; i < gathered; i++) Py_DECREF(holders[i]);
    PyMem_Free(texts);
    PyMem_Free(sizes);
    PyMem_Free(holders);
    Py_DECREF(units);
    if (PyErr_Occurred()) {
        Py_XDECREF(joined);
        Py_XDECREF(codes);
        return NULL;
    }
    return Py_BuildValue("(NN)", joined, codes);
}

static PyObject *sha256_builtin(PyObject *module, PyObject *data) {
    (void)module;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "sha256_builtin(data: bytes)");
        return NULL;
    }
    uint8_t out[32];
    builtin_hash((const uint8_t *)PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data),
                 NULL, 0, out);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static PyMethodDef methods[] = {
    {"assign_one", (PyCFunction)(void (*)(void))assign_one, METH_FASTCALL,
     "assign_one(identifier, salt, slot_groups, threshold, result_type): one assignment."},
    {"assign_batch", (PyCFunction)(void (*)(void))assign_batch, METH_FASTCALL,
     "assign_batch(identifiers, salt, slot_codes, threshold) -> (joined_subject_ids, "
     "group_codes)."},
    {"resolve_plan", (PyCFunction)(void (*)(void))tkv1_resolve_plan, METH_FASTCALL,
     "resolve_plan(plan, identifier, experiment, attributes) -> the Resolution."},
    {"sha256_builtin", (PyCFunction)sha256_builtin, METH_O,
     "sha256_builtin(data) -> digest bytes, from the portable implementation."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_tkv1",
                                        "Accelerator for assignment tk-v1 and sl-v2.", -1, methods};

PyMODINIT_FUNC PyInit__tkv1(void) {
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    load_openssl();
    fill_pairs();
    const char *backend = ossl_init != NULL ? "openssl" : "builtin";
    PyTypeObject *types[] = {&Tkv1_ConditionType, &Tkv1_PlanType, &Tkv1_ResolverType};
    const char *names[] = {"Condition", "Plan", "Resolver"};
    for (int i = 0; i < 3; i++) {
        if (PyType_Ready(types[i]) < 0 || PyModule_AddObjectRef(module, names[i],
                                                                (PyObject *)types[i]) < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    if (PyModule_AddStringConstant(module, "BACKEND", backend) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
