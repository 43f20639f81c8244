/* The common response, parsed in one C call: a whole 2xx response with a Content-Length
 * body, arriving in one read. httptools costs eleven Python callbacks per response; this is
 * the load tester's hot path, so the plain case is read here and anything else (chunked,
 * split across reads, errors, odd framing, bytes httptools would refuse) returns None and
 * goes to httptools, which stays the reference: tests/test_http11c.py compares the two.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* -- Simple: parse_simple's answer, a tuple with named fields ---------------------------- */

/* A tuple subclass whose fields are T_OBJECT_EX members at the items' offsets: Python 3.11
 * specializes reading them like __slots__ (LOAD_ATTR_SLOT), which it does not for
 * PyStructSequence's T_OBJECT members, and the lean dealloc below skips subtype_dealloc.
 * Made and read 4 times, this costs what a plain tuple indexed by number costs (~85 ns per
 * response here); a PyStructSequence cost ~190 ns. */
#define SIMPLE_FIELD_LIST(X)                                                 \
    X(status)      /* int */                                                 \
    X(echoed)      /* X-Amzn-SageMaker-Custom-Attributes, latin-1, or None */ \
    X(variant)     /* X-Amzn-Invoked-Production-Variant, or None */          \
    X(error_type)  /* X-Amzn-ErrorType, or None */                           \
    X(keep_alive)  /* bool: the connection stays open */                     \
    X(body_length) /* int: the Content-Length */

enum {
#define SIMPLE_ENUM(name) SIMPLE_##name,
    SIMPLE_FIELD_LIST(SIMPLE_ENUM)
#undef SIMPLE_ENUM
    SIMPLE_SIZE
};

static PyMemberDef simple_members[] = {
#define SIMPLE_MEMBER(name)                                                                    \
    {#name, T_OBJECT_EX,                                                                       \
     (Py_ssize_t)(offsetof(PyTupleObject, ob_item) + SIMPLE_##name * sizeof(PyObject *)),      \
     READONLY, NULL},
    SIMPLE_FIELD_LIST(SIMPLE_MEMBER)
#undef SIMPLE_MEMBER
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject *simple_type = NULL;

/* Simple(iterable): exactly SIMPLE_SIZE items, or the members would read past the end. */
static PyObject *simple_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *values;
    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) || !PyArg_ParseTuple(args, "O:Simple", &values)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Simple() takes one iterable");
        return NULL;
    }
    PyObject *items = PySequence_Tuple(values);
    if (items == NULL) return NULL;
    if (PyTuple_GET_SIZE(items) != SIMPLE_SIZE) {
        PyErr_Format(PyExc_TypeError, "Simple() takes %d items, got %zd", SIMPLE_SIZE,
                     PyTuple_GET_SIZE(items));
        Py_DECREF(items);
        return NULL;
    }
    PyObject *self = type->tp_alloc(type, SIMPLE_SIZE);
    if (self != NULL)
        for (int i = 0; i < SIMPLE_SIZE; i++)
            PyTuple_SET_ITEM(self, i, Py_NewRef(PyTuple_GET_ITEM(items, i)));
    Py_DECREF(items);
    return self;
}

static void simple_dealloc(PyObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    for (Py_ssize_t i = Py_SIZE(self); --i >= 0;) Py_XDECREF(PyTuple_GET_ITEM(self, i));
    type->tp_free(self);
    Py_DECREF(type); /* instances of a heap type hold a reference to it */
}

static int simple_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    for (Py_ssize_t i = Py_SIZE(self); --i >= 0;) Py_VISIT(PyTuple_GET_ITEM(self, i));
    return 0;
}

static PyObject *simple_repr(PyObject *self) {
    PyObject **item = &PyTuple_GET_ITEM(self, 0);
    return PyUnicode_FromFormat(
        "Simple(status=%R, echoed=%R, variant=%R, error_type=%R, keep_alive=%R, body_length=%R)",
        item[SIMPLE_status], item[SIMPLE_echoed], item[SIMPLE_variant], item[SIMPLE_error_type],
        item[SIMPLE_keep_alive], item[SIMPLE_body_length]);
}

