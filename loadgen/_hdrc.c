/* hdrh histograms' counters, read and written in C where Python paid per value or per
 * counter: record_counts takes a stream's token gaps (tens to thousands of values, into three
 * histograms each; one Python call per value was a tenth of the streaming client's time);
 * move_list and add_range fold the hot path's list counters and the pending histograms into
 * the run's each second, over the range in use only (the fold was a millisecond's stall a
 * second). histograms.py calls them and keeps the Python reference they are tested against. */
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

/* move_list(counts, first, end, addresses) -> moved: the list counters counts[first:end]
 * added to the int64 counters at each address, at the same index, and zeroed; their sum.
 * The hot path counts in a list (histograms.py); this folds them in, reading only the used
 * range, where the Python way added all 23,552 counters of each histogram. */
static PyObject *move_list(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *counts, *addresses;
    Py_ssize_t first, end;
    if (!PyArg_ParseTuple(args, "O!nnO!:move_list", &PyList_Type, &counts, &first, &end,
                          &PyTuple_Type, &addresses))
        return NULL;
    if (first < 0 || end > PyList_GET_SIZE(counts) || end > COUNTS_LEN || first > end) {
        PyErr_SetString(PyExc_IndexError, "move_list: range outside the counters");
        return NULL;
    }
    Py_ssize_t targets = PyTuple_GET_SIZE(addresses);
    int64_t *into[8];
    if (targets > 8) {
        PyErr_SetString(PyExc_ValueError, "move_list: at most 8 histograms");
        return NULL;
    }
    for (Py_ssize_t t = 0; t < targets; t++) {
        unsigned long long address = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(addresses, t));
        if (PyErr_Occurred()) return NULL;
        into[t] = (int64_t *)(uintptr_t)address;
    }
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL) return NULL;
    long long moved = 0;
    for (Py_ssize_t i = first; i < end; i++) {
        PyObject *item = PyList_GET_ITEM(counts, i);
        long long value = PyLong_AsLongLong(item);
        if (value == -1 && PyErr_Occurred()) {
            Py_DECREF(zero);
            return NULL;
        }
        if (value == 0) continue;
        for (Py_ssize_t t = 0; t < targets; t++) into[t][i] += value;
        moved += value;
        PyList_SET_ITEM(counts, i, Py_NewRef(zero));
        Py_DECREF(item);
    }
    Py_DECREF(zero);
    return PyLong_FromLongLong(moved);
}

/* add_range(target, source, first, end): the int64 counters source[first:end] added to
 * target's at the same index (histograms.add_counts, for the range known to be in use). */
static PyObject *add_range(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long target, source;
    Py_ssize_t first, end;
    if (!PyArg_ParseTuple(args, "KKnn:add_range", &target, &source, &first, &end)) return NULL;
    if (first < 0 || end > COUNTS_LEN || first > end) {
        PyErr_SetString(PyExc_IndexError, "add_range: range outside the counters");
        return NULL;
    }
    int64_t *to = (int64_t *)(uintptr_t)target;
    const int64_t *from = (const int64_t *)(uintptr_t)source;
    for (Py_ssize_t i = first; i < end; i++) to[i] += from[i];
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"record_counts", record_counts, METH_VARARGS,
     "record_counts(address, values) -> (recorded, lowest, highest)."},
    {"move_list", move_list, METH_VARARGS,
     "move_list(counts, first, end, addresses) -> the sum of the counters moved."},
    {"add_range", add_range, METH_VARARGS,
     "add_range(target, source, first, end): source's counters in range added to target's."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hdrc", "Bulk recording into hdrh counters (histograms.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__hdrc(void) { return PyModule_Create(&module); }
