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
 * agree with the opcodes below. Condition(program, helpers) checks the whole program once, so
 * evaluation reads it with unchecked macros.
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

typedef struct {
    PyObject_HEAD
    PyObject *program;
    PyObject *helpers[HELPERS];
    PyObject *empty; /* the subject when there are no attributes */
} Condition;

#define ITEM(node, i) PyTuple_GET_ITEM(node, i)
#define OPCODE(node) PyLong_AsLong(ITEM(node, 0))

/* ---- checking a program once ---- */

static int bad(const char *what) {
    PyErr_Format(PyExc_ValueError, "malformed condition program: %s", what);
    return -1;
}

static int shaped(PyObject *node, Py_ssize_t size) {
    return PyTuple_CheckExact(node) && PyTuple_GET_SIZE(node) == size;
}

static int opcode_of(PyObject *node, long *op) {
    if (!PyTuple_CheckExact(node) || PyTuple_GET_SIZE(node) < 1 ||
        !PyLong_CheckExact(ITEM(node, 0))) {
        return bad("a node must be a tuple starting with an opcode");
    }
    *op = PyLong_AsLong(ITEM(node, 0));
    return 0;
}

static int is_number(PyObject *v) {
    return (PyLong_Check(v) && !PyBool_Check(v)) || PyFloat_Check(v);
}

static int check_test(PyObject *test, int depth);

static int check_tests(PyObject *tests, int depth) {
    if (!PyTuple_CheckExact(tests)) return bad("expected a tuple of tests");
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tests); i++) {
        if (check_test(ITEM(tests, i), depth + 1) < 0) return -1;
    }
    return 0;
}

static int check_test(PyObject *test, int depth) {
    long op;
    if (depth > MAX_DEPTH) return bad("nested too deeply");
    if (opcode_of(test, &op) < 0) return -1;
    switch (op) {
    case T_ALL: return shaped(test, 2) ? check_tests(ITEM(test, 1), depth) : bad("T_ALL");
    case T_NOT: return shaped(test, 2) ? check_test(ITEM(test, 1), depth + 1) : bad("T_NOT");
    case T_NULL: case T_NOT_NULL: return shaped(test, 1) ? 0 : bad("T_NULL");
    case T_TEXT:
        if (!shaped(test, 4) || !PyUnicode_CheckExact(ITEM(test, 1)) ||
            !(ITEM(test, 2) == Py_None || PyFloat_CheckExact(ITEM(test, 2))) ||
            !(ITEM(test, 3) == Py_None || PyLong_CheckExact(ITEM(test, 3)))) {
            return bad("T_TEXT");
        }
        if (ITEM(test, 3) != Py_None) {
            int overflow;
            PyLong_AsLongLongAndOverflow(ITEM(test, 3), &overflow);
            if (overflow) return bad("T_TEXT integer beyond 64 bits");
        }
        return 0;
    case T_NUMBER: return shaped(test, 2) && PyFloat_CheckExact(ITEM(test, 1)) ? 0 : bad("T_NUMBER");
    case T_BOOL: return shaped(test, 2) && PyBool_Check(ITEM(test, 1)) ? 0 : bad("T_BOOL");
    case T_ORDER:
        if (!shaped(test, 4) || !PyLong_CheckExact(ITEM(test, 1)) ||
            !(ITEM(test, 2) == Py_None || PyUnicode_CheckExact(ITEM(test, 2))) ||
            !PyFloat_CheckExact(ITEM(test, 3))) {
            return bad("T_ORDER");
        }
        return 0;
    case T_EQ: {
        PyObject *arg = shaped(test, 3) ? ITEM(test, 1) : NULL;
        if (arg == NULL || !PyBool_Check(ITEM(test, 2)) ||
            !(arg == Py_None || PyBool_Check(arg) || PyUnicode_CheckExact(arg) ||
              PyLong_CheckExact(arg) || PyFloat_CheckExact(arg))) {
            return bad("T_EQ");
        }
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
        return 0;
    }
    default: return bad("unknown test opcode");
    }
}