static PyType_Slot simple_slots[] = {
    {Py_tp_doc, "parse_simple's answer: one whole 2xx response, its fields by name or index."},
    {Py_tp_new, simple_new},
    {Py_tp_dealloc, simple_dealloc},
    {Py_tp_traverse, simple_traverse},
    {Py_tp_repr, simple_repr},
    {Py_tp_members, simple_members},
    {0, NULL},
};

static PyType_Spec simple_spec = {
    "loadgen.transport._http11c.Simple", 0, 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE, simple_slots,
};

static const char *const simple_names[SIMPLE_SIZE] = {
#define SIMPLE_NAME(name) #name,
    SIMPLE_FIELD_LIST(SIMPLE_NAME)
#undef SIMPLE_NAME
};

/* The type, with `_fields` and `__match_args__` as a NamedTuple has them. */
static PyTypeObject *make_simple_type(void) {
    PyObject *type = PyType_FromSpecWithBases(&simple_spec, (PyObject *)&PyTuple_Type);
    PyObject *names = PyTuple_New(SIMPLE_SIZE);
    if (type == NULL || names == NULL) goto error;
    for (int i = 0; i < SIMPLE_SIZE; i++) {
        PyObject *name = PyUnicode_InternFromString(simple_names[i]);
        if (name == NULL) goto error;
        PyTuple_SET_ITEM(names, i, name);
    }
    PyObject *dict = ((PyTypeObject *)type)->tp_dict;
    if (PyDict_SetItemString(dict, "_fields", names) < 0
        || PyDict_SetItemString(dict, "__match_args__", names) < 0)
        goto error;
    Py_DECREF(names);
    PyType_Modified((PyTypeObject *)type);
    return (PyTypeObject *)type;
error:
    Py_XDECREF(names);
    Py_XDECREF(type);
    return NULL;
}

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

/* parse_simple(data) -> Simple(status, echoed, variant, error_type, keep_alive, body_length)
 * | None; the three header values are latin-1 str, or None when absent. */
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

    PyObject *items[SIMPLE_SIZE];
    items[SIMPLE_status] = PyLong_FromLong(status);
    items[SIMPLE_echoed] = echoed ? latin1(echoed, echoed_len) : Py_NewRef(Py_None);
    items[SIMPLE_variant] = variant ? variant_str(variant, variant_len) : Py_NewRef(Py_None);
    items[SIMPLE_error_type] = error_type ? latin1(error_type, error_type_len) : Py_NewRef(Py_None);
    items[SIMPLE_keep_alive] = PyBool_FromLong(keep_alive);
    items[SIMPLE_body_length] = PyLong_FromLongLong(content_length);
    PyObject *result = NULL;
    for (int i = 0; i < SIMPLE_SIZE; i++)
        if (items[i] == NULL) goto error;
    result = PyType_GenericAlloc(simple_type, SIMPLE_SIZE);
    if (result == NULL) goto error;
    for (int i = 0; i < SIMPLE_SIZE; i++) PyTuple_SET_ITEM(result, i, items[i]);
    return result;
error:
    for (int i = 0; i < SIMPLE_SIZE; i++) Py_XDECREF(items[i]);
    return NULL;
}

static PyMethodDef methods[] = {
    {"parse_simple", parse_simple, METH_O,
     "parse_simple(data) -> Simple(status, echoed, variant, error_type, keep_alive, body_length)\n"
     "or None when the data is not one whole 2xx response with a Content-Length body. Header\n"
     "values are latin-1 str."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_http11c",
    "One whole 2xx HTTP/1.1 response parsed in one call; anything else is httptools' job.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__http11c(void) {
    init_classes();
    PyObject *made = PyModule_Create(&module);
    if (made == NULL) return NULL;
    if (simple_type == NULL) simple_type = make_simple_type(); /* kept for the process */
    if (simple_type == NULL || PyModule_AddObjectRef(made, "Simple", (PyObject *)simple_type) < 0) {
        Py_DECREF(made);
        return NULL;
    }
    return made;
}
