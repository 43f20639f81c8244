/* The event-stream decoder's hot part in C: one call per network read finds the whole
 * messages, checks both CRC32s, reads the headers that decide the event and makes a
 * PayloadPart (a Python NamedTuple class handed in) of each; the rare other messages go to a
 * Python function. `read` hands each PayloadPart's payload straight to a Tokens
 * (_tokensc.c) instead and times its token events, so a streaming call's read is one call. eventstream.py's
 * PyEventStreamDecoder is the reference: the same bytes
 * give the same events and the same error messages, step for step
 * (tests/test_eventstream.py runs every test on both, and against botocore).
 */
#include "_tokensc.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#define PRELUDE_LENGTH 12
#define MIN_MESSAGE_LENGTH 16 /* a prelude and the message CRC */
#define MAX_HEADERS_LENGTH (128 * 1024) /* botocore's limits */
#define MAX_PAYLOAD_LENGTH (24 * 1024 * 1024)
#define KEEP_CAPACITY (64 * 1024) /* an empty buffer larger than this is freed */

/* -- CRC32 (IEEE 802.3, reflected, as zlib), eight bytes a step ---------------------------- */

static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (int i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

/* zlib.crc32(data, crc): the CRC of data continued from crc, the CRC of what came before. */
static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    while (n >= 8) { /* slice-by-8: byte loads, so it holds on any endianness */
        uint32_t one = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
                              | (uint32_t)p[3] << 24);
        uint32_t two = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16
                       | (uint32_t)p[7] << 24;
        crc = crc_table[7][one & 0xff] ^ crc_table[6][(one >> 8) & 0xff]
              ^ crc_table[5][(one >> 16) & 0xff] ^ crc_table[4][one >> 24]
              ^ crc_table[3][two & 0xff] ^ crc_table[2][(two >> 8) & 0xff]
              ^ crc_table[1][(two >> 16) & 0xff] ^ crc_table[0][two >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* -- Headers ---------------------------------------------------------------------------- */

/* The headers read, by index; all must be strings. The order of _Kinds in eventstream.py. */
enum { K_MESSAGE_TYPE, K_EVENT_TYPE, K_EXCEPTION_TYPE, K_ERROR_CODE, K_ERROR_MESSAGE, K_COUNT };
static const struct {
    const char *name;
    Py_ssize_t length;
} known[K_COUNT] = {
    {":message-type", 13}, {":event-type", 11}, {":exception-type", 15},
    {":error-code", 11},   {":error-message", 14},
};

typedef struct {
    const unsigned char *at; /* NULL: absent */
    Py_ssize_t length;
} Span;

static int known_index(const unsigned char *name, Py_ssize_t length) {
    for (int i = 0; i < K_COUNT; i++)
        if (known[i].length == length && memcmp(name, known[i].name, (size_t)length) == 0)
            return i;
    return -1;
}

static int span_is(Span s, const char *literal, Py_ssize_t length) {
    return s.at != NULL && s.length == length && memcmp(s.at, literal, (size_t)length) == 0;
}

/* 1: valid UTF-8 as Python's strict decoder has it (ASCII checked here, the rest by the
 * decoder itself, so surrogates and overlong forms are refused alike); 0: not; -1: error. */
static int is_utf8(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n && p[i] < 0x80) i++;
    if (i == n) return 1;
    PyObject *text = PyUnicode_DecodeUTF8((const char *)p, n, "strict");
    if (text != NULL) {
        Py_DECREF(text);
        return 1;
    }
    if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return -1;
    PyErr_Clear();
    return 0;
}

/* Bytes of a value of this type (botocore's types); -1: a u16 length first; -2: no such type. */
static Py_ssize_t value_size(int type) {
    switch (type) {
    case 0: case 1: return 0; /* true, false */
    case 2: return 1;         /* byte */
    case 3: return 2;         /* short */
    case 4: return 4;         /* integer */
    case 5: case 8: return 8; /* long, timestamp */
    case 6: case 7: return -1; /* bytes, string */
    case 9: return 16;        /* uuid */
    default: return -2;
    }
}
#define TYPE_STRING 7
#define PAIRWISE 32 /* names compared pairwise for duplicates; beyond, a set */

/* Every header of the block checked (in _read_headers' order); the known ones' values in
 * kinds. 0, or -1 with *message set (a malformed block) or with an exception set. */
static int read_headers(const unsigned char *p, Py_ssize_t length, Span kinds[K_COUNT],
                        PyObject **message) {
    const unsigned char *end = p + length;
    Span names[PAIRWISE];
    int count = 0, result = -1;
    PyObject *name_set = NULL;
    memset(kinds, 0, sizeof(Span) * K_COUNT);
    while (p < end) {
        Py_ssize_t name_length = *p++;
        if (end - p < name_length) goto runs_past;
        const unsigned char *name = p;
        p += name_length;
        if (p >= end) goto runs_past;
        int type = *p++;
        Py_ssize_t size = value_size(type);
        if (size == -2) {
            *message = PyUnicode_FromFormat("header value type %d unknown", type);
            goto done;
        }
        if (size == -1) {
            if (end - p < 2) goto runs_past;
            size = (Py_ssize_t)p[0] << 8 | p[1];
            p += 2;
        }
        if (end - p < size) goto runs_past;
        const unsigned char *value = p;
        p += size;

        int which = known_index(name, name_length), valid;
        if (which < 0) {
            if ((valid = is_utf8(name, name_length)) < 0) goto done;
            if (!valid) {
                *message = PyUnicode_FromString("header name is not UTF-8");
                goto done;
            }
        }
        if (type == TYPE_STRING) {
            if ((valid = is_utf8(value, size)) < 0) goto done;
            if (!valid) {
                *message = PyUnicode_FromString("header string is not UTF-8");
                goto done;
            }
        }
        int repeated = 0;
        if (name_set == NULL && count < PAIRWISE) {
            for (int i = 0; i < count && !repeated; i++)
                repeated = names[i].length == name_length
                           && memcmp(names[i].at, name, (size_t)name_length) == 0;
            if (!repeated) names[count++] = (Span){name, name_length};
        } else {
            if (name_set == NULL) {
                if ((name_set = PySet_New(NULL)) == NULL) goto done;
                for (int i = 0; i < count; i++) {
                    PyObject *seen = PyBytes_FromStringAndSize((const char *)names[i].at,
                                                               names[i].length);
                    int added = seen == NULL ? -1 : PySet_Add(name_set, seen);
                    Py_XDECREF(seen);
                    if (added < 0) goto done;
                }
            }
            PyObject *key = PyBytes_FromStringAndSize((const char *)name, name_length);
            if (key == NULL) goto done;
            int found = PySet_Contains(name_set, key);
            if (found == 0) found = PySet_Add(name_set, key) < 0 ? -1 : 0;
            Py_DECREF(key);
            if (found < 0) goto done;
            repeated = found;
        }
        if (repeated) {
            PyObject *text = PyUnicode_DecodeUTF8((const char *)name, name_length, "strict");
            if (text == NULL) goto done;
            *message = PyUnicode_FromFormat("duplicate header %R", text);
            Py_DECREF(text);
            goto done;
        }
        if (which >= 0) {
            if (type != TYPE_STRING) {
                *message = PyUnicode_FromFormat("header %s is not a string", known[which].name);
                goto done;
            }
            kinds[which] = (Span){value, size};
        }
    }
    result = 0;
    goto done;
runs_past:
    *message = PyUnicode_FromString("header runs past the headers");
done:
    Py_XDECREF(name_set);
    return result;
}

/* -- The decoder ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyTypeObject *payload_part; /* a tuple subclass without fields of its own: a NamedTuple */
    PyObject *other;            /* other(message_type, event_type, exception_type,
                                         error_code, error_message, payload) -> event */
    PyObject *error;            /* error(message, events): EventStreamError */
    unsigned char *buffer;      /* the start of a message not complete yet */
    Py_ssize_t length, capacity;
    Py_ssize_t need; /* bytes the buffer must hold before it is read again */
    int failed;
    PyObject *exception; /* read(): the exception or error message that ended the stream */
    PyObject *parser;    /* attach(): what read() feeds and times */
    int parser_is_c;
    int broken; /* read(): the bytes were not an event stream */
} Decoder;