static int check_node(PyObject *node, int depth) {
    long op;
    if (depth > MAX_DEPTH) return bad("nested too deeply");
    if (opcode_of(node, &op) < 0) return -1;
    switch (op) {
    case C_TRUE: return shaped(node, 1) ? 0 : bad("C_TRUE");
    case C_ALL: case C_ANY: case C_NONE: {
        PyObject *kids = shaped(node, 2) ? ITEM(node, 1) : NULL;
        if (kids == NULL || !PyTuple_CheckExact(kids)) return bad("C_ALL/C_ANY/C_NONE");
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kids); i++) {
            if (check_node(ITEM(kids, i), depth + 1) < 0) return -1;
        }
        return 0;
    }
    case C_NOT: return shaped(node, 2) ? check_node(ITEM(node, 1), depth + 1) : bad("C_NOT");
    case C_PATH: {
        if (!shaped(node, 4) || !PyTuple_CheckExact(ITEM(node, 1)) ||
            PyTuple_GET_SIZE(ITEM(node, 1)) < 1 || !PyUnicode_CheckExact(ITEM(node, 2))) {
            return bad("C_PATH");
        }
        PyObject *parts = ITEM(node, 1);
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(parts); i++) {
            PyObject *part = ITEM(parts, i);
            if (!shaped(part, 3) || !PyUnicode_CheckExact(ITEM(part, 0)) ||
                !PyBool_Check(ITEM(part, 1)) || !PyLong_CheckExact(ITEM(part, 2))) {
                return bad("C_PATH part");
            }
            int overflow;
            PyLong_AsLongLongAndOverflow(ITEM(part, 2), &overflow);
            if (overflow) return bad("C_PATH index beyond 64 bits");
        }
        return check_test(ITEM(node, 3), depth + 1);
    }
    default: return bad("unknown node opcode");
    }
}

/* ---- JavaScript's coercions ---- */

static PyObject *helper(Condition *self, int which, PyObject *v) {
    return PyObject_CallOneArg(self->helpers[which], v);
}

/* Number(v) into *out; -1 with an exception set. */
static int to_number(Condition *self, PyObject *v, double *out) {
    if (v == Py_None) {
        *out = 0.0;
        return 0;
    }
    if (PyBool_Check(v)) {
        *out = v == Py_True ? 1.0 : 0.0;
        return 0;
    }
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 0;
    }
    PyObject *number = PyLong_CheckExact(v) ? Py_NewRef(v) : helper(self, H_TO_NUMBER, v);
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

/* String(v) == text: 1, 0 or -1. number is Number(text) when text is how JavaScript prints
 * that number (else None); integer is int(text) when text is how Python prints that int. */
static int text_equals(Condition *self, PyObject *v, PyObject *text, PyObject *number,
                       PyObject *integer) {
    if (PyUnicode_CheckExact(v)) return PyUnicode_Compare(v, text) == 0;
    if (v == Py_None) return PyUnicode_CompareWithASCIIString(text, "null") == 0;
    if (PyBool_Check(v)) {
        return PyUnicode_CompareWithASCIIString(text, v == Py_True ? "true" : "false") == 0;
    }
    if (PyFloat_CheckExact(v)) {
        if (number == Py_None) return 0;
        double d = PyFloat_AS_DOUBLE(v), n = PyFloat_AS_DOUBLE(number);
        return d == n || (isnan(d) && isnan(n));
    }
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow) return integer != Py_None && n == PyLong_AsLongLong(integer);
    }
    PyObject *printed = helper(self, H_TO_STRING, v);
    if (printed == NULL) return -1;
    int result = PyUnicode_Compare(printed, text);
    Py_DECREF(printed);
    if (result == -1 && PyErr_Occurred()) return -1;
    return result == 0;
}

/* The abstract relational comparison of v and the operand (text, or None with its Number):
 * 0 (v < operand), 1 (equal), 2 (v > operand), UNDEFINED (a NaN), or -1 with an exception. */
