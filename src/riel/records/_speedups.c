/* Fast path for the records section of a Kafka v2 record batch (riel.records._speedups).
 *
 * Byte-for-byte the same as riel.records.record_codec and the pure-Python fallback in
 * riel.records.fast_records; the tests hold all three against each other. Notable points of that
 * contract:
 *   - a varint is up to 10 bytes and is read against the end of the whole buffer (like the reference);
 *     the 10th byte may carry bits past 64, which the reference turns into a Python int, so values that
 *     do not fit in int64 ("big") are kept exact and turned into Python ints where they are used;
 *   - any negative key/value length (not only -1) means null;
 *   - every malformed input raises riel.records.errors.InvalidRecordError(CORRUPT_MESSAGE, message).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------ */
/* Errors                                                                                            */

/* Set InvalidRecordError(ErrorCode.CORRUPT_MESSAGE, message) (imported lazily: errors are the slow
 * path) and return NULL. */
static PyObject *
corrupt(const char *format, ...)
{
    PyObject *message = NULL, *errors = NULL, *codes = NULL, *cls = NULL, *code_enum = NULL;
    PyObject *code = NULL, *exc = NULL;
    va_list vargs;

    va_start(vargs, format);
    message = PyUnicode_FromFormatV(format, vargs);
    va_end(vargs);
    if (message == NULL)
        goto done;
    errors = PyImport_ImportModule("riel.records.errors");
    if (errors == NULL)
        goto done;
    codes = PyImport_ImportModule("riel.errors");
    if (codes == NULL)
        goto done;
    cls = PyObject_GetAttrString(errors, "InvalidRecordError");
    if (cls == NULL)
        goto done;
    code_enum = PyObject_GetAttrString(codes, "ErrorCode");
    if (code_enum == NULL)
        goto done;
    code = PyObject_GetAttrString(code_enum, "CORRUPT_MESSAGE");
    if (code == NULL)
        goto done;
    exc = PyObject_CallFunctionObjArgs(cls, code, message, NULL);
    if (exc == NULL)
        goto done;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
done:
    Py_XDECREF(message);
    Py_XDECREF(errors);
    Py_XDECREF(codes);
    Py_XDECREF(cls);
    Py_XDECREF(code_enum);
    Py_XDECREF(code);
    Py_XDECREF(exc);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* Integers                                                                                          */

/* a + b without overflow; 0 on success, -1 if the sum does not fit in int64. */
static inline int
add_int64(int64_t a, int64_t b, int64_t *out)
{
    if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b))
        return -1;
    *out = a + b;
    return 0;
}

static inline int
sub_int64(int64_t a, int64_t b, int64_t *out)
{
    if ((b < 0 && a > INT64_MAX + b) || (b > 0 && a < INT64_MIN + b))
        return -1;
    *out = a - b;
    return 0;
}

/* An int argument as exact int plus, when it fits, its int64 value. ``overflow`` is 0 when it fits,
 * else the sign of the (too large) value. ``obj`` is a new reference. */
typedef struct {
    PyObject *obj;
    int64_t value;
    int overflow;
} int_arg;

