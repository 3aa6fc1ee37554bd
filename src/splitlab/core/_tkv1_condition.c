/*
 * Targeting conditions evaluated in C: a Condition runs a program that condition_program.py
 * compiles from a GrowthBook condition, for the subset of the language it covers (literals,
 * $eq/$ne, $in/$nin, $lt/$lte/$gt/$gte, $exists, $not, and $and/$or/$nor/$not over conditions).
 * Conditions outside the subset are never given a program: Python evaluates them (decided once,
 * at compile time).
 *
 * JavaScript's coercions are computed here for the everyday attribute values (None, bool, and
 * str, int and float of exactly those types, lists and dicts walked by paths). The rare ones (a
 * string read as a number, an array printed as text, a non-Latin-1 string compared by UTF-16
 * code units, a subclass, an int beyond 64 bits) call the reference's own functions from
 * splitlab.core.jsvalues and splitlab.core.targeting, passed in as helpers, so their semantics are
 * written once.
 *
 * Program nodes are tuples whose first item is an opcode; see condition_program.py, which must
 * agree with the opcodes below. Condition(program, helpers) checks the whole program once and
 * compiles it into C structures (Node, Test): opcodes and numbers as C values, attribute names
 * and the strings of a short $in list interned (a dict built from literals then finds them by
 * identity), so evaluation reads no tuple and converts no int. The Python objects they point to
 * are owned by the program tuple (kept by the Condition) or by the Condition's `owned` list.
 */
#include "_tkv1.h"

#include <math.h>
#include <string.h>

enum { C_TRUE = 0, C_ALL = 1, C_ANY = 2, C_NONE = 3, C_NOT = 4, C_PATH = 5 };
enum { T_ALL = 10, T_NOT = 11, T_NULL = 12, T_NOT_NULL = 13, T_TEXT = 14, T_NUMBER = 15,
       T_BOOL = 16, T_ORDER = 17, T_EQ = 18, T_IN = 19 };
enum { IN_TRUE = 1, IN_FALSE = 2, IN_NULL = 4, IN_NAN = 8 };
enum { H_TO_STRING, H_TO_NUMBER, H_TRUTHY, H_COMPARE, H_ATTRIBUTE_AT, HELPERS };
#define MAX_DEPTH 100
#define UNDEFINED 3 /* a comparison with NaN */
#define FEW_OPTIONS 8 /* $in string lists up to this long are scanned; longer ones use the set */

typedef struct Test Test;
struct Test {
    int op;
    int flag;            /* T_ORDER: 0..3 ($lt, $lte, $gt, $gte); T_EQ, T_IN: negated;
                            T_BOOL: the expected truth */
    double number;       /* T_NUMBER; T_ORDER: Number(operand) */
    PyObject *text;      /* T_TEXT: the text; T_ORDER: the text operand or NULL; T_EQ: operand */
    PyObject *printed;   /* T_TEXT: Number(text) when JavaScript prints it so, else None */
    int has_integer;     /* T_TEXT: whether text is how Python prints an int (of 64 bits) */
    long long integer;
    long in_flags;       /* T_IN: IN_TRUE | IN_FALSE | IN_NULL | IN_NAN */
    PyObject *strings;   /* T_IN: the frozenset of string options */
    PyObject **options;  /* T_IN: those strings, interned, when at most FEW_OPTIONS (else NULL) */
    Py_ssize_t n_options;
    PyObject *numbers;   /* T_IN: the tuple of number options */
    Test *kids;          /* T_ALL; T_NOT (one) */
    Py_ssize_t n_kids;
};

typedef struct {
    PyObject *key; /* interned */
    int is_length;
    long long index;
} Part;

typedef struct Node Node;
struct Node {
    int op;
    Node *kids; /* C_ALL, C_ANY, C_NONE; C_NOT (one) */
    Py_ssize_t n_kids;
    PyObject *path; /* C_PATH: the path's text, for the reference's attribute_at */
    Part *parts;
    Py_ssize_t n_parts;
    Test test;
};

typedef struct {
    PyObject_HEAD
    PyObject *program;
    PyObject *helpers[HELPERS];
    PyObject *empty; /* the subject when there are no attributes */
    PyObject *owned; /* a list holding the interned strings the compiled program points to */
    Node root;
} Condition;