static PyTypeObject *tokens_type; /* Tokens, made at import */

/* read()'s way through read_message: PayloadParts to `tokens` (a Tokens, else anything
 * with feed(payload) -> int), their token events counted in `found`. */
typedef struct {
    PyObject *tokens;
    int is_c;
    Py_ssize_t found;
} Sink;

#define ENDED 1 /* read_message: the stream's exception came; read no further */

/* The prelude at m checked; its total length in *total. As _check_prelude. */
static int check_prelude(const unsigned char *m, Py_ssize_t *total, PyObject **message) {
    uint32_t length = be32(m), headers = be32(m + 4);
    if (crc32_update(0, m, 8) != be32(m + 8)) {
        *message = PyUnicode_FromString("prelude checksum mismatch");
        return -1;
    }
    if (length < MIN_MESSAGE_LENGTH) {
        *message = PyUnicode_FromFormat("message length %lu below the minimum of %d",
                                        (unsigned long)length, MIN_MESSAGE_LENGTH);
        return -1;
    }
    if (headers > MAX_HEADERS_LENGTH) {
        *message = PyUnicode_FromFormat("headers length %lu above the maximum of %d",
                                        (unsigned long)headers, MAX_HEADERS_LENGTH);
        return -1;
    }
    if (headers > length - MIN_MESSAGE_LENGTH) {
        *message = PyUnicode_FromFormat("headers length %lu does not fit in message length %lu",
                                        (unsigned long)headers, (unsigned long)length);
        return -1;
    }
    uint32_t payload = length - headers - MIN_MESSAGE_LENGTH;
    if (payload > MAX_PAYLOAD_LENGTH) {
        *message = PyUnicode_FromFormat("payload length %lu above the maximum of %d",
                                        (unsigned long)payload, MAX_PAYLOAD_LENGTH);
        return -1;
    }
    *total = (Py_ssize_t)length;
    return 0;
}

