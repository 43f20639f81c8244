/* The token parser's hot part in C: a PayloadPart's bytes cut into SSE events or JSON lines,
 * and each event's JSON read just enough to tell whether it carries generated text and a
 * token count, without building it. tokens.py's PyTokenParser is the reference and
 * tokens.classify the rule: the same payloads give the same counts (tests/test_tokens.py runs
 * every test on both, and hypothesis compares them on any bytes).
 *
 * The JSON reader is a validator that takes what json.loads takes (RFC 8259 plus NaN,
 * Infinity and -Infinity) and looks at the few keys the rule reads, the last of a repeated
 * key winning as in a dict. What it cannot settle cheaply goes to tokens.classify: an escaped
 * key, an integer of more than 18 digits, nesting deeper than MAX_DEPTH.
 */
#include "_tokensc.h"

#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 200 /* deeper goes to Python, whose recursion limit decides */
#define KEEP_CAPACITY (64 * 1024) /* an emptied buffer larger than this is freed */

/* -- Buffers ---------------------------------------------------------------------------- */

static int buffer_add(Buffer *b, const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t wanted = b->length + n;
    if (wanted > b->capacity) {
        Py_ssize_t capacity = b->capacity * 2;
        if (capacity < wanted) capacity = wanted;
        if (capacity < 256) capacity = 256;
        unsigned char *grown = PyMem_Realloc(b->at, (size_t)capacity);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->at = grown;
        b->capacity = capacity;
    }
    if (n) memcpy(b->at + b->length, p, (size_t)n);
    b->length = wanted;
    return 0;
}

static void buffer_clear(Buffer *b) {
    b->length = 0;
    if (b->capacity > KEEP_CAPACITY) {
        PyMem_Free(b->at);
        b->at = NULL;
        b->capacity = 0;
    }
}

/* -- UTF-8, as Python's strict decoder takes it ------------------------------------------- */

