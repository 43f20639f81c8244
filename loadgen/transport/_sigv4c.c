/* SHA-256 and HMAC-SHA256 for the SigV4 signer's per-request path (loadgen.transport.sigv4).
 *
 * Why C: hashlib pays an OpenSSL EVP context set-up and dispatch on every sha256(), copy()
 * and digest(); per signature that cost more than the hashing itself. A SigV4 signature is
 * one SHA-256 of the canonical request plus one HMAC whose key is fixed for a day, so the
 * caller caches the HMAC midstates (hmac_key) and sign() compresses only the message blocks.
 * No OpenSSL headers: the build must work where libssl-dev is missing.
 *
 * build() goes one step further for the fast transport: with everything that is constant for
 * a second (dates, key, the canonical request and the request bytes around the one per-request
 * header value) planned in Python, it trims the value, hashes, signs and lays out the request
 * bytes in one call, so the per-request Python glue is a few attribute reads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_SHANI 1
#endif

typedef void (*compress_fn)(uint32_t state[8], const uint8_t *data, size_t blocks);

/* Chosen once at module exec; never changes afterwards. */
static compress_fn compress;
static const char *implementation_name = "portable";

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
static const uint32_t IV[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t state[8], const uint8_t *data, size_t blocks)
{
    for (; blocks; blocks--, data += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = load_be32(data + 4 * i);
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        state[0] += a, state[1] += b, state[2] += c, state[3] += d;
        state[4] += e, state[5] += f, state[6] += g, state[7] += h;
    }
}

#ifdef HAVE_SHANI
/* After noloader/SHA-Intrinsics (public domain), rolled into a loop over the 16 four-round
 * groups. The SHA-NI instructions want the state as ABEF/CDGH, hence the shuffles. */
__attribute__((target("sha,sse4.1,ssse3")))
static void compress_shani(uint32_t state[8], const uint8_t *data, size_t blocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1); /* CDAB */
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);  /* EFGH */
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);                                             /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);                                                  /* CDGH */

    for (; blocks; blocks--, data += 64) {
        __m128i abef = s0, cdgh = s1, w[4];
        for (int i = 0; i < 4; i++)
            w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), bswap);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            __m128i msg = _mm_add_epi32(w[i & 3], _mm_loadu_si128((const __m128i *)&K[4 * i]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
            s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(msg, 0x0E));
            if (i < 12) /* words 4i+16..4i+19 replace 4i..4i+3, which this group just used */
                w[i & 3] = _mm_sha256msg2_epu32(
                    _mm_add_epi32(_mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]),
                                  _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4)),
                    w[(i + 3) & 3]);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
    }

    tmp = _mm_shuffle_epi32(s0, 0x1B);                                      /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);                                       /* DCHG */
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(tmp, s1, 0xF0)); /* DCBA */
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(s1, tmp, 8));    /* HGFE */
}
#endif

/* -- streaming SHA-256 over the chosen compression function ------------------------------ */

typedef struct {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far, including those of a midstate's key block */
    size_t used;    /* bytes waiting in buf */
    uint8_t buf[64];
} sha_ctx;

static void ctx_init(sha_ctx *c, const uint32_t h[8], uint64_t total)
{
    memcpy(c->h, h, sizeof c->h);
    c->total = total;
    c->used = 0;
}

static void ctx_update(sha_ctx *c, const uint8_t *p, size_t n)
{
    c->total += n;
    if (c->used) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->buf + c->used, p, take);
        c->used += take, p += take, n -= take;
        if (c->used < 64)
            return;
        compress(c->h, c->buf, 1);
        c->used = 0;
    }
    if (n >= 64) { /* whole blocks straight from the caller's buffer: no copy */
        compress(c->h, p, n / 64);
        p += n & ~(size_t)63;
        n &= 63;
    }
    memcpy(c->buf, p, n);
    c->used = n;
}

static void ctx_final(sha_ctx *c, uint8_t out[32])
{
    uint64_t bits = c->total * 8;
    c->buf[c->used++] = 0x80;
    if (c->used > 56) {
        memset(c->buf + c->used, 0, 64 - c->used);
        compress(c->h, c->buf, 1);
        c->used = 0;
    }
    memset(c->buf + c->used, 0, 56 - c->used);
    store_be32(c->buf + 56, (uint32_t)(bits >> 32));
    store_be32(c->buf + 60, (uint32_t)bits);
    compress(c->h, c->buf, 1);
    for (int i = 0; i < 8; i++)
        store_be32(out + 4 * i, c->h[i]);
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    sha_ctx c;
    ctx_init(&c, IV, 0);
    ctx_update(&c, p, n);
    ctx_final(&c, out);
}