static int
int_arg_init(int_arg *arg, PyObject *obj)
{
    long long value;
    int overflow;

    arg->obj = PyNumber_Index(obj);
    if (arg->obj == NULL)
        return -1;
    value = PyLong_AsLongLongAndOverflow(arg->obj, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        Py_CLEAR(arg->obj);
        return -1;
    }
    arg->value = (int64_t)value;
    arg->overflow = overflow;
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Varints (zigzag)                                                                                  */

typedef struct {
    int64_t value; /* valid when !big */
    int big;       /* the zigzag value needs more than 64 bits (only a 10-byte varint can) */
    uint64_t lo;   /* when big: bits 0..63 of the unsigned varint */
    unsigned hi;   /* when big: bits 64..69 */
} varint;

#define VARINT_NEGATIVE(v) ((v)->big ? (int)((v)->lo & 1) : (v)->value < 0)

static int
read_varint_slow(const unsigned char *buf, Py_ssize_t total, Py_ssize_t *pos, varint *out)
{
    Py_ssize_t p = *pos;
    uint64_t lo = 0;
    unsigned hi = 0;
    int i;

    for (i = 0; i < 10; i++) {
        unsigned b;
        if (p >= total) {
            corrupt("record data ends inside a varint");
            return -1;
        }
        b = buf[p++];
        if (i < 9) {
            lo |= (uint64_t)(b & 0x7F) << (7 * i);
        }
        else {
            lo |= (uint64_t)(b & 1) << 63;
            hi = (b & 0x7F) >> 1;
        }
        if (!(b & 0x80)) {
            *pos = p;
            out->big = hi != 0;
            out->lo = lo;
            out->hi = hi;
            out->value = (int64_t)((lo >> 1) ^ (0 - (lo & 1)));
            return 0;
        }
    }
    corrupt("varint longer than 10 bytes");
    return -1;
}

static inline int
read_varint(const unsigned char *buf, Py_ssize_t total, Py_ssize_t *pos, varint *out)
{
    Py_ssize_t p = *pos;
    if (p + 1 < total) {
        uint32_t b = buf[p];
        if (b < 0x80) {
            out->value = (int64_t)(b >> 1) ^ -(int64_t)(b & 1);
            out->big = 0;
            *pos = p + 1;
            return 0;
        }
        if (buf[p + 1] < 0x80) {
            uint32_t u = (b & 0x7F) | ((uint32_t)buf[p + 1] << 7);
            out->value = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            out->big = 0;
            *pos = p + 2;
            return 0;
        }
    }
    return read_varint_slow(buf, total, pos, out);
}

/* The varint's value as a new Python int. */
static PyObject *
varint_to_long(const varint *v)
{
    PyObject *hi, *shift, *high_part, *low_part, *half, *result;

    if (!v->big)
        return PyLong_FromLongLong(v->value);
    /* zigzag: (U >> 1) when U is even, ~(U >> 1) when odd; U >> 1 == hi << 63 | lo >> 1 */
    hi = PyLong_FromUnsignedLong(v->hi);
    if (hi == NULL)
        return NULL;
    shift = PyLong_FromLong(63);
    if (shift == NULL) {
        Py_DECREF(hi);
        return NULL;
    }
    high_part = PyNumber_Lshift(hi, shift);
    Py_DECREF(hi);
    Py_DECREF(shift);
    if (high_part == NULL)
        return NULL;
    low_part = PyLong_FromUnsignedLongLong(v->lo >> 1);
    if (low_part == NULL) {
        Py_DECREF(high_part);
        return NULL;
    }
    half = PyNumber_Or(high_part, low_part);
    Py_DECREF(high_part);
    Py_DECREF(low_part);
    if (half == NULL || !(v->lo & 1))
        return half;
    result = PyNumber_Invert(half);
    Py_DECREF(half);
    return result;
}

/* base + delta as a new Python int, in int64 when both fit and the sum does not overflow. */
static PyObject *
add_delta(const int_arg *base, const varint *delta)
{
    int64_t sum;
    PyObject *delta_obj, *result;

    if (!base->overflow && !delta->big && add_int64(base->value, delta->value, &sum) == 0)
        return PyLong_FromLongLong(sum);
    delta_obj = varint_to_long(delta);
    if (delta_obj == NULL)
        return NULL;
    result = PyNumber_Add(base->obj, delta_obj);
    Py_DECREF(delta_obj);
    return result;
}

static inline uint64_t
zigzag(int64_t value)
{
    return ((uint64_t)value << 1) ^ (0 - ((uint64_t)value >> 63));
}

static inline Py_ssize_t
varint_size(int64_t value)
{
    uint64_t u = zigzag(value);
    Py_ssize_t n = 1;
    while (u >= 0x80) {
        u >>= 7;
        n++;
    }
    return n;
}

static inline char *
write_varint(char *out, int64_t value)
{
    uint64_t u = zigzag(value);
    while (u >= 0x80) {
        *out++ = (char)((u & 0x7F) | 0x80);
        u >>= 7;
    }
    *out++ = (char)u;
    return out;
}

/* ------------------------------------------------------------------------------------------------ */
/* encode_records                                                                                    */

typedef struct {
    const char *data; /* NULL for a null field */
    Py_ssize_t size;
} field;

/* A bytes or None field; -1 with TypeError otherwise. */
static inline int
get_field(PyObject *obj, field *out, const char *what)
{
    if (obj == Py_None) {
        out->data = NULL;
        out->size = -1;
        return 0;
    }
    if (PyBytes_Check(obj)) {
        out->data = PyBytes_AS_STRING(obj);
        out->size = PyBytes_GET_SIZE(obj);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "%s must be bytes or None, not %.100s", what, Py_TYPE(obj)->tp_name);
    return -1;
}

static inline Py_ssize_t
field_size(const field *f)
{
    return f->data == NULL ? 1 : varint_size(f->size) + f->size;
}

static inline char *
write_field(char *out, const field *f)
{
    if (f->data == NULL) {
        *out++ = 1; /* zigzag(-1) */
        return out;
    }
    out = write_varint(out, f->size);
    memcpy(out, f->data, (size_t)f->size);
    return out + f->size;
}

/* ``headers`` (a sequence of (str, bytes | None) pairs) as a tuple of tuples; new reference. */
static PyObject *
headers_tuple(PyObject *headers)
{
    PyObject *tuple = PySequence_Tuple(headers);
    Py_ssize_t i, n;

    if (tuple == NULL)
        return NULL;
    n = PyTuple_GET_SIZE(tuple);
    for (i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(tuple, i);
        if (!PyTuple_Check(pair)) {
            /* Copy before converting: converting runs Python code, which must not see our tuple. */
            PyObject *copy = PyTuple_New(n), *converted;
            Py_ssize_t j;
            if (copy == NULL)
                goto error;
            for (j = 0; j < n; j++) {
                PyObject *item = PyTuple_GET_ITEM(tuple, j);
                converted = PyTuple_Check(item) ? Py_NewRef(item) : PySequence_Tuple(item);
                if (converted == NULL) {
                    Py_DECREF(copy);
                    goto error;
                }
                PyTuple_SET_ITEM(copy, j, converted);
            }
            Py_DECREF(tuple);
            return copy;
        }
    }
    return tuple;
error:
    Py_DECREF(tuple);
    return NULL;
}

/* Size of the encoded headers (count excluded), checking their types. */
static Py_ssize_t
headers_size(PyObject *headers)
{
    Py_ssize_t i, n = PyTuple_GET_SIZE(headers), size = 0;

    for (i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(headers, i), *name;
        Py_ssize_t name_size, add;
        field value;
        if (PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "a record header must be a (str, bytes | None) pair");
            return -1;
        }
        name = PyTuple_GET_ITEM(pair, 0);
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "a record header key must be str, not %.100s",
                         Py_TYPE(name)->tp_name);
            return -1;
        }
        if (PyUnicode_AsUTF8AndSize(name, &name_size) == NULL)
            return -1;
        if (get_field(PyTuple_GET_ITEM(pair, 1), &value, "a record header value") < 0)
            return -1;
        add = varint_size(name_size) + name_size + field_size(&value);
        if (size > PY_SSIZE_T_MAX / 2 - add) {
            PyErr_SetString(PyExc_OverflowError, "record headers too large");
            return -1;
        }
        size += add;
    }
    return size;
}