#define ITEM(node, i) PyTuple_GET_ITEM(node, i)

/* ---- compiling a program once (checking it on the way) ---- */

static int bad(const char *what) {
    PyErr_Format(PyExc_ValueError, "malformed condition program: %s", what);
    return -1;
}

static int shaped(PyObject *node, Py_ssize_t size) {
    return PyTuple_CheckExact(node) && PyTuple_GET_SIZE(node) == size;
}

static int opcode_of(PyObject *node, int *op) {
    if (!PyTuple_CheckExact(node) || PyTuple_GET_SIZE(node) < 1 ||
        !PyLong_CheckExact(ITEM(node, 0))) {
        return bad("a node must be a tuple starting with an opcode");
    }
    long found = PyLong_AsLong(ITEM(node, 0));
    if (found == -1 && PyErr_Occurred()) return -1;
    *op = found < 0 || found > 1000 ? -1 : (int)found;
    return 0;
}

static int is_number(PyObject *v) {
    return (PyLong_Check(v) && !PyBool_Check(v)) || PyFloat_Check(v);
}

/* s interned, as a new reference kept alive by self->owned; NULL with an exception. */
static PyObject *interned(Condition *self, PyObject *s) {
    PyObject *copy = Py_NewRef(s);
    PyUnicode_InternInPlace(&copy);
    if (PyList_Append(self->owned, copy) < 0) {
        Py_DECREF(copy);
        return NULL;
    }
    Py_DECREF(copy); /* owned holds it */
    return copy;
}

/* count + 1 zeroed items of size bytes (never an empty allocation), or NULL with MemoryError. */
static void *zeroed(Py_ssize_t count, size_t size) {
    void *found = PyMem_Calloc((size_t)count + 1, size);
    if (found == NULL) PyErr_NoMemory();
    return found;
}

static int compile_test(Condition *self, PyObject *test, Test *out, int depth);

static int compile_tests(Condition *self, PyObject *tests, Test *out, int depth) {
    if (!PyTuple_CheckExact(tests)) return bad("expected a tuple of tests");
    out->n_kids = PyTuple_GET_SIZE(tests);
    out->kids = zeroed(out->n_kids, sizeof(Test));
    if (out->kids == NULL) return -1;
    for (Py_ssize_t i = 0; i < out->n_kids; i++) {
        if (compile_test(self, ITEM(tests, i), &out->kids[i], depth + 1) < 0) return -1;
    }
    return 0;
}