static PyObject *span_str(Span s) {
    if (s.at == NULL) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8((const char *)s.at, s.length, "strict");
}

/* The whole message at m (its prelude checked) appended to events as its event; with a
 * sink, a PayloadPart's payload goes to its Tokens, an exception or error message is kept
 * in self->exception (ENDED) and any other message is passed over. */
static int read_message(Decoder *self, const unsigned char *m, Py_ssize_t total,
                        PyObject *events, PyObject **message, Sink *sink) {
    Py_ssize_t headers = (Py_ssize_t)be32(m + 4);
    const unsigned char *stop = m + total - 4; /* the message CRC */
    if (crc32_update(be32(m + 8), m + 8, (size_t)(total - 12)) != be32(stop)) {
        *message = PyUnicode_FromString("message checksum mismatch");
        return -1;
    }
    Span kinds[K_COUNT];
    if (read_headers(m + PRELUDE_LENGTH, headers, kinds, message) < 0) return -1;
    const unsigned char *payload = m + PRELUDE_LENGTH + headers;
    if (sink != NULL) {
        if (span_is(kinds[K_MESSAGE_TYPE], "event", 5)
            && span_is(kinds[K_EVENT_TYPE], "PayloadPart", 11)) {
            Py_ssize_t found;
            if (sink->is_c) {
                found = tokens_feed((Tokens *)sink->tokens, payload, stop - payload);
            } else {
                PyObject *answer = PyObject_CallMethod(sink->tokens, "feed", "y#", payload,
                                                       (Py_ssize_t)(stop - payload));
                found = answer == NULL ? -1 : PyLong_AsSsize_t(answer);
                Py_XDECREF(answer);
            }
            if (found < 0) return -1;
            sink->found += found;
            return 0;
        }
        if (!span_is(kinds[K_MESSAGE_TYPE], "exception", 9)
            && !span_is(kinds[K_MESSAGE_TYPE], "error", 5))
            return 0;
    }
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)payload, stop - payload);
    if (bytes == NULL) return -1;
    PyObject *event;
    if (span_is(kinds[K_MESSAGE_TYPE], "event", 5) && span_is(kinds[K_EVENT_TYPE], "PayloadPart", 11)) {
        event = self->payload_part->tp_alloc(self->payload_part, 1); /* as tuple.__new__ */
        if (event == NULL) {
            Py_DECREF(bytes);
            return -1;
        }
        PyTuple_SET_ITEM(event, 0, bytes);
    } else {
        PyObject *args[K_COUNT + 1];
        int made = 0;
        for (; made < K_COUNT; made++)
            if ((args[made] = span_str(kinds[made])) == NULL) break;
        if (made == K_COUNT) {
            args[K_COUNT] = bytes;
            event = PyObject_Vectorcall(self->other, args, K_COUNT + 1, NULL);
        } else {
            event = NULL;
        }
        while (made--) Py_DECREF(args[made]);
        Py_DECREF(bytes);
        if (event == NULL) return -1;
    }
    if (sink != NULL) {
        Py_XSETREF(self->exception, event);
        return ENDED;
    }
    int appended = PyList_Append(events, event);
    Py_DECREF(event);
    return appended;
}