static char *
write_headers(char *out, PyObject *headers)
{
    Py_ssize_t i, n = PyTuple_GET_SIZE(headers);

    for (i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(headers, i), *value = PyTuple_GET_ITEM(pair, 1);
        field name;
        /* UTF-8 cached on the str by headers_size; cannot fail now */
        name.data = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 0), &name.size);
        out = write_field(out, &name);
        if (value == Py_None) {
            *out++ = 1;
        }
        else {
            field f = {PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value)};
            out = write_field(out, &f);
        }
    }
    return out;
}

static PyObject *
encode_records(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"items", "base_timestamp", NULL};
    PyObject *items_arg, *base_arg, *items = NULL, *out = NULL, *item = NULL, *headers = NULL;
    int_arg base = {NULL, 0, 0};
    Py_ssize_t n, i, size = 0, capacity;
    int64_t max_timestamp = -1;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:encode_records", keywords, &items_arg, &base_arg))
        return NULL;
    if (!PyLong_Check(base_arg)) {
        PyErr_Format(PyExc_TypeError, "base_timestamp must be int, not %.100s", Py_TYPE(base_arg)->tp_name);
        return NULL;
    }
    if (int_arg_init(&base, base_arg) < 0)
        return NULL;
    if (base.overflow) {
        PyErr_SetString(PyExc_OverflowError, "base_timestamp out of int64 range");
        goto error;
    }
    /* Our own tuple: nothing a callback does to the caller's list can move it under us. */
    items = PySequence_Tuple(items_arg);
    if (items == NULL)
        goto error;
    n = PyTuple_GET_SIZE(items);
    capacity = n * 16 + 64;
    out = PyBytes_FromStringAndSize(NULL, capacity);
    if (out == NULL)
        goto error;

    for (i = 0; i < n; i++) {
        PyObject *ts_obj;
        field key, value;
        long long ts;
        int64_t delta;
        Py_ssize_t header_count = 0, body, record;
        char *w;

        item = PyTuple_GET_ITEM(items, i);
        item = PyTuple_Check(item) ? Py_NewRef(item) : PySequence_Tuple(item);
        if (item == NULL)
            goto error;
        if (PyTuple_GET_SIZE(item) != 4) {
            PyErr_SetString(PyExc_TypeError, "each item must be (key, value, headers, timestamp)");
            goto error;
        }
        if (get_field(PyTuple_GET_ITEM(item, 0), &key, "key") < 0 ||
            get_field(PyTuple_GET_ITEM(item, 1), &value, "value") < 0)
            goto error;
        ts_obj = PyTuple_GET_ITEM(item, 3);
        if (!PyLong_Check(ts_obj)) {
            PyErr_Format(PyExc_TypeError, "timestamp must be int, not %.100s", Py_TYPE(ts_obj)->tp_name);
            goto error;
        }
        ts = PyLong_AsLongLong(ts_obj);
        if (ts == -1 && PyErr_Occurred())
            goto error;
        if (sub_int64(ts, base.value, &delta) < 0) {
            PyErr_SetString(PyExc_OverflowError, "timestamp - base_timestamp out of int64 range");
            goto error;
        }
        if (i == 0 || ts > max_timestamp)
            max_timestamp = ts;

        body = 1 + varint_size(delta) + varint_size(i) + field_size(&key) + field_size(&value);
        if (PyTuple_GET_ITEM(item, 2) != Py_None) {
            Py_ssize_t hsize;
            headers = headers_tuple(PyTuple_GET_ITEM(item, 2));
            if (headers == NULL)
                goto error;
            header_count = PyTuple_GET_SIZE(headers);
            hsize = headers_size(headers);
            if (hsize < 0)
                goto error;
            body += hsize;
        }
        body += varint_size(header_count);
        record = varint_size(body) + body;

        if (record > capacity - size) {
            /* Grow to what the records so far predict for all of them. */
            Py_ssize_t needed = size + record, per_record = needed / (i + 1), rest = n - i - 1;
            Py_ssize_t guess = needed / 2;
            if (needed < 0 || needed > PY_SSIZE_T_MAX / 4) {
                PyErr_NoMemory();
                goto error;
            }
            if (rest > 0 && per_record <= (PY_SSIZE_T_MAX / 4) / rest)
                guess = per_record * rest;
            if (guess > PY_SSIZE_T_MAX / 4)
                guess = PY_SSIZE_T_MAX / 4;
            capacity = needed + guess + 64;
            if (_PyBytes_Resize(&out, capacity) < 0)
                goto error;
        }
        w = PyBytes_AS_STRING(out) + size;
        w = write_varint(w, body);
        *w++ = 0; /* attributes */
        w = write_varint(w, delta);
        w = write_varint(w, i);
        w = write_field(w, &key);
        w = write_field(w, &value);
        w = write_varint(w, header_count);
        if (headers != NULL) {
            w = write_headers(w, headers);
            Py_CLEAR(headers);
        }
        size += record;
        Py_CLEAR(item);
    }
    if (size != capacity && _PyBytes_Resize(&out, size) < 0)
        goto error;
    Py_DECREF(items);
    Py_DECREF(base.obj);
    return Py_BuildValue("(NL)", out, (long long)max_timestamp);

