/* The common response, parsed in one C call: a whole 2xx response with a Content-Length
 * body, arriving in one read. httptools costs eleven Python callbacks per response; this is
 * the load tester's hot path, so the plain case is read here and anything else (chunked,
 * split across reads, errors, odd framing, bytes httptools would refuse) returns None and
 * goes to httptools, which stays the reference: tests/test_http11c.py compares the two.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Byte classes, looked up once per byte: RFC 9110 tchar, and what llhttp accepts in a
 * header value or a reason phrase (field-vchar, SP, HTAB, obs-text). */
enum { TCHAR = 1, VALUE = 2 };
static unsigned char byte_class[256];

static void init_classes(void) {
    for (int c = 0; c < 256; c++) {
        unsigned char k = 0;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL))
            k |= TCHAR;
        if (c == '\t' || (c >= 0x20 && c != 0x7f)) k |= VALUE;
        byte_class[c] = k;
    }
}

/* Past the value bytes at p, to the first byte that is not one (the CR that ends a line, or
 * a byte llhttp refuses). Eight at a time while none is below 0x20 or 0x7f (SWAR: a CR,
 * HTAB or control byte stops the fast steps), then one at a time. */
static const unsigned char *skip_value(const unsigned char *p, const unsigned char *end) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t below_space = (x - ones * 0x20) & ~x;
        uint64_t y = x ^ (ones * 0x7f);
        uint64_t is_del = (y - ones) & ~y;
        if ((below_space | is_del) & highs) break;
        p += 8;
    }
    while (p < end && (byte_class[*p] & VALUE)) p++;
    return p;
}

/* A header name (or the Connection value) against a lowercase word of letters and '-':
 * `| 0x20` lowercases a letter and leaves '-' alone, and no other byte a name or value can
 * hold becomes a letter or '-' by it (only CR becomes '-', and CR ends a value). */
static int name_is(const unsigned char *name, const char *lower, Py_ssize_t len) {
    Py_ssize_t i = 0;
    for (; i + 8 <= len; i += 8) { /* eight bytes a step: the names are 7 to 34 long */
        uint64_t a, b;
        memcpy(&a, name + i, 8);
        memcpy(&b, lower + i, 8);
        if ((a | 0x2020202020202020ull) != b) return 0;
    }
    for (; i < len; i++)
        if ((name[i] | 0x20) != (unsigned char)lower[i]) return 0;
    return 1;
}
#define NAME_IS(name, len, literal) \
    ((len) == (Py_ssize_t)sizeof(literal) - 1 && name_is((name), (literal), (len)))

/* A header value as the str Python code uses: latin-1, as botocore decodes headers. */
static PyObject *latin1(const unsigned char *value, Py_ssize_t len) {
    return PyUnicode_DecodeLatin1((const char *)value, len, NULL);
}

/* The last variant name seen, returned again while it repeats: one allocation less per
 * response, and the str keeps its hash for the recorder's lookup. */
static PyObject *last_variant = NULL;

static PyObject *variant_str(const unsigned char *value, Py_ssize_t len) {
    if (last_variant != NULL && PyUnicode_GET_LENGTH(last_variant) == len
        && memcmp(PyUnicode_1BYTE_DATA(last_variant), value, (size_t)len) == 0)
        return Py_NewRef(last_variant);
    PyObject *made = latin1(value, len); /* a latin-1 str is one byte a character */
    if (made != NULL) Py_XSETREF(last_variant, Py_NewRef(made));
    return made;
}

/* parse_simple(data) -> (status, echoed, variant, error_type, keep_alive, body_length) | None;
 * the three header values are latin-1 str, or None when absent. */