/* Decodes the whole messages at p; the offset where the rest starts, or -1. */
static Py_ssize_t scan(Decoder *self, const unsigned char *p, Py_ssize_t n, PyObject *events,
                       PyObject **message, Sink *sink) {
    Py_ssize_t at = 0;
    while (n - at >= PRELUDE_LENGTH) {
        Py_ssize_t total;
        if (check_prelude(p + at, &total, message) < 0) return -1;
        if (n - at < total) {
            self->need = total;
            return at;
        }
        int read = read_message(self, p + at, total, events, message, sink);
        if (read < 0) return -1;
        at += total;
        if (read == ENDED) return n; /* the rest is not read */
    }
    self->need = PRELUDE_LENGTH;
    return at;
}

static int append(Decoder *self, const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t wanted = self->length + n;
    if (wanted > self->capacity) {
        Py_ssize_t capacity = self->capacity * 2;
        if (capacity < wanted) capacity = wanted;
        if (capacity < self->need) capacity = self->need; /* a known message: once */
        unsigned char *grown = PyMem_Realloc(self->buffer, (size_t)capacity);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->buffer = grown;
        self->capacity = capacity;
    }
    memcpy(self->buffer + self->length, p, (size_t)n);
    self->length = wanted;
    return 0;
}

static void empty(Decoder *self) {
    self->length = 0;
    self->need = PRELUDE_LENGTH;
    if (self->capacity > KEEP_CAPACITY) {
        PyMem_Free(self->buffer);
        self->buffer = NULL;
        self->capacity = 0;
    }
}

/* Marks the decoder failed and raises error(message, events) (or lets a set exception be). */
static PyObject *fail(Decoder *self, PyObject *message, PyObject *events) {
    self->failed = 1;
    empty(self);
    if (message == NULL) return NULL; /* an exception is set: MemoryError, or from Python */
    PyObject *made = events != NULL ? Py_NewRef(events) : PyList_New(0);
    if (made != NULL) {
        PyObject *error = PyObject_CallFunctionObjArgs(self->error, message, made, NULL);
        if (error != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(error), error);
            Py_DECREF(error);
        }
        Py_DECREF(made);
    }
    Py_DECREF(message);
    return NULL;
}

/* feed and read: the events completed (a list), or with a sink NULL and 0 (or -1
 * with an error set); a message cut short is kept for the next call. */