error:
    Py_XDECREF(item);
    Py_XDECREF(headers);
    Py_XDECREF(out);
    Py_XDECREF(items);
    Py_XDECREF(base.obj);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* decode_records                                                                                    */

/* A length-prefixed field at *pos inside a record ending at ``end``: 0 and data/size (data NULL for
 * null), or -1 with InvalidRecordError. */
static inline int
read_field(const unsigned char *buf, Py_ssize_t total, Py_ssize_t *pos, Py_ssize_t end, field *out)
{
    varint length;
    if (read_varint(buf, total, pos, &length) < 0)
        return -1;
    if (VARINT_NEGATIVE(&length)) {
        out->data = NULL;
        out->size = -1;
        return 0;
    }
    /* *pos may already be past ``end`` (varints are read against the buffer end, like the reference) */
    if (length.big || length.value > (int64_t)(end - *pos)) {
        corrupt("record field runs past the end of its record");
        return -1;
    }
    out->data = (const char *)buf + *pos;
    out->size = (Py_ssize_t)length.value;
    *pos += out->size;
    return 0;
}

static inline PyObject *
field_to_object(const field *f)
{
    if (f->data == NULL)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(f->data, f->size);
}

static PyObject *
decode_records(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"buf",   "count",     "base_offset", "base_timestamp", "log_append_time",
                               "topic", "partition", "min_offset",  "cls",            NULL};
    PyObject *buf_arg, *count_arg, *base_offset_arg, *base_ts_arg, *log_append_time, *topic, *partition;
    PyObject *min_offset_arg, *cls_arg;
    PyObject *result = NULL, *last_ts = NULL, *log_append_time_obj = NULL;
    PyObject *key = NULL, *value = NULL, *headers = NULL, *offset = NULL, *timestamp = NULL;
    PyTypeObject *cls;
    Py_buffer view;
    int have_view = 0, exact_tuple;
    int_arg count = {NULL, 0, 0}, base_offset = {NULL, 0, 0}, base_ts = {NULL, 0, 0};
    int_arg min_offset = {NULL, 0, 0};
    const unsigned char *buf;
    Py_ssize_t total, pos = 0;
    int64_t n, i, last_delta = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOOO:decode_records", keywords, &buf_arg,
                                     &count_arg, &base_offset_arg, &base_ts_arg, &log_append_time, &topic,
                                     &partition, &min_offset_arg, &cls_arg))
        return NULL;
    if (!PyType_Check(cls_arg) || !PyType_IsSubtype((PyTypeObject *)cls_arg, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a tuple subclass (a NamedTuple of 7 fields)");
        return NULL;
    }
    cls = (PyTypeObject *)cls_arg;
    exact_tuple = cls == &PyTuple_Type;
    if (int_arg_init(&count, count_arg) < 0 || int_arg_init(&base_offset, base_offset_arg) < 0 ||
        int_arg_init(&base_ts, base_ts_arg) < 0 || int_arg_init(&min_offset, min_offset_arg) < 0)
        goto error;
    if (log_append_time != Py_None) {
        log_append_time_obj = PyNumber_Index(log_append_time);
        if (log_append_time_obj == NULL)
            goto error;
    }
    /* A count beyond int64 behaves like an endless one: the data runs out first. */
    n = count.overflow > 0 ? INT64_MAX : count.overflow < 0 ? 0 : count.value;
    if (PyObject_GetBuffer(buf_arg, &view, PyBUF_SIMPLE) < 0)
        goto error;
    have_view = 1;
    buf = (const unsigned char *)view.buf;
    total = view.len;
    result = PyList_New(0);
    if (result == NULL)
        goto error;

    for (i = 0; i < n; i++) {
        varint length, ts_delta, offset_delta, header_count;
        field key_field, value_field;
        Py_ssize_t end, j;
        int64_t offset_value = 0;
        int keep, offset_fast;
        PyObject *record;

        if (read_varint(buf, total, &pos, &length) < 0)
            goto error;
        if (length.big || length.value < 1 || length.value > (int64_t)(total - pos)) {
            if (length.big)
                corrupt("record of length (beyond int64) at %zd is invalid", pos);
            else
                corrupt("record of length %lld at %zd is invalid", (long long)length.value, pos);
            goto error;
        }
        end = pos + (Py_ssize_t)length.value;
        pos += 1; /* attributes */
        if (read_varint(buf, total, &pos, &ts_delta) < 0 ||
            read_varint(buf, total, &pos, &offset_delta) < 0)
            goto error;

        offset_fast = !base_offset.overflow && !offset_delta.big &&
                      add_int64(base_offset.value, offset_delta.value, &offset_value) == 0;
        if (offset_fast) {
            keep = min_offset.overflow ? min_offset.overflow < 0 : offset_value >= min_offset.value;
        }
        else {
            offset = add_delta(&base_offset, &offset_delta);
            if (offset == NULL)
                goto error;
            keep = PyObject_RichCompareBool(offset, min_offset.obj, Py_GE);
            if (keep < 0)
                goto error;
        }

        if (read_field(buf, total, &pos, end, &key_field) < 0 ||
            read_field(buf, total, &pos, end, &value_field) < 0)
            goto error;
        if (read_varint(buf, total, &pos, &header_count) < 0)
            goto error;
        if (header_count.big || header_count.value < 0 || header_count.value > (int64_t)(end - pos)) {
            if (header_count.big)
                corrupt("invalid header count (beyond int64)");
            else
                corrupt("invalid header count %lld", (long long)header_count.value);
            goto error;
        }
        if (keep) {
            /* A tuple: with no headers it is the shared empty tuple, which the GC does not track,
               so most records cost one tracked allocation (the record) instead of two. */
            headers = PyTuple_New((Py_ssize_t)header_count.value);
            if (headers == NULL)
                goto error;
        }
        for (j = 0; j < (Py_ssize_t)header_count.value; j++) {
            field name, header_value;
            PyObject *name_obj, *value_obj, *pair;
            if (read_field(buf, total, &pos, end, &name) < 0)
                goto error;
            if (name.data == NULL) {
                corrupt("record header with a null key");
                goto error;
            }
            if (read_field(buf, total, &pos, end, &header_value) < 0)
                goto error;
            name_obj = PyUnicode_DecodeUTF8(name.data, name.size, NULL);
            if (name_obj == NULL) {
                if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    PyErr_Clear();
                    corrupt("record header key is not UTF-8");
                }
                goto error;
            }
            if (!keep) { /* still validated above, like every record */
                Py_DECREF(name_obj);
                continue;
            }
            value_obj = field_to_object(&header_value);
            if (value_obj == NULL) {
                Py_DECREF(name_obj);
                goto error;
            }
            pair = PyTuple_Pack(2, name_obj, value_obj);
            Py_DECREF(name_obj);
            Py_DECREF(value_obj);
            if (pair == NULL)
                goto error;
            PyTuple_SET_ITEM(headers, j, pair); /* steals the reference */
        }
        if (pos != end) {
            corrupt("record claims %lld bytes but its fields take %lld", (long long)length.value,
                    (long long)(length.value + (int64_t)(pos - end)));
            goto error;
        }
        if (!keep) {
            Py_CLEAR(offset);
            continue;
        }

        if (offset == NULL) {
            offset = PyLong_FromLongLong(offset_value);
            if (offset == NULL)
                goto error;
        }
        if (log_append_time_obj != NULL) {
            timestamp = Py_NewRef(log_append_time_obj);
        }
        else if (last_ts != NULL && !ts_delta.big && ts_delta.value == last_delta) {
            timestamp = Py_NewRef(last_ts); /* records of one batch often share a timestamp */
        }
        else {
            timestamp = add_delta(&base_ts, &ts_delta);
            if (timestamp == NULL)
                goto error;
            if (!ts_delta.big) {
                Py_XSETREF(last_ts, Py_NewRef(timestamp));
                last_delta = ts_delta.value;
            }
        }
        key = field_to_object(&key_field);
        if (key == NULL)
            goto error;
        value = field_to_object(&value_field);
        if (value == NULL)
            goto error;

        record = exact_tuple ? PyTuple_New(7) : cls->tp_alloc(cls, 7);
        if (record == NULL)
            goto error;
        PyTuple_SET_ITEM(record, 0, Py_NewRef(topic));
        PyTuple_SET_ITEM(record, 1, Py_NewRef(partition));
        PyTuple_SET_ITEM(record, 2, offset);
        PyTuple_SET_ITEM(record, 3, timestamp);
        PyTuple_SET_ITEM(record, 4, key);
        PyTuple_SET_ITEM(record, 5, value);
        PyTuple_SET_ITEM(record, 6, headers);
        offset = timestamp = key = value = headers = NULL;
        if (PyList_Append(result, record) < 0) {
            Py_DECREF(record);
            goto error;
        }
        Py_DECREF(record);
    }
    if (pos != total) {
        corrupt("%zd bytes follow the last record", total - pos);
        goto error;
    }
    goto done;