static int order_of(Condition *self, PyObject *v, PyObject *text, double number) {
    if (text != Py_None) {
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
static int among(PyObject *x, PyObject *test) {
    if (PyUnicode_CheckExact(x)) return PySet_Contains(ITEM(test, 1), x);
    long flags = PyLong_AsLong(ITEM(test, 3));
    if (x == Py_None) return (flags & IN_NULL) != 0;
    if (x == Py_True) return (flags & IN_TRUE) != 0;
    if (x == Py_False) return (flags & IN_FALSE) != 0;
    if (!is_number(x)) return 0;
    if (PyFloat_Check(x) && isnan(PyFloat_AS_DOUBLE(x))) return (flags & IN_NAN) != 0;
    PyObject *numbers = ITEM(test, 2);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(numbers); i++) {
        int equal = numbers_equal(x, ITEM(numbers, i));
        if (equal != 0) return equal;
    }
    return 0;
}

static int is_in(PyObject *v, PyObject *test) {
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

static int matches(Condition *self, PyObject *test, PyObject *v) {
    switch (OPCODE(test)) {
    case T_ALL: {
        PyObject *tests = ITEM(test, 1);
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tests); i++) {
            int r = matches(self, ITEM(tests, i), v);
            if (r <= 0) return r;
        }
        return 1;
    }
    case T_NOT: {
        int r = matches(self, ITEM(test, 1), v);
        return r < 0 ? -1 : !r;
    }
    case T_NULL: return v == Py_None;
    case T_NOT_NULL: return v != Py_None;
    case T_TEXT: return text_equals(self, v, ITEM(test, 1), ITEM(test, 2), ITEM(test, 3));
    case T_NUMBER: {
        double m;
        if (to_number(self, v, &m) < 0) return -1;
        return m == PyFloat_AS_DOUBLE(ITEM(test, 1));
    }
    case T_BOOL: {
        if (v == Py_None) return 0;
        int t = truthy(self, v);
        return t < 0 ? -1 : t == (ITEM(test, 1) == Py_True);
    }
    case T_ORDER: {
        int found = order_of(self, v, ITEM(test, 2), PyFloat_AS_DOUBLE(ITEM(test, 3)));
        if (found < 0) return -1;
        if (found == UNDEFINED) return 0;
        switch (PyLong_AsLong(ITEM(test, 1))) { /* $lt, $lte, $gt, $gte */
        case 0: return found == 0;
        case 1: return found <= 1;
        case 2: return found == 2;
        default: return found >= 1;
        }
    }
    case T_EQ: {
        int equal = strictly_equal(v, ITEM(test, 1));
        return equal < 0 ? -1 : equal != (ITEM(test, 2) == Py_True);
    }
    case T_IN: {
        int found = is_in(v, test);
        return found < 0 ? -1 : found != (ITEM(test, 4) == Py_True);
    }
    default: return 0; /* unreachable: the program was checked */
    }
}

/* The attribute at a path (a new reference): dicts and lists are walked here, anything else
 * by the reference's attribute_at from the root. */
static PyObject *attribute_at(Condition *self, PyObject *root, PyObject *node) {
    PyObject *parts = ITEM(node, 1);
    PyObject *current = Py_NewRef(root);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(parts); i++) {
        PyObject *part = ITEM(parts, i), *next;
        if (PyDict_CheckExact(current)) {
            next = PyDict_GetItemWithError(current, ITEM(part, 0));
            if (next == NULL && PyErr_Occurred()) {
                Py_DECREF(current);
                return NULL;
            }
            next = next == NULL ? Py_None : next;
            Py_INCREF(next);
        } else if (PyList_CheckExact(current)) {
            long long index = PyLong_AsLongLong(ITEM(part, 2));
            if (ITEM(part, 1) == Py_True) {
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
            return PyObject_CallFunctionObjArgs(self->helpers[H_ATTRIBUTE_AT], root,
                                                ITEM(node, 2), NULL);
        }
        Py_DECREF(current);
        current = next;
    }
    return current;
}

static int holds(Condition *self, PyObject *node, PyObject *subject) {
    switch (OPCODE(node)) {
    case C_TRUE: return 1;
    case C_ALL: case C_ANY: case C_NONE: {
        long op = OPCODE(node);
        PyObject *kids = ITEM(node, 1);
        Py_ssize_t n = PyTuple_GET_SIZE(kids);
        if (op != C_ALL && n == 0) return op == C_ANY;
        for (Py_ssize_t i = 0; i < n; i++) {
            int r = holds(self, ITEM(kids, i), subject);
            if (r < 0) return -1;
            if (op == C_ALL && !r) return 0;
            if (op != C_ALL && r) return op == C_ANY;
        }
        return op != C_ANY;
    }
    case C_NOT: {
        int r = holds(self, ITEM(node, 1), subject);
        return r < 0 ? -1 : !r;
    }
    case C_PATH: {
        PyObject *value = attribute_at(self, subject, node);
        if (value == NULL) return -1;
        int r = matches(self, ITEM(node, 3), value);
        Py_DECREF(value);
        return r;
    }
    default: return 0; /* unreachable: the program was checked */
    }
}

int tkv1_condition_holds(PyObject *condition, PyObject *attributes) {
    Condition *self = (Condition *)condition;
    return holds(self, self->program, attributes == Py_None ? self->empty : attributes);
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
    if (check_node(program, 0) < 0) return NULL;
    Condition *self = (Condition *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->empty = PyDict_New();
    if (self->empty == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->program = Py_NewRef(program);
    for (int i = 0; i < HELPERS; i++) self->helpers[i] = Py_NewRef(ITEM(helpers, i));
    return (PyObject *)self;
}

static void condition_dealloc(Condition *self) {
    Py_XDECREF(self->program);
    for (int i = 0; i < HELPERS; i++) Py_XDECREF(self->helpers[i]);
    Py_XDECREF(self->empty);
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
