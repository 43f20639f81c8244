/* The token parser in C (_tokensc.c), shared with the event-stream decoder (_eventstreamc.c)
 * so that a PayloadPart's payload goes from the message to the token count without becoming
 * a Python object. tokens.py's PyTokenParser is the reference. */
#ifndef LOADGEN_TOKENSC_H
#define LOADGEN_TOKENSC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    unsigned char *at;
    Py_ssize_t length, capacity;
} Buffer;

typedef struct {
    PyObject_HEAD
    int format; /* FORMAT_* */
    int done;   /* saw `data: [DONE]` */
    PyObject *reported; /* usage.completion_tokens or details.generated_tokens, or None */
    Py_ssize_t tokens, events, malformed, parts;
    Buffer tail;           /* the bytes after the last line end */
    Buffer data;           /* an SSE event's data lines so far, joined with LF */
    Py_ssize_t data_lines; /* how many: an event with one empty data line still has data */
    PyObject *classify;    /* tokens.classify: the events C leaves to Python */
    /* when the token events came (CLOCK_MONOTONIC, time.monotonic_ns's clock) */
    int64_t first_ns, last_ns; /* 0: none yet */
    Buffer gaps;               /* int64 µs between consecutive token events */
} Tokens;

enum { FORMAT_SSE, FORMAT_JSONL, FORMAT_RAW };

/* The token events a payload completed, as Tokens.feed; -1 with an exception set. */
Py_ssize_t tokens_feed(Tokens *self, const unsigned char *p, Py_ssize_t n);

/* `count` token events arrived at now_ns, as Tokens.time; -1 with an exception set. */
int tokens_time(Tokens *self, Py_ssize_t count, int64_t now_ns);

/* The Tokens type, made once by the module; NULL with an exception set. */
PyObject *tokens_type_new(void);

#endif