error:
    Py_CLEAR(result);
done:
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_XDECREF(headers);
    Py_XDECREF(offset);
    Py_XDECREF(timestamp);
    Py_XDECREF(last_ts);
    Py_XDECREF(log_append_time_obj);
    Py_XDECREF(count.obj);
    Py_XDECREF(base_offset.obj);
    Py_XDECREF(base_ts.obj);
    Py_XDECREF(min_offset.obj);
    if (have_view)
        PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------------------------------------ */

static PyMethodDef speedups_methods[] = {
    {"encode_records", (PyCFunction)(void (*)(void))encode_records, METH_VARARGS | METH_KEYWORDS,
     "encode_records(items, base_timestamp) -> (section, max_timestamp)\n\n"
     "The uncompressed records section for (key, value, headers, timestamp_ms) items."},
    {"decode_records", (PyCFunction)(void (*)(void))decode_records, METH_VARARGS | METH_KEYWORDS,
     "decode_records(buf, count, base_offset, base_timestamp, log_append_time, topic, partition,\n"
     "               min_offset, cls) -> list\n\n"
     "Decode count records of an uncompressed records section into cls instances."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "riel.records._speedups",
    "C fast path for the records section of Kafka v2 record batches (see riel.records.fast_records).",
    0,
    speedups_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