static PyObject *parse_simple(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "parse_simple() takes bytes");
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(arg);
    const unsigned char *end = p + PyBytes_GET_SIZE(arg);

    /* status line: HTTP/1.1 DDD[ reason]CRLF */
    if (end - p < 14 || memcmp(p, "HTTP/1.1 ", 9) != 0) Py_RETURN_NONE;
    p += 9;
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9')
        Py_RETURN_NONE;
    int status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    p += 3;
    /* 1xx, 204 and 205 have no body, 3xx and up carry error bodies: httptools' cases */
    if (status < 200 || status >= 300 || status == 204 || status == 205) Py_RETURN_NONE;
    if (*p == ' ') {
        p++;
        p = skip_value(p, end);
    }
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') Py_RETURN_NONE;
    p += 2;

    const unsigned char *echoed = NULL, *variant = NULL, *error_type = NULL;
    Py_ssize_t echoed_len = 0, variant_len = 0, error_type_len = 0;
    long long content_length = -1;
    int keep_alive = 1, connection_seen = 0;

    for (;;) {
        if (end - p < 2) Py_RETURN_NONE; /* the head is not complete */
        if (p[0] == '\r') {
            if (p[1] != '\n') Py_RETURN_NONE;
            p += 2;
            break;
        }
        const unsigned char *name = p;
        while (p < end && (byte_class[*p] & TCHAR)) p++;
        Py_ssize_t name_len = p - name;
        if (name_len == 0 || p >= end || *p != ':') Py_RETURN_NONE;
        p++;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const unsigned char *value = p;
        p = skip_value(p, end);
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') Py_RETURN_NONE;
        Py_ssize_t value_len = p - value;
        p += 2;

        /* the names that matter have lengths 34, 33, 14, 10, 16, 17 and 7: one compare each */
        if (NAME_IS(name, name_len, "x-amzn-sagemaker-custom-attributes")) {
            echoed = value;
            echoed_len = value_len;
        } else if (NAME_IS(name, name_len, "x-amzn-invoked-production-variant")) {
            variant = value;
            variant_len = value_len;
        } else if (NAME_IS(name, name_len, "content-length")) {
            if (content_length >= 0 || value_len == 0 || value_len > 15) Py_RETURN_NONE;
            content_length = 0;
            for (Py_ssize_t i = 0; i < value_len; i++) {
                if (value[i] < '0' || value[i] > '9') Py_RETURN_NONE;
                content_length = content_length * 10 + (value[i] - '0');
            }
        } else if (NAME_IS(name, name_len, "connection")) {
            if (connection_seen) Py_RETURN_NONE;
            connection_seen = 1;
            if (NAME_IS(value, value_len, "close")) keep_alive = 0;
            else if (!NAME_IS(value, value_len, "keep-alive")) Py_RETURN_NONE;
        } else if (NAME_IS(name, name_len, "x-amzn-errortype")) {
            error_type = value;
            error_type_len = value_len;
        } else if (NAME_IS(name, name_len, "transfer-encoding") || NAME_IS(name, name_len, "upgrade")) {
            Py_RETURN_NONE;
        }
    }
    /* exactly one whole body: a split read or bytes beyond it are httptools' to handle */
    if (content_length < 0 || end - p != content_length) Py_RETURN_NONE;

    PyObject *result = PyTuple_New(6);
    if (result == NULL) return NULL;
    PyObject *items[6];
    items[0] = PyLong_FromLong(status);
    items[1] = echoed ? latin1(echoed, echoed_len) : Py_NewRef(Py_None);
    items[2] = variant ? variant_str(variant, variant_len) : Py_NewRef(Py_None);
    items[3] = error_type ? latin1(error_type, error_type_len) : Py_NewRef(Py_None);
    items[4] = PyBool_FromLong(keep_alive);
    items[5] = PyLong_FromLongLong(content_length);
    for (int i = 0; i < 6; i++) {
        if (items[i] == NULL) {
            for (int j = 0; j < 6; j++) Py_XDECREF(items[j]);
            Py_DECREF(result);
            return NULL;
        }
    }
    for (int i = 0; i < 6; i++) PyTuple_SET_ITEM(result, i, items[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"parse_simple", parse_simple, METH_O,
     "parse_simple(data) -> (status, echoed, variant, error_type, keep_alive, body_length) or "
     "None when the data is not one whole 2xx response with a Content-Length body. Header values\n"
     "are latin-1 str."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_http11c",
    "One whole 2xx HTTP/1.1 response parsed in one call; anything else is httptools' job.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__http11c(void) {
    init_classes();
    return PyModule_Create(&module);
}