static int compile_test(Condition *self, PyObject *test, Test *out, int depth) {
    int op;
    if (depth > MAX_DEPTH) return bad("nested too deeply");
    if (opcode_of(test, &op) < 0) return -1;
    out->op = op;
    switch (op) {
    case T_ALL: return shaped(test, 2) ? compile_tests(self, ITEM(test, 1), out, depth)
                                       : bad("T_ALL");
    case T_NOT:
        if (!shaped(test, 2)) return bad("T_NOT");
        out->n_kids = 1;
        out->kids = zeroed(1, sizeof(Test));
        if (out->kids == NULL) return -1;
        return compile_test(self, ITEM(test, 1), out->kids, depth + 1);
    case T_NULL: case T_NOT_NULL: return shaped(test, 1) ? 0 : bad("T_NULL");
    case T_TEXT:
        if (!shaped(test, 4) || !PyUnicode_CheckExact(ITEM(test, 1)) ||
            !(ITEM(test, 2) == Py_None || PyFloat_CheckExact(ITEM(test, 2))) ||
            !(ITEM(test, 3) == Py_None || PyLong_CheckExact(ITEM(test, 3)))) {
            return bad("T_TEXT");
        }
        out->text = ITEM(test, 1);
        out->printed = ITEM(test, 2);
        if (ITEM(test, 3) != Py_None) {
            int overflow;
            out->integer = PyLong_AsLongLongAndOverflow(ITEM(test, 3), &overflow);
            if (overflow) return bad("T_TEXT integer beyond 64 bits");
            out->has_integer = 1;
        }
        return 0;
    case T_NUMBER:
        if (!shaped(test, 2) || !PyFloat_CheckExact(ITEM(test, 1))) return bad("T_NUMBER");
        out->number = PyFloat_AS_DOUBLE(ITEM(test, 1));
        return 0;
    case T_BOOL:
        if (!shaped(test, 2) || !PyBool_Check(ITEM(test, 1))) return bad("T_BOOL");
        out->flag = ITEM(test, 1) == Py_True;
        return 0;
    case T_ORDER: {
        if (!shaped(test, 4) || !PyLong_CheckExact(ITEM(test, 1)) ||
            !(ITEM(test, 2) == Py_None || PyUnicode_CheckExact(ITEM(test, 2))) ||
            !PyFloat_CheckExact(ITEM(test, 3))) {
            return bad("T_ORDER");
        }
        long which = PyLong_AsLong(ITEM(test, 1));
        if (which < 0 || which > 3) return bad("T_ORDER comparison");
        out->flag = (int)which;
        out->text = ITEM(test, 2) == Py_None ? NULL : ITEM(test, 2);
        out->number = PyFloat_AS_DOUBLE(ITEM(test, 3));
        return 0;
    }
    case T_EQ: {
        PyObject *arg = shaped(test, 3) ? ITEM(test, 1) : NULL;
        if (arg == NULL || !PyBool_Check(ITEM(test, 2)) ||
            !(arg == Py_None || PyBool_Check(arg) || PyUnicode_CheckExact(arg) ||
              PyLong_CheckExact(arg) || PyFloat_CheckExact(arg))) {
            return bad("T_EQ");
        }
        out->text = arg;
        out->flag = ITEM(test, 2) == Py_True;
        return 0;
    }
    case T_IN: {
        if (!shaped(test, 5) || !PyFrozenSet_CheckExact(ITEM(test, 1)) ||
            !PyTuple_CheckExact(ITEM(test, 2)) || !PyLong_CheckExact(ITEM(test, 3)) ||
            !PyBool_Check(ITEM(test, 4))) {
            return bad("T_IN");
        }
        PyObject *numbers = ITEM(test, 2);
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(numbers); i++) {
            PyObject *n = ITEM(numbers, i);
            if (!PyLong_CheckExact(n) && !PyFloat_CheckExact(n)) return bad("T_IN numbers");
        }
        out->strings = ITEM(test, 1);
        out->numbers = numbers;
        out->in_flags = PyLong_AsLong(ITEM(test, 3));
        if (out->in_flags == -1 && PyErr_Occurred()) return -1;
        out->flag = ITEM(test, 4) == Py_True;
        Py_ssize_t n = PySet_GET_SIZE(out->strings);
        if (n <= FEW_OPTIONS) {
            out->options = zeroed(n, sizeof(PyObject *));
            if (out->options == NULL) return -1;
            PyObject *each = PyObject_GetIter(out->strings), *key;
            if (each == NULL) return -1;
            while ((key = PyIter_Next(each)) != NULL) {
                PyObject *kept = PyUnicode_CheckExact(key) ? interned(self, key) : NULL;
                Py_DECREF(key);
                if (kept == NULL || out->n_options >= n) {
                    Py_DECREF(each);
                    return PyErr_Occurred() ? -1 : bad("T_IN strings");
                }
                out->options[out->n_options++] = kept;
            }
            Py_DECREF(each);
            if (PyErr_Occurred()) return -1;
        }
        return 0;
    }
    default: return bad("unknown test opcode");
    }
}