static int is_utf8(const unsigned char *p, Py_ssize_t n) {
    const unsigned char *end = p + n;
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        Py_ssize_t left = end - p;
        if (c >= 0xC2 && c <= 0xDF) {
            if (left < 2 || (p[1] & 0xC0) != 0x80) return 0;
            p += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
            if (c == 0xED && p[1] > 0x9F) return 0; /* a surrogate */
            p += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80
                || (p[3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
            if (c == 0xF4 && p[1] > 0x8F) return 0; /* above U+10FFFF */
            p += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* -- JSON, read for the rule ----------------------------------------------------------- */

/* Where a value sits, as the rule (tokens._tokens_in) looks at it. */
typedef enum {
    AT_NONE,    /* nothing read from it */
    AT_TOP,     /* the event */
    AT_COUNTED, /* usage or details: its count key */
    AT_TOKEN,   /* token: text */
    AT_CHOICES, /* choices: the first element */
    AT_CHOICE,  /* choices[0]: delta, text, message */
    AT_DELTA,   /* delta: content, reasoning_content, reasoning */
    AT_MESSAGE, /* message: content */
    AT_OUTPUTS, /* outputs: any element */
} Place;

enum { J_OTHER, J_OBJECT, J_ARRAY, J_STRING, J_INT };

typedef struct {
    int kind;          /* J_* */
    int text;          /* a string: not empty; an object or array: the rule's answer there */
    long long count;   /* an integer >= 0, or an object's count; else -1 */
} Value;

typedef struct {
    const unsigned char *p, *end;
    int depth;
    int defer; /* Python must decide */
    const char *count_key; /* AT_COUNTED's key: completion_tokens or generated_tokens */
} Reader;

static const Value NOTHING = {J_OTHER, 0, -1};

static void skip_space(Reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string at r->p (its quote): 0 and *text (not empty), *escaped; -1: not JSON. */
static int read_string(Reader *r, int *text, int *escaped, const unsigned char **start,
                       Py_ssize_t *length) {
    const unsigned char *p = r->p + 1, *end = r->end;
    *escaped = 0;
    *start = p;
    for (;;) {
        if (p >= end) return -1;
        unsigned char c = *p;
        if (c == '"') break;
        if (c < 0x20) return -1; /* json.loads is strict about control characters */
        if (c == '\\') {
            *escaped = 1;
            if (++p >= end) return -1;
            c = *p;
            if (c == 'u') {
                if (end - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) || !is_hex(p[3])
                    || !is_hex(p[4]))
                    return -1;
                p += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", c) || c == 0) return -1;
        }
        p++;
    }
    *length = p - *start;
    *text = *length > 0;
    r->p = p + 1;
    return 0;
}

static int literal(Reader *r, const char *word, Py_ssize_t length) {
    if (r->end - r->p < length || memcmp(r->p, word, (size_t)length) != 0) return -1;
    r->p += length;
    return 0;
}

/* A number at r->p; an integer's value in v->count (-1: negative), kind J_INT. */
static int read_number(Reader *r, Value *v) {
    const unsigned char *p = r->p, *end = r->end;
    int negative = 0;
    if (*p == '-') {
        negative = 1;
        p++;
        if (end - p >= 8 && memcmp(p, "Infinity", 8) == 0) {
            r->p = p + 8;
            *v = NOTHING;
            return 0;
        }
    }
    if (p >= end || *p < '0' || *p > '9') return -1;
    const unsigned char *digits = p;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    Py_ssize_t count = p - digits;
    int integer = 1;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return -1;
        while (p < end && *p >= '0' && *p <= '9') p++;
        integer = 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return -1;
        while (p < end && *p >= '0' && *p <= '9') p++;
        integer = 0;
    }
    r->p = p;
    *v = NOTHING;
    if (!integer) return 0;
    v->kind = J_INT;
    if (count > 18) {
        if (!negative) r->defer = 1; /* a count too big for us: Python's int */
        return 0;
    }
    long long value = 0;
    for (const unsigned char *d = digits; d < digits + count; d++) value = value * 10 + (*d - '0');
    v->count = negative && value != 0 ? -1 : value; /* -0 is 0, a count */
    return 0;
}

static int read_value(Reader *r, Place place, Value *v);

/* After an object's member or an array's item: 1 and past the comma if another follows, 0
 * and past `close` if it ends, -1 for anything else. */
static int next_member(Reader *r, unsigned char close) {
    skip_space(r);
    if (r->p >= r->end) return -1;
    if (*r->p == ',') {
        r->p++;
        skip_space(r);
        return 1;
    }
    if (*r->p != close) return -1;
    r->p++;
    return 0;
}

static int key_is(const unsigned char *key, Py_ssize_t length, const char *name) {
    Py_ssize_t n = (Py_ssize_t)strlen(name);
    return n == length && memcmp(key, name, (size_t)n) == 0;
}

/* What a key of an object at `place` is read as; AT_NONE for a key the rule ignores, and
 * *slot its index among the object's slots (-1: ignored). */
static Place key_place(Reader *r, Place place, const unsigned char *key, Py_ssize_t length,
                       int *slot) {
    *slot = -1;
    switch (place) {
    case AT_TOP:
        if (key_is(key, length, "usage")) { *slot = 0; return AT_COUNTED; }
        if (key_is(key, length, "details")) { *slot = 1; return AT_COUNTED; }
        if (key_is(key, length, "token")) { *slot = 2; return AT_TOKEN; }
        if (key_is(key, length, "choices")) { *slot = 3; return AT_CHOICES; }
        if (key_is(key, length, "outputs")) { *slot = 4; return AT_OUTPUTS; }
        if (key_is(key, length, "generated_text")) { *slot = 5; return AT_NONE; }
        return AT_NONE;
    case AT_COUNTED:
        if (key_is(key, length, r->count_key)) *slot = 0;
        return AT_NONE;
    case AT_TOKEN:
        if (key_is(key, length, "text")) *slot = 0;
        return AT_NONE;
    case AT_CHOICE:
        if (key_is(key, length, "delta")) { *slot = 0; return AT_DELTA; }
        if (key_is(key, length, "text")) { *slot = 1; return AT_NONE; }
        if (key_is(key, length, "message")) { *slot = 2; return AT_MESSAGE; }
        return AT_NONE;
    case AT_DELTA:
        if (key_is(key, length, "content")) *slot = 0;
        else if (key_is(key, length, "reasoning_content")) *slot = 1;
        else if (key_is(key, length, "reasoning")) *slot = 2;
        return AT_NONE;
    case AT_MESSAGE:
        if (key_is(key, length, "content")) *slot = 0;
        return AT_NONE;
    default:
        return AT_NONE;
    }
}

#define SLOTS 6
#define IS_TEXT(v) ((v).kind == J_STRING && (v).text)
#define IS(v, k) ((v).kind == (k) && (v).text)

/* The object at r->p ('{'); v->text and v->count are the rule's answer at `place`. For the
 * event itself (AT_TOP), usage's count is in slot 0, details' in slot 1 (reported by the
 * caller through v->count: details wins, as it is read after usage). */
static int read_object(Reader *r, Place place, Value *v, Value top[2]) {
    Value slots[SLOTS];
    for (int i = 0; i < SLOTS; i++) slots[i] = NOTHING;
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
    } else {
        for (;;) {
            if (r->p >= r->end || *r->p != '"') return -1;
            int text, escaped, slot = -1;
            const unsigned char *key;
            Py_ssize_t length;
            if (read_string(r, &text, &escaped, &key, &length) < 0) return -1;
            Place inner = AT_NONE;
            if (place != AT_NONE) {
                if (escaped) r->defer = 1; /* "tok\u0065n" is token: Python reads it */
                inner = key_place(r, place, key, length, &slot);
                if (place == AT_TOP && inner == AT_COUNTED)
                    r->count_key = slot == 0 ? "completion_tokens" : "generated_tokens";
                skip_space(r);
                if (r->p >= r->end || *r->p != ':') return -1;
                r->p++;
                skip_space(r);
                Value found;
                if (read_value(r, inner, &found) < 0) return -1;
                if (slot >= 0) slots[slot] = found; /* the last of a repeated key wins */
            } else {
                skip_space(r);
                if (r->p >= r->end || *r->p != ':') return -1;
                r->p++;
                skip_space(r);
                Value ignored;
                if (read_value(r, AT_NONE, &ignored) < 0) return -1;
            }
            int more = next_member(r, '}');
            if (more < 0) return -1;
            if (!more) break;
        }
    }
    v->kind = J_OBJECT;
    v->text = 0;
    v->count = -1;
    switch (place) {
    case AT_TOP:
        v->text = IS(slots[2], J_OBJECT) || IS(slots[3], J_ARRAY) || IS(slots[4], J_ARRAY)
                  || IS_TEXT(slots[5]);
        if (top != NULL) {
            top[0] = slots[0];
            top[1] = slots[1];
        }
        break;
    case AT_COUNTED:
        v->count = slots[0].kind == J_INT ? slots[0].count : -1;
        break;
    case AT_TOKEN:
    case AT_MESSAGE:
        v->text = IS_TEXT(slots[0]);
        break;
    case AT_CHOICE:
        v->text = IS(slots[0], J_OBJECT) || IS_TEXT(slots[1]) || IS(slots[2], J_OBJECT);
        break;
    case AT_DELTA:
        v->text = IS_TEXT(slots[0]) || IS_TEXT(slots[1]) || IS_TEXT(slots[2]);
        break;
    default:
        break;
    }
    return 0;
}

static int read_array(Reader *r, Place place, Value *v) {
    v->kind = J_ARRAY;
    v->text = 0;
    v->count = -1;
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return 0;
    }
    for (Py_ssize_t index = 0;; index++) {
        Place inner = place == AT_CHOICES && index == 0 ? AT_CHOICE : AT_NONE;
        Value item;
        if (read_value(r, inner, &item) < 0) return -1;
        if (place == AT_CHOICES && index == 0) v->text = IS(item, J_OBJECT);
        else if (place == AT_OUTPUTS && IS_TEXT(item)) v->text = 1;
        int more = next_member(r, ']');
        if (more <= 0) return more;
    }
}

static int read_value(Reader *r, Place place, Value *v) {
    if (r->p >= r->end) return -1;
    *v = NOTHING;
    unsigned char c = *r->p;
    int result;
    switch (c) {
    case '{':
    case '[':
        if (++r->depth > MAX_DEPTH) {
            r->defer = 1;
            return -1;
        }
        result = c == '{' ? read_object(r, place, v, NULL)
                          : read_array(r, place, v);
        r->depth--;
        return result;
    case '"': {
        int text, escaped;
        const unsigned char *start;
        Py_ssize_t length;
        if (read_string(r, &text, &escaped, &start, &length) < 0) return -1;
        v->kind = J_STRING;
        v->text = text;
        return 0;
    }
    case 't':
        return literal(r, "true", 4);
    case 'f':
        return literal(r, "false", 5);
    case 'n':
        return literal(r, "null", 4);
    case 'N':
        return literal(r, "NaN", 3);
    case 'I':
        return literal(r, "Infinity", 8);
    default:
        return read_number(r, v);
    }
}

/* An event's JSON: 1 if it carries text, 0 if not, -1 not JSON, -2 for Python to say; a
 * reported count in *reported (-1: none). */
static int classify(const unsigned char *p, Py_ssize_t n, long long *reported) {
    *reported = -1;
    if (!is_utf8(p, n)) return -1;
    Reader r = {p, p + n, 0, 0, NULL};
    skip_space(&r);
    Value v, top[2] = {NOTHING, NOTHING};
    int result;
    if (r.p < r.end && *r.p == '{') {
        r.depth = 1;
        result = read_object(&r, AT_TOP, &v, top);
    } else {
        result = read_value(&r, AT_NONE, &v);
        v.text = 0; /* not an object: no token */
    }
    if (r.defer) return -2;
    if (result < 0) return -1;
    skip_space(&r);
    if (r.p != r.end) return -1; /* extra data */
    if (top[0].kind == J_OBJECT && top[0].count >= 0) *reported = top[0].count;
    if (top[1].kind == J_OBJECT && top[1].count >= 0) *reported = top[1].count;
    return v.text ? 1 : 0;
}

/* -- SSE events and JSON lines ---------------------------------------------------------- */

static int is_space(unsigned char c) { /* bytes.strip()'s */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c';
}

static int blank(const unsigned char *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (!is_space(p[i])) return 0;
    return 1;
}

/* One event's JSON, counted: the token events it makes (0 or 1), or -1 with an error. */
static int json_event(Tokens *self, const unsigned char *p, Py_ssize_t n) {
    self->events++;
    long long reported;
    int found = classify(p, n, &reported);
    if (found == -2) { /* Python's rule: (found, reported or None) */
        PyObject *answer = PyObject_CallFunction(self->classify, "y#", p, n);
        if (answer == NULL) return -1;
        if (!PyTuple_Check(answer) || PyTuple_GET_SIZE(answer) != 2) {
            Py_DECREF(answer);
            PyErr_SetString(PyExc_TypeError, "classify must return (found, reported)");
            return -1;
        }
        found = (int)PyLong_AsLong(PyTuple_GET_ITEM(answer, 0));
        PyObject *count = PyTuple_GET_ITEM(answer, 1);
        if (found == -1 && PyErr_Occurred()) {
            Py_DECREF(answer);
            return -1;
        }
        if (count != Py_None) Py_SETREF(self->reported, Py_NewRef(count));
        Py_DECREF(answer);
    } else if (reported >= 0) {
        PyObject *count = PyLong_FromLongLong(reported);
        if (count == NULL) return -1;
        Py_SETREF(self->reported, count);
    }
    if (found < 0) {
        self->malformed++;
        return 0;
    }
    self->tokens += found;
    return found;
}

/* The SSE event whose data lines are gathered. */
static int sse_event(Tokens *self) {
    Buffer *data = &self->data;
    Py_ssize_t n = data->length;
    self->data_lines = 0;
    data->length = 0; /* the bytes stay readable until the next line is added */
    if (n == 0) return 0; /* no data: no event */
    const unsigned char *p = data->at;
    if ((n == 6 && memcmp(p, "[DONE]", 6) == 0) || n < 16) {
        Py_ssize_t a = 0, b = n;
        while (a < b && is_space(p[a])) a++;
        while (b > a && is_space(p[b - 1])) b--;
        if (b - a == 6 && memcmp(p + a, "[DONE]", 6) == 0) {
            self->done = 1;
            return 0;
        }
    }
    int found = json_event(self, p, n);
    if (data->capacity > KEEP_CAPACITY) buffer_clear(data);
    return found;
}

/* One line, without its LF: the token events it completes, or -1 with an error. */
static int line(Tokens *self, const unsigned char *p, Py_ssize_t n) {
    if (self->format == FORMAT_JSONL) return blank(p, n) ? 0 : json_event(self, p, n);
    if (n > 0 && p[n - 1] == '\r') n--;
    if (n == 0) return self->data_lines ? sse_event(self) : 0; /* a blank line ends the event */
    const unsigned char *value;
    Py_ssize_t length;
    if (n >= 5 && memcmp(p, "data:", 5) == 0) {
        value = p + 5;
        length = n - 5;
        if (length > 0 && *value == ' ') {
            value++;
            length--;
        }
    } else if (n == 4 && memcmp(p, "data", 4) == 0) { /* no colon: an empty value */
        value = p;
        length = 0;
    } else {
        return 0; /* comments (":...") and other fields are ignored */
    }
    if (self->data_lines++ && buffer_add(&self->data, (const unsigned char *)"\n", 1) < 0)
        return -1;
    return buffer_add(&self->data, value, length);
}

Py_ssize_t tokens_feed(Tokens *self, const unsigned char *p, Py_ssize_t n) {
    self->parts++;
    if (self->format == FORMAT_RAW) {
        if (n == 0) return 0;
        self->events++;
        return 1;
    }
    const unsigned char *end = p + n;
    const unsigned char *newline = memchr(p, '\n', (size_t)n);
    Py_ssize_t found = 0;
    int one;
    if (newline == NULL) /* no line ends here: keep it */
        return buffer_add(&self->tail, p, n) < 0 ? -1 : 0;
    if (self->tail.length) { /* the held bytes and this payload's first line are one line */
        if (buffer_add(&self->tail, p, newline - p) < 0) return -1;
        one = line(self, self->tail.at, self->tail.length);
        buffer_clear(&self->tail);
        if (one < 0) return -1;
        found += one;
        p = newline + 1;
        newline = memchr(p, '\n', (size_t)(end - p));
    }
    while (newline != NULL) {
        if ((one = line(self, p, newline - p)) < 0) return -1;
        found += one;
        p = newline + 1;
        newline = memchr(p, '\n', (size_t)(end - p));
    }
    if (p < end && buffer_add(&self->tail, p, end - p) < 0) return -1;
    return found;
}

/* Tokens that arrive in one read share its time: the first is a gap after the last read's,
 * the rest come 0 µs apart (PyTokenParser.time). */
int tokens_time(Tokens *self, Py_ssize_t count, int64_t now_ns) {
    if (count <= 0) return 0;
    int64_t gap;
    if (self->first_ns) {
        gap = (now_ns - self->last_ns) / 1000;
        if (buffer_add(&self->gaps, (const unsigned char *)&gap, sizeof gap) < 0) return -1;
    } else {
        self->first_ns = now_ns;
    }
    gap = 0;
    for (Py_ssize_t i = 1; i < count; i++)
        if (buffer_add(&self->gaps, (const unsigned char *)&gap, sizeof gap) < 0) return -1;
    self->last_ns = now_ns;
    return 0;
}

/* -- The Python type --------------------------------------------------------------------- */

static PyObject *array_type; /* array.array, for gaps_us() */

static PyObject *tokens_py_time(Tokens *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "time(count, now_ns)");
        return NULL;
    }
    Py_ssize_t count = PyLong_AsSsize_t(args[0]);
    long long now_ns = PyLong_AsLongLong(args[1]);
    if (PyErr_Occurred() || tokens_time(self, count, (int64_t)now_ns) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *tokens_gaps_us(Tokens *self, PyObject *unused) {
    (void)unused;
    const char *at = self->gaps.at != NULL ? (const char *)self->gaps.at : ""; /* NULL: None */
    return PyObject_CallFunction(array_type, "sy#", "q", at, self->gaps.length);
}

static PyObject *tokens_py_feed(Tokens *self, PyObject *payload) {
    Py_buffer view;
    if (PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE) < 0) return NULL;
    Py_ssize_t found = tokens_feed(self, view.buf, view.len);
    PyBuffer_Release(&view);
    return found < 0 ? NULL : PyLong_FromSsize_t(found);
}

static PyObject *tokens_py_close(Tokens *self, PyObject *unused) {
    (void)unused;
    Py_ssize_t found = 0;
    if (self->tail.length) {
        int one = line(self, self->tail.at, self->tail.length);
        buffer_clear(&self->tail);
        if (one < 0) return NULL;
        found += one;
    }
    if (self->data_lines) {
        int one = sse_event(self);
        if (one < 0) return NULL;
        found += one;
    }
    return PyLong_FromSsize_t(found);
}

static PyObject *tokens_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    int format;
    PyObject *classify;
    static char *names[] = {"format", "classify", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iO:Tokens", names, &format, &classify))
        return NULL;
    if (format < FORMAT_SSE || format > FORMAT_RAW) {
        PyErr_SetString(PyExc_ValueError, "format: 0 (sse), 1 (jsonl) or 2 (raw)");
        return NULL;
    }
    if (!PyCallable_Check(classify)) {
        PyErr_SetString(PyExc_TypeError, "classify must be callable");
        return NULL;
    }
    Tokens *self = (Tokens *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->format = format;
    self->reported = Py_NewRef(Py_None);
    self->classify = Py_NewRef(classify);
    return (PyObject *)self;
}

static int tokens_traverse(Tokens *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->reported);
    Py_VISIT(self->classify);
    return 0;
}

static int tokens_clear(Tokens *self) {
    Py_CLEAR(self->reported);
    Py_CLEAR(self->classify);
    return 0;
}

static void tokens_dealloc(Tokens *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    tokens_clear(self);
    PyMem_Free(self->tail.at);
    PyMem_Free(self->data.at);
    PyMem_Free(self->gaps.at);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyObject *tokens_get_done(Tokens *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->done);
}

static PyObject *tokens_get_reported(Tokens *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->reported);
}