static void to_hex(const uint8_t digest[32], char out[64])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[digest[i] >> 4];
        out[2 * i + 1] = digits[digest[i] & 15];
    }
}

static PyObject *hex_str(const uint8_t digest[32])
{
    PyObject *s = PyUnicode_New(64, 127);
    if (s == NULL)
        return NULL;
    to_hex(digest, (char *)PyUnicode_1BYTE_DATA(s));
    return s;
}

/* str as its UTF-8 (for ASCII, the string's own buffer), bytes as they are. */
static int as_bytes(PyObject *o, const char *what, const uint8_t **p, Py_ssize_t *n)
{
    if (PyUnicode_Check(o)) {
        *p = (const uint8_t *)PyUnicode_AsUTF8AndSize(o, n);
        return *p == NULL ? -1 : 0;
    }
    if (PyBytes_Check(o)) {
        *p = (const uint8_t *)PyBytes_AS_STRING(o);
        *n = PyBytes_GET_SIZE(o);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "%s must be str or bytes, not %.100s", what, Py_TYPE(o)->tp_name);
    return -1;
}

static int check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs == expected)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd arguments (%zd given)", name, expected, nargs);
    return -1;
}

/* -- module functions --------------------------------------------------------------------- */

static PyObject *py_sha256_hex(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const uint8_t *p;
    Py_ssize_t n;
    uint8_t digest[32];
    if (check_nargs("sha256_hex", nargs, 1) || as_bytes(args[0], "data", &p, &n))
        return NULL;
    sha256(p, (size_t)n, digest);
    return hex_str(digest);
}