static int compile_node(Condition *self, PyObject *node, Node *out, int depth) {
    int op;
    if (depth > MAX_DEPTH) return bad("nested too deeply");
    if (opcode_of(node, &op) < 0) return -1;
    out->op = op;
    switch (op) {
    case C_TRUE: return shaped(node, 1) ? 0 : bad("C_TRUE");
    case C_ALL: case C_ANY: case C_NONE: case C_NOT: {
        PyObject *kids = shaped(node, 2) ? ITEM(node, 1) : NULL;
        if (kids == NULL) return bad("C_ALL/C_ANY/C_NONE/C_NOT");
        if (op == C_NOT) {
            out->n_kids = 1;
            out->kids = zeroed(1, sizeof(Node));
            if (out->kids == NULL) return -1;
            return compile_node(self, kids, out->kids, depth + 1);
        }
        if (!PyTuple_CheckExact(kids)) return bad("C_ALL/C_ANY/C_NONE");
        out->n_kids = PyTuple_GET_SIZE(kids);
        out->kids = zeroed(out->n_kids, sizeof(Node));
        if (out->kids == NULL) return -1;
        for (Py_ssize_t i = 0; i < out->n_kids; i++) {
            if (compile_node(self, ITEM(kids, i), &out->kids[i], depth + 1) < 0) return -1;
        }
        return 0;
    }
    case C_PATH: {
        if (!shaped(node, 4) || !PyTuple_CheckExact(ITEM(node, 1)) ||
            PyTuple_GET_SIZE(ITEM(node, 1)) < 1 || !PyUnicode_CheckExact(ITEM(node, 2))) {
            return bad("C_PATH");
        }
        PyObject *parts = ITEM(node, 1);
        out->path = ITEM(node, 2);
        out->n_parts = PyTuple_GET_SIZE(parts);
        out->parts = zeroed(out->n_parts, sizeof(Part));
        if (out->parts == NULL) return -1;
        for (Py_ssize_t i = 0; i < out->n_parts; i++) {
            PyObject *part = ITEM(parts, i);
            if (!shaped(part, 3) || !PyUnicode_CheckExact(ITEM(part, 0)) ||
                !PyBool_Check(ITEM(part, 1)) || !PyLong_CheckExact(ITEM(part, 2))) {
                return bad("C_PATH part");
            }
            int overflow;
            out->parts[i].index = PyLong_AsLongLongAndOverflow(ITEM(part, 2), &overflow);
            if (overflow) return bad("C_PATH index beyond 64 bits");
            out->parts[i].is_length = ITEM(part, 1) == Py_True;
            out->parts[i].key = interned(self, ITEM(part, 0));
            if (out->parts[i].key == NULL) return -1;
        }
        return compile_test(self, ITEM(node, 3), &out->test, depth + 1);
    }
    default: return bad("unknown node opcode");
    }
}

static void free_test(Test *test) {
    for (Py_ssize_t i = 0; test->kids != NULL && i < test->n_kids; i++) {
        free_test(&test->kids[i]);
    }
    PyMem_Free(test->kids);
    PyMem_Free(test->options);
}

static void free_node(Node *node) {
    for (Py_ssize_t i = 0; node->kids != NULL && i < node->n_kids; i++) {
        free_node(&node->kids[i]);
    }
    PyMem_Free(node->kids);
    PyMem_Free(node->parts);
    free_test(&node->test);
}

/* ---- JavaScript's coercions ---- */

static PyObject *helper(Condition *self, int which, PyObject *v) {
    return PyObject_CallOneArg(self->helpers[which], v);
}

/* The value of an exact int that fits one machine word without conversion work (*out), 1; or
 * 0 when it is larger (then convert it the long way). */
static inline int small_int(PyObject *v, long *out) {
#if PY_VERSION_HEX >= 0x030C0000
    if (!PyUnstable_Long_IsCompact((PyLongObject *)v)) return 0;
    *out = (long)PyUnstable_Long_CompactValue((PyLongObject *)v);
    return 1;
#else
    Py_ssize_t size = Py_SIZE(v);
    if (size < -1 || size > 1) return 0;
    *out = (long)size * (long)((PyLongObject *)v)->ob_digit[0];
    return 1;
#endif
}

/* Number(v) into *out; -1 with an exception set. */
static int to_number(Condition *self, PyObject *v, double *out) {
    if (PyLong_CheckExact(v)) {
        long small;
        if (small_int(v, &small)) {
            *out = (double)small;
            return 0;
        }
        *out = PyLong_AsDouble(v);
        return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
    }
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 0;
    }
    if (v == Py_None) {
        *out = 0.0;
        return 0;
    }
    if (PyBool_Check(v)) {
        *out = v == Py_True ? 1.0 : 0.0;
        return 0;
    }
    PyObject *number = helper(self, H_TO_NUMBER, v);
    if (number == NULL) return -1;
    *out = PyLong_CheckExact(number) ? PyLong_AsDouble(number) : PyFloat_AsDouble(number);
    Py_DECREF(number);
    return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* !!v: 1, 0 or -1. */