static PyObject *decode(Decoder *self, PyObject *data, Sink *sink, int *failed) {
    *failed = 0;
    if (self->failed) {
        *failed = 1;
        return fail(self, PyUnicode_FromString("the decoder failed earlier"), NULL);
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        *failed = 1;
        return NULL;
    }
    const unsigned char *p = view.buf;
    Py_ssize_t n = view.len;
    PyObject *message = NULL;
    PyObject *events = NULL;
    if (sink == NULL && (events = PyList_New(0)) == NULL) goto error;
    if (self->length > 0) {
        /* complete the buffered message from the front of the data: only its bytes are
         * copied, the messages after it are read where they lie */
        for (;;) {
            Py_ssize_t take = self->need - self->length;
            if (take > n) take = n;
            if (append(self, p, take) < 0) goto error;
            p += take;
            n -= take;
            if (self->length < self->need) goto done;
            if (self->need == PRELUDE_LENGTH) {
                Py_ssize_t total;
                if (check_prelude(self->buffer, &total, &message) < 0) goto error;
                self->need = total;
                continue;
            }
            int read = read_message(self, self->buffer, self->length, events, &message, sink);
            if (read < 0) goto error;
            empty(self);
            if (read == ENDED) goto done;
            break;
        }
    }
    Py_ssize_t at = scan(self, p, n, events, &message, sink);
    if (at < 0 || (at < n && append(self, p + at, n - at) < 0)) goto error;
done:
    PyBuffer_Release(&view);
    return events;
error:
    PyBuffer_Release(&view);
    *failed = 1;
    fail(self, message, events);
    Py_XDECREF(events);
    return NULL;
}

static PyObject *decoder_feed(Decoder *self, PyObject *data) {
    int failed;
    return decode(self, data, NULL, &failed);
}

static PyObject *decoder_attach(Decoder *self, PyObject *parser) {
    Py_XSETREF(self->parser, Py_NewRef(parser));
    self->parser_is_c = PyObject_TypeCheck(parser, tokens_type);
    Py_RETURN_NONE;
}

/* read(data): a streaming call's body bytes, cut anywhere, in one call: PayloadParts to the
 * attached parser, and the token events they completed timed now, in C for a Tokens (else by
 * the parser's time(count, now_ns)). Bytes that are not an event stream set `broken`
 * instead of raising; after that, or after an exception message, bytes are not read. */
static PyObject *decoder_read(Decoder *self, PyObject *data) {
    if (self->parser == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "read() before attach()");
        return NULL;
    }
    if (self->broken || self->exception != NULL) Py_RETURN_NONE;
    Sink sink = {self->parser, self->parser_is_c, 0};
    int failed;
    decode(self, data, &sink, &failed);
    if (failed) {
        if (!PyErr_ExceptionMatches(self->error)) return NULL; /* MemoryError, ... */
        PyErr_Clear();
        self->broken = 1;
        Py_RETURN_NONE;
    }
    if (sink.found > 0 && self->exception == NULL) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now); /* time.monotonic_ns()'s clock */
        int64_t now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
        if (sink.is_c) {
            if (tokens_time((Tokens *)self->parser, sink.found, now_ns) < 0) return NULL;
        } else {
            PyObject *done = PyObject_CallMethod(self->parser, "time", "nL", sink.found,
                                                 (long long)now_ns);
            if (done == NULL) return NULL;
            Py_DECREF(done);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *decoder_broken(Decoder *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->broken);
}

static PyObject *decoder_close(Decoder *self, PyObject *unused) {
    (void)unused;
    if (self->length > 0) return fail(self, PyUnicode_FromString("the stream ended inside a message"), NULL);
    Py_RETURN_NONE;
}

static PyObject *decoder_pending(Decoder *self, void *closure) {
    (void)closure;
    return PyLong_FromSsize_t(self->length);
}

static PyObject *decoder_exception(Decoder *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->exception != NULL ? self->exception : Py_None);
}

static PyObject *decoder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *payload_part, *other, *error;
    static char *names[] = {"payload_part", "other", "error", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:Decoder", names, &payload_part, &other, &error))
        return NULL;
    /* tp_alloc of one item and nothing else to set: so a tuple subclass with no fields */
    if (!PyType_Check(payload_part) || !PyType_IsSubtype((PyTypeObject *)payload_part, &PyTuple_Type)
        || ((PyTypeObject *)payload_part)->tp_basicsize != PyTuple_Type.tp_basicsize
        || ((PyTypeObject *)payload_part)->tp_itemsize != PyTuple_Type.tp_itemsize) {
        PyErr_SetString(PyExc_TypeError, "payload_part must be a NamedTuple class");
        return NULL;
    }
    if (!PyCallable_Check(other)) {
        PyErr_SetString(PyExc_TypeError, "other must be callable");
        return NULL;
    }
    if (!PyExceptionClass_Check(error)) {
        PyErr_SetString(PyExc_TypeError, "error must be an exception class");
        return NULL;
    }
    Decoder *self = (Decoder *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->payload_part = (PyTypeObject *)Py_NewRef(payload_part);
    self->other = Py_NewRef(other);
    self->error = Py_NewRef(error);
    self->need = PRELUDE_LENGTH;
    return (PyObject *)self;
}

static int decoder_traverse(Decoder *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->payload_part);
    Py_VISIT(self->other);
    Py_VISIT(self->error);
    Py_VISIT(self->exception);
    Py_VISIT(self->parser);
    return 0;
}

