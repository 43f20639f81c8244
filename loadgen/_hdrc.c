/* Many values into an hdrh histogram's counts in one call: a stream's token gaps are tens to
 * thousands of values, recorded into three histograms each; one Python call per value was a
 * tenth of the streaming client's time. histograms.record_all is the caller and
 * histograms.record_value the reference (tests/test_metrics.py compares them). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* The layout histograms.py asserts: 1 µs .. 1 h at 3 figures, 2048 sub-buckets, 23552
 * counters of 8 bytes. */
#define COUNTS_LEN 23552

static Py_ssize_t counts_index(int64_t value) {
    if (value < 2048) return (Py_ssize_t)value;
    int shift = 64 - __builtin_clzll((unsigned long long)value) - 11; /* bit_length - 11 */
    return ((Py_ssize_t)shift << 10) + (Py_ssize_t)(value >> shift);
}

/* record_counts(address, values) -> (recorded, lowest, highest): each value >= 0 within the
 * range counted at its index in the int64 counters at address; the rest dropped, as
 * record_value drops them. lowest and highest are of the recorded values (0, 0 if none). */
static PyObject *record_counts(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long address;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "Ky*:record_counts", &address, &view)) return NULL;
    if (view.itemsize != 8 || view.len % 8 != 0
        || (view.format != NULL && view.format[0] != 'q' && view.format[0] != 'l')) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "values must be an array('q')");
        return NULL;
    }
    int64_t *counts = (int64_t *)(uintptr_t)address;
    const int64_t *values = view.buf;
    Py_ssize_t n = view.len / 8, recorded = 0;
    int64_t lowest = INT64_MAX, highest = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t value = values[i];
        if (value < 0) continue;
        Py_ssize_t index = counts_index(value);
        if (index >= COUNTS_LEN) continue;
        counts[index]++;
        recorded++;
        if (value < lowest) lowest = value;
        if (value > highest) highest = value;
    }
    PyBuffer_Release(&view);
    if (!recorded) lowest = highest = 0;
    return Py_BuildValue("nLL", recorded, (long long)lowest, (long long)highest);
}

static PyMethodDef methods[] = {
    {"record_counts", record_counts, METH_VARARGS,
     "record_counts(address, values) -> (recorded, lowest, highest)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hdrc", "Bulk recording into hdrh counters (histograms.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__hdrc(void) { return PyModule_Create(&module); }