static int truthy(Condition *self, PyObject *v) {
    if (v == Py_None) return 0;
    if (PyBool_Check(v)) return v == Py_True;
    if (PyUnicode_CheckExact(v)) return PyUnicode_GET_LENGTH(v) > 0;
    if (PyFloat_CheckExact(v)) {
        double d = PyFloat_AS_DOUBLE(v);
        return d != 0.0 && !isnan(d);
    }
    if (PyLong_CheckExact(v)) return PyObject_IsTrue(v);
    if (PyList_CheckExact(v) || PyDict_CheckExact(v)) return 1;
    PyObject *found = helper(self, H_TRUTHY, v);
    if (found == NULL) return -1;
    int result = PyObject_IsTrue(found);
    Py_DECREF(found);
    return result;
}

/* Two exact strs hold the same text (a str's canonical form is unique: same kind, same data). */
static inline int same_text(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    if (n != PyUnicode_GET_LENGTH(b) || PyUnicode_KIND(a) != PyUnicode_KIND(b)) return 0;
    Py_hash_t ha = ((PyASCIIObject *)a)->hash, hb = ((PyASCIIObject *)b)->hash;
    if (ha != -1 && hb != -1 && ha != hb) return 0;
    return memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * PyUnicode_KIND(a)) == 0;
}

/* String(v) == the test's text: 1, 0 or -1. */
static int text_equals(Condition *self, PyObject *v, const Test *test) {
    PyObject *text = test->text;
    if (PyUnicode_CheckExact(v)) return PyUnicode_Compare(v, text) == 0;
    if (v == Py_None) return PyUnicode_CompareWithASCIIString(text, "null") == 0;
    if (PyBool_Check(v)) {
        return PyUnicode_CompareWithASCIIString(text, v == Py_True ? "true" : "false") == 0;
    }
    if (PyFloat_CheckExact(v)) {
        if (test->printed == Py_None) return 0;
        double d = PyFloat_AS_DOUBLE(v), n = PyFloat_AS_DOUBLE(test->printed);
        return d == n || (isnan(d) && isnan(n));
    }
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow) return test->has_integer && n == test->integer;
    }
    PyObject *printed = helper(self, H_TO_STRING, v);
    if (printed == NULL) return -1;
    int result = PyUnicode_Compare(printed, text);
    Py_DECREF(printed);
    if (result == -1 && PyErr_Occurred()) return -1;
    return result == 0;
}

/* The abstract relational comparison of v and the operand (text, or NULL with its Number):
 * 0 (v < operand), 1 (equal), 2 (v > operand), UNDEFINED (a NaN), or -1 with an exception. */
static int order_of(Condition *self, PyObject *v, PyObject *text, double number) {
    if (text != NULL) {
        int plain = v == Py_None || PyBool_Check(v) || PyLong_CheckExact(v) ||
                    PyFloat_CheckExact(v);
        if (PyUnicode_CheckExact(v) && PyUnicode_KIND(v) == PyUnicode_1BYTE_KIND &&
            PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND) {
            /* Latin-1 text: code points are UTF-16 code units */
            Py_ssize_t a = PyUnicode_GET_LENGTH(v), b = PyUnicode_GET_LENGTH(text);
            int c = memcmp(PyUnicode_1BYTE_DATA(v), PyUnicode_1BYTE_DATA(text),
                           (size_t)(a < b ? a : b));
            if (c == 0) c = (a > b) - (a < b);
            return c < 0 ? 0 : c == 0 ? 1 : 2;
        }
        if (!plain) {
            PyObject *found = PyObject_CallFunctionObjArgs(self->helpers[H_COMPARE], v, text,
                                                           NULL);
            if (found == NULL) return -1;
            if (found == Py_None) {
                Py_DECREF(found);
                return UNDEFINED;
            }
            long c = PyLong_AsLong(found);
            Py_DECREF(found);
            if (c == -1 && PyErr_Occurred()) return -1;
            return (int)c + 1;
        }
    }
    double m;
    if (to_number(self, v, &m) < 0) return -1;
    if (isnan(m) || isnan(number)) return UNDEFINED;
    return m < number ? 0 : m == number ? 1 : 2;
}