static PyObject *py_hmac_key(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    uint8_t block[64] = {0}, pad[64], out[64];
    uint32_t h[8];
    if (check_nargs("hmac_key", nargs, 1))
        return NULL;
    if (!PyBytes_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "key must be bytes, not %.100s", Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    const uint8_t *key = (const uint8_t *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    if (n > 64)
        sha256(key, (size_t)n, block); /* as HMAC does with keys longer than a block */
    else
        memcpy(block, key, (size_t)n);
    for (int half = 0; half < 2; half++) {
        for (int i = 0; i < 64; i++)
            pad[i] = block[i] ^ (half ? 0x5c : 0x36);
        memcpy(h, IV, sizeof h);
        compress(h, pad, 1);
        for (int i = 0; i < 8; i++)
            store_be32(out + 32 * half + 4 * i, h[i]);
    }
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

static PyObject *py_sign(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const uint8_t *prefix, *creq;
    Py_ssize_t prefix_len, creq_len;
    uint32_t inner[8], outer[8];
    uint8_t digest[32];
    char creq_hex[64];
    sha_ctx c;

    if (check_nargs("sign", nargs, 3))
        return NULL;
    if (!PyBytes_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "hmac_states must be bytes, not %.100s", Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    if (PyBytes_GET_SIZE(args[0]) != 64) {
        PyErr_SetString(PyExc_ValueError, "hmac_states must be the 64 bytes hmac_key() returns");
        return NULL;
    }
    if (as_bytes(args[1], "prefix", &prefix, &prefix_len) || as_bytes(args[2], "canonical_request", &creq, &creq_len))
        return NULL;
    const uint8_t *states = (const uint8_t *)PyBytes_AS_STRING(args[0]);
    for (int i = 0; i < 8; i++) {
        inner[i] = load_be32(states + 4 * i);
        outer[i] = load_be32(states + 32 + 4 * i);
    }

    sha256(creq, (size_t)creq_len, digest);
    to_hex(digest, creq_hex);
    ctx_init(&c, inner, 64); /* the key block is already in the midstate */
    ctx_update(&c, prefix, (size_t)prefix_len);
    ctx_update(&c, (const uint8_t *)creq_hex, sizeof creq_hex);
    ctx_final(&c, digest);
    ctx_init(&c, outer, 64);
    ctx_update(&c, digest, sizeof digest);
    ctx_final(&c, digest);
    return hex_str(digest);
}

static PyObject *py_midstate(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const uint8_t *state, *p;
    Py_ssize_t state_len, n;
    uint32_t h[8];
    if (check_nargs("midstate", nargs, 2) || as_bytes(args[0], "state", &state, &state_len)
        || as_bytes(args[1], "data", &p, &n))
        return NULL;
    if (state_len != 0 && state_len != 32) {
        PyErr_SetString(PyExc_ValueError, "state must be 32 bytes, or empty for SHA-256's initial one");
        return NULL;
    }
    for (int i = 0; i < 8; i++)
        h[i] = state_len ? load_be32(state + 4 * i) : IV[i];
    compress(h, p, (size_t)n / 64);
    uint8_t out[32];
    for (int i = 0; i < 8; i++)
        store_be32(out + 4 * i, h[i]);
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

/* -- build: one signed request's bytes from a per-second plan ---------------------------- */

/* The plan, made by loadgen.transport.encode (RequestEncoder._plan, a BuildPlan NamedTuple);
 * fields by index, in this order, named as PLAN_FIELDS exports them (a test holds BuildPlan
 * to that). The constant leading blocks of both hashes come as midstates, so per request
 * only the blocks from the header value on are compressed (about half, more with a token). */
#define PLAN_FIELD_LIST(X)                                                                     \
    X(SECOND, second)           /* int: the whole epoch second the date strings are for */     \
    X(CREDENTIALS, credentials) /* object: the Credentials signed with, by identity */         \
    X(HASHES, hashes)           /* dict: body bytes -> hex SHA-256 (the signer's cache) */     \
    X(CREQ_STATE, creq_state)   /* bytes: midstate(b"", creq_head) */                          \
    X(CREQ_HEAD, creq_head)     /* bytes: the canonical request up to the header value */      \
    X(CREQ_TAIL, creq_tail)     /* bytes: ... after it, up to the payload hash */              \
    X(INNER_STATE, inner_state) /* bytes: midstate(HMAC inner state after key block, sts) */   \
    X(STS, sts)                 /* bytes: the string to sign up to the canonical request hash */ \
    X(OUTER_STATE, outer_state) /* bytes: the HMAC outer state after the key block */          \
    X(HEAD, head)               /* bytes: the request bytes up to the header value */          \
    X(LENGTH, length)           /* bytes: ... after it, up to the Content-Length digits */     \
    X(SIGNATURE, signature)     /* bytes: ... after them, up to the signature's hex digits */  \
    X(END, end)                 /* bytes: ... after those, up to the body */                   \
    X(JOIN_LIMIT, join_limit)   /* int: larger bodies are not joined; the caller writes them */

enum {
#define PLAN_ENUM(upper, lower) PLAN_##upper,
    PLAN_FIELD_LIST(PLAN_ENUM)
#undef PLAN_ENUM
    PLAN_SIZE
};

static const char *const plan_field_names[PLAN_SIZE] = {
#define PLAN_NAME(upper, lower) #lower,
    PLAN_FIELD_LIST(PLAN_NAME)
#undef PLAN_NAME
};

static const char empty_sha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* str.split()'s whitespace among ASCII characters: \t \n \v \f \r, \x1c-\x1f and space. */
static int is_space(uint8_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* Resume a hash at `state`, which midstate() gave for `skipped` bytes before `data` plus
 * data's whole blocks, and take in the rest of data. */
static void ctx_resume(sha_ctx *c, PyObject *state, uint64_t skipped, PyObject *data)
{
    uint32_t h[8];
    for (int i = 0; i < 8; i++)
        h[i] = load_be32((const uint8_t *)PyBytes_AS_STRING(state) + 4 * i);
    size_t n = data ? (size_t)PyBytes_GET_SIZE(data) : 0, whole = n & ~(size_t)63;
    ctx_init(c, h, skipped + whole);
    if (data)
        ctx_update(c, (const uint8_t *)PyBytes_AS_STRING(data) + whole, n - whole);
}

static void put(char **out, const void *p, size_t n)
{
    memcpy(*out, p, n);
    *out += n;
}

static void put_bytes(char **out, PyObject *bytes)
{
    put(out, PyBytes_AS_STRING(bytes), (size_t)PyBytes_GET_SIZE(bytes));
}

static int check_plan(PyObject *plan)
{
    /* a tuple or a subclass (BuildPlan, a NamedTuple): read by index either way */
    if (!PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) != PLAN_SIZE) {
        PyErr_SetString(PyExc_TypeError, "plan must be a tuple of the fields in PLAN_FIELDS");
        return -1;
    }
    PyObject **field = &PyTuple_GET_ITEM(plan, 0);
    int ok = PyLong_CheckExact(field[PLAN_SECOND]) && PyDict_CheckExact(field[PLAN_HASHES])
             && PyLong_CheckExact(field[PLAN_JOIN_LIMIT]);
    for (int i = PLAN_CREQ_STATE; i <= PLAN_END; i++)
        ok = ok && PyBytes_CheckExact(field[i]);
    if (!ok || PyBytes_GET_SIZE(field[PLAN_CREQ_STATE]) != 32
        || PyBytes_GET_SIZE(field[PLAN_INNER_STATE]) != 32 || PyBytes_GET_SIZE(field[PLAN_OUTER_STATE]) != 32) {
        PyErr_SetString(PyExc_TypeError, "plan has a field of the wrong type or size");
        return -1;
    }
    return 0;
}

/* build(plan, value, body, now, credentials) -> (data, body if not joined else None) | None
 *
 * None means "not here, do it in Python": no plan, a plan for another second or other
 * credentials, an empty or non-ASCII value, a body that is not bytes or whose hash is not
 * cached. So every rule beyond the common case stays in one place, the Python signer. */
static PyObject *py_build(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("build", nargs, 5))
        return NULL;
    PyObject *plan = args[0], *value = args[1], *body = args[2];
    if (plan == Py_None)
        Py_RETURN_NONE;
    if (check_plan(plan))
        return NULL;
    PyObject **field = &PyTuple_GET_ITEM(plan, 0);
    double now = PyFloat_AsDouble(args[3]);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    long long second = PyLong_AsLongLong(field[PLAN_SECOND]);
    long long limit = PyLong_AsLongLong(field[PLAN_JOIN_LIMIT]);
    if ((second == -1 || limit == -1) && PyErr_Occurred())
        return NULL;
    /* floor(now) == second, without libm; false for NaN too */
    if (!((double)second <= now && now < (double)second + 1.0) || args[4] != field[PLAN_CREDENTIALS])
        Py_RETURN_NONE; /* a new second or refreshed credentials: the caller makes a new plan */
    if (!PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value) || PyUnicode_GET_LENGTH(value) == 0
        || !PyBytes_CheckExact(body))
        Py_RETURN_NONE;

    const char *payload_hash = empty_sha256;
    Py_ssize_t body_len = PyBytes_GET_SIZE(body);
    if (body_len) {
        PyObject *hex = PyDict_GetItemWithError(field[PLAN_HASHES], body); /* borrowed */
        if (hex == NULL) {
            if (PyErr_Occurred())
                return NULL;
            Py_RETURN_NONE; /* not hashed yet: the Python path hashes and caches it */
        }
        if (!PyUnicode_CheckExact(hex) || !PyUnicode_IS_ASCII(hex) || PyUnicode_GET_LENGTH(hex) != 64) {
            PyErr_SetString(PyExc_TypeError, "payload hashes must be 64-character hex str");
            return NULL;
        }
        payload_hash = (const char *)PyUnicode_1BYTE_DATA(hex);
    }

    /* The canonical request: head, the value trimmed as " ".join(value.split()), tail,
     * payload hash. One update per word saves a buffer; values are a word or a few. */
    const uint8_t *v = PyUnicode_1BYTE_DATA(value);
    Py_ssize_t v_len = PyUnicode_GET_LENGTH(value);
    uint8_t digest[32];
    char hex[64];
    sha_ctx c;
    ctx_resume(&c, field[PLAN_CREQ_STATE], 0, field[PLAN_CREQ_HEAD]);
    for (Py_ssize_t i = 0, words = 0; i < v_len;) {
        while (i < v_len && is_space(v[i]))
            i++;
        Py_ssize_t start = i;
        while (i < v_len && !is_space(v[i]))
            i++;
        if (i > start) {
            if (words++)
                ctx_update(&c, (const uint8_t *)" ", 1);
            ctx_update(&c, v + start, (size_t)(i - start));
        }
    }
    ctx_update(&c, (const uint8_t *)PyBytes_AS_STRING(field[PLAN_CREQ_TAIL]), (size_t)PyBytes_GET_SIZE(field[PLAN_CREQ_TAIL]));
    ctx_update(&c, (const uint8_t *)payload_hash, 64);
    ctx_final(&c, digest);
    to_hex(digest, hex);
    /* HMAC-SHA256(key, sts + hex), both halves resumed after the key block as sign() does */
    ctx_resume(&c, field[PLAN_INNER_STATE], 64, field[PLAN_STS]);
    ctx_update(&c, (const uint8_t *)hex, sizeof hex);
    ctx_final(&c, digest);
    ctx_resume(&c, field[PLAN_OUTER_STATE], 64, NULL);
    ctx_update(&c, digest, sizeof digest);
    ctx_final(&c, digest);
    to_hex(digest, hex);

    /* The request: head, the value as sent (untrimmed), Content-Length, signature, body. */
    char digits[24], *first_digit = digits + sizeof digits; /* snprintf cost 4% of a call */
    Py_ssize_t rest = body_len;
    do
        *--first_digit = (char)('0' + rest % 10);
    while (rest /= 10);
    size_t n_digits = (size_t)(digits + sizeof digits - first_digit);
    int joined = body_len <= limit;
    Py_ssize_t size = PyBytes_GET_SIZE(field[PLAN_HEAD]) + v_len + PyBytes_GET_SIZE(field[PLAN_LENGTH])
                      + (Py_ssize_t)n_digits + PyBytes_GET_SIZE(field[PLAN_SIGNATURE]) + (Py_ssize_t)sizeof hex
                      + PyBytes_GET_SIZE(field[PLAN_END]) + (joined ? body_len : 0);
    PyObject *data = PyBytes_FromStringAndSize(NULL, size);
    if (data == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(data);
    put_bytes(&out, field[PLAN_HEAD]);
    put(&out, v, (size_t)v_len);
    put_bytes(&out, field[PLAN_LENGTH]);
    put(&out, first_digit, n_digits);
    put_bytes(&out, field[PLAN_SIGNATURE]);
    put(&out, hex, sizeof hex);
    put_bytes(&out, field[PLAN_END]);
    if (joined)
        put_bytes(&out, body);
    PyObject *result = PyTuple_Pack(2, data, joined ? Py_None : body);
    Py_DECREF(data);
    return result;
}

static PyObject *py_implementation(PyObject *module, PyObject *unused)
{
    return PyUnicode_FromString(implementation_name);
}

static PyMethodDef methods[] = {
    {"sha256_hex", (PyCFunction)(void (*)(void))py_sha256_hex, METH_FASTCALL,
     "sha256_hex(data: str | bytes) -> str\n--\n\nLowercase hex SHA-256 of data (str as UTF-8)."},
    {"hmac_key", (PyCFunction)(void (*)(void))py_hmac_key, METH_FASTCALL,
     "hmac_key(key: bytes) -> bytes\n--\n\n"
     "HMAC-SHA256 inner and outer midstates for key, 64 bytes, for sign()."},
    {"sign", (PyCFunction)(void (*)(void))py_sign, METH_FASTCALL,
     "sign(hmac_states: bytes, prefix: str | bytes, canonical_request: str | bytes) -> str\n--\n\n"
     "Lowercase hex HMAC-SHA256(key, prefix + hex(SHA-256(canonical_request)))."},
    {"midstate", (PyCFunction)(void (*)(void))py_midstate, METH_FASTCALL,
     "midstate(state: bytes, data: str | bytes) -> bytes\n--\n\n"
     "The 32-byte SHA-256 state after data's whole 64-byte blocks, from state (b\"\": the initial one)."},
    {"build", (PyCFunction)(void (*)(void))py_build, METH_FASTCALL,
     "build(plan: tuple | None, value: str, body: bytes, now: float, credentials: object)"
     " -> tuple[bytes, bytes | None] | None\n--\n\n"
     "One signed request's bytes (and its body when too large to join) from a per-second plan;\n"
     "None when the plan does not apply (stale, non-ASCII value, body hash not cached)."},
    {"implementation", py_implementation, METH_NOARGS,
     "implementation() -> str\n--\n\n\"sha-ni\" or \"portable\": the compression function in use."},
    {NULL, NULL, 0, NULL},
};

static int exec_module(PyObject *module)
{
    PyObject *names = PyTuple_New(PLAN_SIZE);
    if (names == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < PLAN_SIZE; i++) {
        PyObject *name = PyUnicode_InternFromString(plan_field_names[i]);
        if (name == NULL) {
            Py_DECREF(names);
            return -1;
        }
        PyTuple_SET_ITEM(names, i, name);
    }
    int added = PyModule_AddObjectRef(module, "PLAN_FIELDS", names);
    Py_DECREF(names);
    if (added < 0)
        return -1;
    compress = compress_portable;
    implementation_name = "portable";
#ifdef HAVE_SHANI
    const char *force = getenv("LOADGEN_SHA256_PORTABLE"); /* lets tests cover both here */
    __builtin_cpu_init();
    if (!(force && strcmp(force, "1") == 0) && __builtin_cpu_supports("sha")
        && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3")) {
        compress = compress_shani;
        implementation_name = "sha-ni";
    }
#endif
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED}, /* no mutable state after exec */
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "loadgen.transport._sigv4c",
    .m_doc = "SHA-256 and HMAC-SHA256 for SigV4 signing, without OpenSSL.",
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC PyInit__sigv4c(void)
{
    return PyModuleDef_Init(&module_def);
}