static int decoder_clear(Decoder *self) {
    Py_CLEAR(self->payload_part);
    Py_CLEAR(self->other);
    Py_CLEAR(self->error);
    Py_CLEAR(self->exception);
    Py_CLEAR(self->parser);
    return 0;
}

static void decoder_dealloc(Decoder *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    decoder_clear(self);
    PyMem_Free(self->buffer);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyMethodDef decoder_methods[] = {
    {"feed", (PyCFunction)decoder_feed, METH_O,
     "feed(data) -> list of events completed by these bytes; an incomplete message's bytes\n"
     "are kept. Raises error(message, events) on malformed bytes; then the decoder is unusable."},
    {"attach", (PyCFunction)decoder_attach, METH_O,
     "attach(parser): the token parser read() feeds (a Tokens: fed and timed in C)."},
    {"read", (PyCFunction)decoder_read, METH_O,
     "read(data): body bytes fed to the attached parser, its token events timed now;\n"
     "never raises for bad bytes: `broken` says so."},
    {"close", (PyCFunction)decoder_close, METH_NOARGS,
     "close(): the stream ended; raises error when a message was cut short."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef decoder_getset[] = {
    {"pending", (getter)decoder_pending, NULL, "Bytes held of a message not complete yet.", NULL},
    {"broken", (getter)decoder_broken, NULL, "read(): the bytes were not an event stream.",
     NULL},
    {"exception", (getter)decoder_exception, NULL,
     "read(): the exception message that ended the stream, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot decoder_slots[] = {
    {Py_tp_doc, "Decoder(payload_part, other, error): an incremental event-stream decoder."},
    {Py_tp_new, decoder_new},
    {Py_tp_dealloc, decoder_dealloc},
    {Py_tp_traverse, decoder_traverse},
    {Py_tp_clear, decoder_clear},
    {Py_tp_methods, decoder_methods},
    {Py_tp_getset, decoder_getset},
    {0, NULL},
};

static PyType_Spec decoder_spec = {
    "loadgen.transport._eventstreamc.Decoder", sizeof(Decoder), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE, decoder_slots,
};

/* crc32(data, value=0): zlib.crc32's answer, from the tables above (for the tests). */
static PyObject *module_crc32(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    unsigned long value = 0;
    if (!PyArg_ParseTuple(args, "y*|k:crc32", &view, &value)) return NULL;
    uint32_t crc = crc32_update((uint32_t)value, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

static PyMethodDef methods[] = {
    {"crc32", module_crc32, METH_VARARGS, "crc32(data, value=0) -> int, as zlib.crc32."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_eventstreamc",
    "The event-stream decoder's scanning, CRCs and headers in C; eventstream.py is the reference.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__eventstreamc(void) {
    crc_init();
    PyObject *made = PyModule_Create(&module);
    if (made == NULL) return NULL;
    PyObject *type = PyType_FromSpec(&decoder_spec);
    if (type == NULL || PyModule_AddObjectRef(made, "Decoder", type) < 0) {
        Py_XDECREF(type);
        Py_DECREF(made);
        return NULL;
    }
    Py_DECREF(type);
    type = tokens_type_new();
    if (type == NULL || PyModule_AddObjectRef(made, "Tokens", type) < 0) {
        Py_XDECREF(type);
        Py_DECREF(made);
        return NULL;
    }
    tokens_type = (PyTypeObject *)type; /* the module keeps it alive */
    Py_DECREF(type);
    return made;
}