/* Python's == on two numbers, as the reference's strict equality does. */
static int numbers_equal(PyObject *a, PyObject *b) {
    if (PyFloat_CheckExact(a) && PyFloat_CheckExact(b)) {
        return PyFloat_AS_DOUBLE(a) == PyFloat_AS_DOUBLE(b);
    }
    return PyObject_RichCompareBool(a, b, Py_EQ);
}

/* v === operand, the operand being a str, a number, a bool or None. */
static int strictly_equal(PyObject *v, PyObject *operand) {
    if (is_number(operand)) return is_number(v) ? numbers_equal(v, operand) : 0;
    if (Py_TYPE(v) != Py_TYPE(operand)) return 0;
    return v == operand || PyObject_RichCompareBool(v, operand, Py_EQ);
}

/* Whether one value is among the options of $in (SameValueZero). */
static int among(PyObject *x, const Test *test) {
    if (PyUnicode_CheckExact(x)) {
        if (test->options == NULL) return PySet_Contains(test->strings, x);
        for (Py_ssize_t i = 0; i < test->n_options; i++) {
            if (test->options[i] == x) return 1; /* interned on both sides: the usual case */
        }
        for (Py_ssize_t i = 0; i < test->n_options; i++) {
            if (same_text(x, test->options[i])) return 1;
        }
        return 0;
    }
    long flags = test->in_flags;
    if (x == Py_None) return (flags & IN_NULL) != 0;
    if (x == Py_True) return (flags & IN_TRUE) != 0;
    if (x == Py_False) return (flags & IN_FALSE) != 0;
    if (!is_number(x)) return 0;
    if (PyFloat_Check(x) && isnan(PyFloat_AS_DOUBLE(x))) return (flags & IN_NAN) != 0;
    PyObject *numbers = test->numbers;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(numbers); i++) {
        int equal = numbers_equal(x, ITEM(numbers, i));
        if (equal != 0) return equal;
    }
    return 0;
}

static int is_in(PyObject *v, const Test *test) {
    if (!PyList_Check(v)) return among(v, test);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
        PyObject *item = Py_NewRef(PyList_GET_ITEM(v, i));
        int found = among(item, test);
        Py_DECREF(item);
        if (found != 0) return found;
    }
    return 0;
}

/* ---- evaluation ---- */

static int matches(Condition *self, const Test *test, PyObject *v) {
    switch (test->op) {
    case T_ALL:
        for (Py_ssize_t i = 0; i < test->n_kids; i++) {
            int r = matches(self, &test->kids[i], v);
            if (r <= 0) return r;
        }
        return 1;
    case T_NOT: {
        int r = matches(self, test->kids, v);
        return r < 0 ? -1 : !r;
    }
    case T_NULL: return v == Py_None;
    case T_NOT_NULL: return v != Py_None;
    case T_TEXT: return text_equals(self, v, test);
    case T_NUMBER: {
        double m;
        if (to_number(self, v, &m) < 0) return -1;
        return m == test->number;
    }
    case T_BOOL: {
        if (v == Py_None) return 0;
        int t = truthy(self, v);
        return t < 0 ? -1 : t == test->flag;
    }
    case T_ORDER: {
        int found = order_of(self, v, test->text, test->number);
        if (found < 0) return -1;
        if (found == UNDEFINED) return 0;
        switch (test->flag) { /* $lt, $lte, $gt, $gte */
        case 0: return found == 0;
        case 1: return found <= 1;
        case 2: return found == 2;
        default: return found >= 1;
        }
    }
    case T_EQ: {
        int equal = strictly_equal(v, test->text);
        return equal < 0 ? -1 : equal != test->flag;
    }
    case T_IN: {
        int found = is_in(v, test);
        return found < 0 ? -1 : found != test->flag;
    }
    default: return 0; /* unreachable: the program was checked */
    }
}

/* The attribute at a path (a new reference): dicts and lists are walked here, anything else
 * by the reference's attribute_at from the root. */