static PyObject *tokens_get_pending(Tokens *self, void *closure) {
    (void)closure;
    return PyLong_FromSsize_t(self->tail.length);
}

static PyMethodDef tokens_methods[] = {
    {"feed", (PyCFunction)tokens_py_feed, METH_O,
     "feed(payload) -> the token events (raw: chunks) this payload completed."},
    {"close", (PyCFunction)tokens_py_close, METH_NOARGS,
     "close() -> the token events a last line or event without its end completed."},
    {"time", (PyCFunction)(void (*)(void))tokens_py_time, METH_FASTCALL,
     "time(count, now_ns): count token events arrived at now_ns (monotonic)."},
    {"gaps_us", (PyCFunction)tokens_gaps_us, METH_NOARGS,
     "gaps_us() -> array('q') of the µs between consecutive token events."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef tokens_members[] = {
    {"tokens", T_PYSSIZET, offsetof(Tokens, tokens), READONLY, "token events (sse, jsonl)"},
    {"events", T_PYSSIZET, offsetof(Tokens, events), READONLY, "events with data, lines, chunks"},
    {"malformed", T_PYSSIZET, offsetof(Tokens, malformed), READONLY, "events that are not JSON"},
    {"parts", T_PYSSIZET, offsetof(Tokens, parts), READONLY, "payloads fed"},
    {"first_token_ns", T_LONGLONG, offsetof(Tokens, first_ns), READONLY, "0: none yet"},
    {"last_token_ns", T_LONGLONG, offsetof(Tokens, last_ns), READONLY, "0: none yet"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef tokens_getset[] = {
    {"done", (getter)tokens_get_done, NULL, "saw `data: [DONE]`", NULL},
    {"reported_tokens", (getter)tokens_get_reported, NULL, "the count the stream reported",
     NULL},
    {"pending", (getter)tokens_get_pending, NULL, "bytes held after the last line end", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot tokens_slots[] = {
    {Py_tp_doc, "Tokens(format, classify): one stream's token events, in C."},
    {Py_tp_new, tokens_new},
    {Py_tp_dealloc, tokens_dealloc},
    {Py_tp_traverse, tokens_traverse},
    {Py_tp_clear, tokens_clear},
    {Py_tp_methods, tokens_methods},
    {Py_tp_members, tokens_members},
    {Py_tp_getset, tokens_getset},
    {0, NULL},
};

static PyType_Spec tokens_spec = {
    "loadgen.transport._eventstreamc.Tokens", sizeof(Tokens), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE, tokens_slots,
};

PyObject *tokens_type_new(void) {
    if (array_type == NULL) {
        PyObject *module = PyImport_ImportModule("array");
        if (module == NULL) return NULL;
        array_type = PyObject_GetAttrString(module, "array"); /* kept for the process */
        Py_DECREF(module);
        if (array_type == NULL) return NULL;
    }
    return PyType_FromSpec(&tokens_spec);
}