static PyObject *attribute_at(Condition *self, PyObject *root, const Node *node) {
    PyObject *current = Py_NewRef(root);
    for (Py_ssize_t i = 0; i < node->n_parts; i++) {
        const Part *part = &node->parts[i];
        PyObject *next;
        if (PyDict_CheckExact(current)) {
            next = PyDict_GetItemWithError(current, part->key);
            if (next == NULL && PyErr_Occurred()) {
                Py_DECREF(current);
                return NULL;
            }
            next = next == NULL ? Py_None : next;
            Py_INCREF(next);
        } else if (PyList_CheckExact(current)) {
            long long index = part->index;
            if (part->is_length) {
                next = PyLong_FromSsize_t(PyList_GET_SIZE(current));
                if (next == NULL) {
                    Py_DECREF(current);
                    return NULL;
                }
            } else if (index >= 0 && index < PyList_GET_SIZE(current)) {
                next = Py_NewRef(PyList_GET_ITEM(current, (Py_ssize_t)index));
            } else {
                next = Py_NewRef(Py_None);
            }
        } else if (current == Py_None || PyBool_Check(current) || PyUnicode_CheckExact(current) ||
                   PyLong_CheckExact(current) || PyFloat_CheckExact(current)) {
            next = Py_NewRef(Py_None);
        } else {
            Py_DECREF(current);
            return PyObject_CallFunctionObjArgs(self->helpers[H_ATTRIBUTE_AT], root, node->path,
                                                NULL);
        }
        Py_DECREF(current);
        current = next;
    }
    return current;
}

static int holds(Condition *self, const Node *node, PyObject *subject) {
    switch (node->op) {
    case C_TRUE: return 1;
    case C_ALL:
        for (Py_ssize_t i = 0; i < node->n_kids; i++) {
            int r = holds(self, &node->kids[i], subject);
            if (r <= 0) return r;
        }
        return 1;
    case C_ANY: case C_NONE:
        if (node->n_kids == 0) return node->op == C_ANY; /* as the reference reads them */
        for (Py_ssize_t i = 0; i < node->n_kids; i++) {
            int r = holds(self, &node->kids[i], subject);
            if (r < 0) return -1;
            if (r) return node->op == C_ANY;
        }
        return node->op == C_NONE;
    case C_NOT: {
        int r = holds(self, node->kids, subject);
        return r < 0 ? -1 : !r;
    }
    case C_PATH: {
        PyObject *value = attribute_at(self, subject, node);
        if (value == NULL) return -1;
        int r = matches(self, &node->test, value);
        Py_DECREF(value);
        return r;
    }
    default: return 0; /* unreachable: the program was checked */
    }
}

int tkv1_condition_holds(PyObject *condition, PyObject *attributes) {
    Condition *self = (Condition *)condition;
    return holds(self, &self->root, attributes == Py_None ? self->empty : attributes);
}

/* ---- the type ---- */

static PyObject *condition_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *program, *helpers;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "Condition(program, helpers) takes no keywords");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!:Condition", &PyTuple_Type, &program, &PyTuple_Type,
                          &helpers)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(helpers) != HELPERS) {
        PyErr_SetString(PyExc_ValueError, "helpers: (to_string, to_number, truthy, compare, "
                                          "attribute_at)");
        return NULL;
    }
    Condition *self = (Condition *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->program = Py_NewRef(program);
    for (int i = 0; i < HELPERS; i++) self->helpers[i] = Py_NewRef(ITEM(helpers, i));
    self->empty = PyDict_New();
    self->owned = PyList_New(0);
    if (self->empty == NULL || self->owned == NULL ||
        compile_node(self, program, &self->root, 0) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void condition_dealloc(Condition *self) {
    free_node(&self->root);
    Py_XDECREF(self->program);
    for (int i = 0; i < HELPERS; i++) Py_XDECREF(self->helpers[i]);
    Py_XDECREF(self->empty);
    Py_XDECREF(self->owned);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *condition_call(Condition *self, PyObject *args, PyObject *kwargs) {
    PyObject *attributes;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "a Condition takes the attributes alone");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:Condition", &attributes)) return NULL;
    int r = tkv1_condition_holds((PyObject *)self, attributes);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

PyTypeObject Tkv1_ConditionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "splitlab.core._tkv1.Condition",
    .tp_basicsize = sizeof(Condition),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Condition(program, helpers): a compiled targeting condition; call it with the "
              "attributes (a mapping) for whether they satisfy it.",
    .tp_new = condition_new,
    .tp_dealloc = (destructor)condition_dealloc,
    .tp_call = (ternaryfunc)condition_call,
};
