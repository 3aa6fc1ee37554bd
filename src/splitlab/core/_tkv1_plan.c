/*
 * The whole evaluation of one unit in C, from a plan that resolution.py precomputes once per
 * experiment and site (see plan_for there): the sl-v2 gates in their order (holdouts, layer,
 * targeting), then the subject id and the slot, answered as the Resolution type it is given.
 *
 *   Plan(name, slot_groups, threshold, holdouts, layer, condition, result_type, reasons)
 *       name: the experiment's UTF-8 name (bytes); slot_groups and threshold as for assign_one;
 *       holdouts: ((b":holdout:" + name, weight), ...); layer: None or
 *       (b":layer:" + name, lo, hi); condition: None, a Condition, or any callable of the
 *       attributes (the Python evaluator, for conditions outside the C subset); reasons: the
 *       reasons (assigned, not_sampled, holdout, layer, targeting).
 *   resolve_plan(plan, identifier, experiment, attributes) -> result_type(group, reason,
 *       subject_id, experiment, "")
 *   Resolver(slow): a callable with resolve's signature. Called with 2 to 4 positional
 *       arguments, an experiment and an int or str identifier, it finds the plan in
 *       experiment.plans[site] and evaluates it here; everything else (overrides, `now`, a
 *       missing identifier or experiment, a plan not built yet) goes to slow, with the same
 *       arguments; slow builds and caches the plans.
 */
#include "_tkv1.h"

#include <stddef.h>
#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_OBJECT_EX T_OBJECT_EX
#define AUDIT_READ READ_RESTRICTED
#else
#define AUDIT_READ Py_AUDIT_READ
#endif

enum { R_ASSIGNED, R_NOT_SAMPLED, R_HOLDOUT, R_LAYER, R_TARGETING, REASONS };

typedef struct {
    PyObject_HEAD
    PyObject *name;
    PyObject *slot_groups;
    double threshold;
    PyObject *holdouts;
    PyObject *layer;
    PyObject *condition;
    PyTypeObject *result_type;
    PyObject *reasons;
    PyObject *detail;
    PyObject *empty;
} Plan;

/* (int(sha256_hex(text + suffix)[:8], 16) * 100000) >> 32 */
static long bin_of(const char *text, Py_ssize_t size, PyObject *suffix) {
    uint8_t out[32];
    tkv1_hash_two((const uint8_t *)text, (size_t)size, (const uint8_t *)PyBytes_AS_STRING(suffix),
                  (size_t)PyBytes_GET_SIZE(suffix), out);
    uint64_t head = (uint64_t)out[0] << 24 | (uint64_t)out[1] << 16 | (uint64_t)out[2] << 8 |
                    (uint64_t)out[3];
    return (long)((head * 100000U) >> 32);
}

/* The gate that keeps the unit out (R_HOLDOUT, R_LAYER, R_TARGETING), REASONS when it passes
 * them all, or -1 with an exception set. */
static int gate(Plan *plan, const char *text, Py_ssize_t size, PyObject *attributes) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(plan->holdouts); i++) {
        PyObject *holdout = PyTuple_GET_ITEM(plan->holdouts, i);
        if (bin_of(text, size, PyTuple_GET_ITEM(holdout, 0)) <
            PyLong_AsLong(PyTuple_GET_ITEM(holdout, 1))) {
            return R_HOLDOUT;
        }
    }
    if (plan->layer != Py_None) {
        long bin = bin_of(text, size, PyTuple_GET_ITEM(plan->layer, 0));
        if (bin < PyLong_AsLong(PyTuple_GET_ITEM(plan->layer, 1)) ||
            bin >= PyLong_AsLong(PyTuple_GET_ITEM(plan->layer, 2))) {
            return R_LAYER;
        }
    }
    if (plan->condition == Py_None) return REASONS;
    int passes;
    if (Py_IS_TYPE(plan->condition, &Tkv1_ConditionType)) {
        passes = tkv1_condition_holds(plan->condition, attributes);
    } else { /* the Python evaluator sees `attributes or {}`, as the reference's gate does */
        int given = attributes == Py_None ? 0 : PyObject_IsTrue(attributes);
        if (given < 0) return -1;
        PyObject *found = PyObject_CallOneArg(plan->condition, given ? attributes : plan->empty);
        if (found == NULL) return -1;
        passes = PyObject_IsTrue(found);
        Py_DECREF(found);
    }
    return passes < 0 ? -1 : passes ? REASONS : R_TARGETING;
}

PyObject *tkv1_plan_resolve(PyObject *self, PyObject *identifier, PyObject *experiment,
                            PyObject *attributes) {
    Plan *plan = (Plan *)self;
    const char *text;
    Py_ssize_t size;
    PyObject *owner;
    if (tkv1_identifier_text(identifier, &text, &size, &owner) < 0) return NULL;
    int reason = gate(plan, text, size, attributes);
    PyObject *subject = reason < 0 ? NULL : PyUnicode_New(64, 127);
    if (subject == NULL) {
        Py_XDECREF(owner);
        return NULL;
    }
    long value = tkv1_hex_digest((const uint8_t *)text, (size_t)size,
                                 (const uint8_t *)PyBytes_AS_STRING(plan->name),
                                 (size_t)PyBytes_GET_SIZE(plan->name),
                                 PyUnicode_1BYTE_DATA(subject));
    Py_XDECREF(owner);
    PyObject *group = Py_None;
    if (reason == REASONS) {
        long slot = tkv1_place(value, PyTuple_GET_SIZE(plan->slot_groups), plan->threshold);
        reason = slot < 0 ? R_NOT_SAMPLED : R_ASSIGNED;
        if (slot >= 0) group = PyTuple_GET_ITEM(plan->slot_groups, slot);
    }
    PyObject *result = plan->result_type->tp_alloc(plan->result_type, 5);
    if (result == NULL) {
        Py_DECREF(subject);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, Py_NewRef(group));
    PyTuple_SET_ITEM(result, 1, Py_NewRef(PyTuple_GET_ITEM(plan->reasons, reason)));
    PyTuple_SET_ITEM(result, 2, subject);
    PyTuple_SET_ITEM(result, 3, Py_NewRef(experiment));
    PyTuple_SET_ITEM(result, 4, Py_NewRef(plan->detail));
    return result;
}

static int is_identifier(PyObject *v) {
    return PyUnicode_Check(v) || (PyLong_Check(v) && !PyBool_Check(v));
}

PyObject *tkv1_resolve_plan(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 4 || !Py_IS_TYPE(args[0], &Tkv1_PlanType)) {
        PyErr_SetString(PyExc_TypeError,
                        "resolve_plan(plan, identifier, experiment, attributes)");
        return NULL;
    }
    return tkv1_plan_resolve(args[0], args[1], args[2], args[3]);
}

static int valid_plan(PyObject *holdouts, PyObject *layer, PyObject *reasons) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(holdouts); i++) {
        PyObject *h = PyTuple_GET_ITEM(holdouts, i);
        if (!PyTuple_CheckExact(h) || PyTuple_GET_SIZE(h) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(h, 0)) ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(h, 1))) {
            return 0;
        }
    }
    if (layer != Py_None &&
        (!PyTuple_CheckExact(layer) || PyTuple_GET_SIZE(layer) != 3 ||
         !PyBytes_CheckExact(PyTuple_GET_ITEM(layer, 0)) ||
         !PyLong_CheckExact(PyTuple_GET_ITEM(layer, 1)) ||
         !PyLong_CheckExact(PyTuple_GET_ITEM(layer, 2)))) {
        return 0;
    }
    return PyTuple_GET_SIZE(reasons) == REASONS;
}

static PyObject *plan_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *name, *slot_groups, *holdouts, *layer, *condition, *result_type, *reasons;
    double threshold;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "Plan takes no keywords");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!dO!OOO!O!:Plan", &PyBytes_Type, &name, &PyTuple_Type,
                          &slot_groups, &threshold, &PyTuple_Type, &holdouts, &layer,
                          &condition, &PyType_Type, &result_type, &PyTuple_Type, &reasons)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(slot_groups) > MAX_SLOTS || !valid_plan(holdouts, layer, reasons) ||
        !PyType_IsSubtype((PyTypeObject *)result_type, &PyTuple_Type) ||
        !(condition == Py_None || PyCallable_Check(condition))) {
        PyErr_SetString(PyExc_ValueError, "malformed plan (see _tkv1_plan.c)");
        return NULL;
    }
    Plan *self = (Plan *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->detail = PyUnicode_New(0, 0);
    self->empty = PyDict_New();
    if (self->detail == NULL || self->empty == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->name = Py_NewRef(name);
    self->slot_groups = Py_NewRef(slot_groups);
    self->threshold = threshold;
    self->holdouts = Py_NewRef(holdouts);
    self->layer = Py_NewRef(layer);
    self->condition = Py_NewRef(condition);
    self->result_type = (PyTypeObject *)Py_NewRef(result_type);
    self->reasons = Py_NewRef(reasons);
    return (PyObject *)self;
}

static void plan_dealloc(Plan *self) {
    Py_XDECREF(self->name);
    Py_XDECREF(self->slot_groups);
    Py_XDECREF(self->holdouts);
    Py_XDECREF(self->layer);
    Py_XDECREF(self->condition);
    Py_XDECREF(self->result_type);
    Py_XDECREF(self->reasons);
    Py_XDECREF(self->detail);
    Py_XDECREF(self->empty);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyTypeObject Tkv1_PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "splitlab.core._tkv1.Plan",
    .tp_basicsize = sizeof(Plan),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Plan(name, slot_groups, threshold, holdouts, layer, condition, result_type, "
              "reasons): one experiment's evaluation on one site, precomputed.",
    .tp_new = plan_new,
    .tp_dealloc = (destructor)plan_dealloc,
};

/* ---- Resolver: resolve's fast path ---- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *slow;
    PyObject *plans; /* the attribute name "plans" */
    /* Where experiments keep their plans: the last experiment type seen, when `plans` is a
     * slot of it (a member descriptor), the slot's offset, and the type's version tag then (any
     * change to the type's attributes changes the tag, and the offset is looked up again). */
    PyTypeObject *slot_type;
    unsigned int slot_version;
    Py_ssize_t slot_offset;
#if PY_VERSION_HEX < 0x030C0000
#define PLAN_MEMO 1
    /* The last plan found, its dict and site (strong references: their addresses are not
     * reused while kept), and the dict's version then (PEP 509: any change to the dict changes
     * it), so that the same experiment and site again skip the dict lookup. */
    PyObject *memo_plans, *memo_site, *memo_plan;
    uint64_t memo_version;
#endif
} Resolver;

/* experiment.plans (a new reference), or NULL with no exception: read straight from the slot
 * when the experiment's type is the one last seen and unchanged since (a slot, `plans`, read by
 * the generic attribute lookup: what getattr would answer). */
static PyObject *plans_of(Resolver *self, PyObject *experiment) {
    PyTypeObject *type = Py_TYPE(experiment);
    if (type == self->slot_type && type->tp_version_tag == self->slot_version) {
        return Py_XNewRef(*(PyObject **)((char *)experiment + self->slot_offset));
    }
    PyObject *descriptor = PyObject_GetAttr((PyObject *)type, self->plans);
    if (descriptor == NULL) PyErr_Clear();
    if (descriptor != NULL && Py_IS_TYPE(descriptor, &PyMemberDescr_Type) &&
        type->tp_getattro == PyObject_GenericGetAttr && type->tp_version_tag != 0) {
        PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
        if (member->type == Py_T_OBJECT_EX && !(member->flags & AUDIT_READ)) {
            Py_XSETREF(self->slot_type, (PyTypeObject *)Py_NewRef(type));
            self->slot_version = type->tp_version_tag;
            self->slot_offset = member->offset;
        }
    }
    Py_XDECREF(descriptor);
    PyObject *plans = PyObject_GetAttr(experiment, self->plans);
    if (plans == NULL) PyErr_Clear();
    return plans;
}

/* The plan cached for (experiment, site), borrowed from the experiment's dict, or NULL (with no
 * exception) when there is none yet or the experiment is not what it should be. */
static PyObject *cached_plan(Resolver *self, PyObject *experiment, PyObject *site) {
    PyObject *plans = plans_of(self, experiment);
    if (plans == NULL) return NULL;
#ifdef PLAN_MEMO
    if (plans == self->memo_plans && site == self->memo_site &&
        ((PyDictObject *)plans)->ma_version_tag == self->memo_version) {
        Py_DECREF(plans);
        return self->memo_plan;
    }
#endif
    PyObject *plan = PyDict_Check(plans) ? PyDict_GetItemWithError(plans, site) : NULL;
    if (plan == NULL && PyErr_Occurred()) PyErr_Clear(); /* an unhashable site: slow says so */
    if (plan == NULL || !Py_IS_TYPE(plan, &Tkv1_PlanType)) plan = NULL;
#ifdef PLAN_MEMO
    if (plan != NULL) {
        Py_XSETREF(self->memo_plans, Py_NewRef(plans));
        Py_XSETREF(self->memo_site, Py_NewRef(site));
        Py_XSETREF(self->memo_plan, Py_NewRef(plan));
        self->memo_version = ((PyDictObject *)plans)->ma_version_tag;
    }
#endif
    Py_DECREF(plans); /* the experiment keeps its dict, and the dict its plans */
    return plan;
}

static PyObject *resolver_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                     PyObject *kwnames) {
    Resolver *self = (Resolver *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames == NULL && nargs >= 2 && nargs <= 4 && args[1] != Py_None &&
        is_identifier(args[0])) {
        PyObject *plan = cached_plan(self, args[1], nargs > 2 ? args[2] : Py_None);
        if (plan != NULL) {
            Py_INCREF(plan);
            PyObject *result = tkv1_plan_resolve(plan, args[0], args[1],
                                                 nargs > 3 ? args[3] : Py_None);
            Py_DECREF(plan);
            return result;
        }
    }
    return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
}

static PyObject *resolver_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *slow;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "Resolver(slow) takes no keywords");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:Resolver", &slow)) return NULL;
    if (!PyCallable_Check(slow)) {
        PyErr_SetString(PyExc_TypeError, "Resolver(slow): slow must be callable");
        return NULL;
    }
    Resolver *self = (Resolver *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->plans = PyUnicode_InternFromString("plans");
    if (self->plans == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->vectorcall = resolver_vectorcall;
    self->slow = Py_NewRef(slow);
    return (PyObject *)self;
}

static int resolver_traverse(Resolver *self, visitproc visit, void *arg) {
    Py_VISIT(self->slow);
    Py_VISIT(self->slot_type);
#ifdef PLAN_MEMO
    Py_VISIT(self->memo_plans);
    Py_VISIT(self->memo_site);
    Py_VISIT(self->memo_plan);
#endif
    return 0;
}

static int resolver_clear(Resolver *self) {
    Py_CLEAR(self->slow);
    Py_CLEAR(self->slot_type);
#ifdef PLAN_MEMO
    Py_CLEAR(self->memo_plans);
    Py_CLEAR(self->memo_site);
    Py_CLEAR(self->memo_plan);
#endif
    return 0;
}

static void resolver_dealloc(Resolver *self) {
    PyObject_GC_UnTrack(self);
    resolver_clear(self);
    Py_XDECREF(self->plans);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *resolver_wrapped(Resolver *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->slow);
}

static PyObject *resolver_doc(Resolver *self, void *closure) {
    (void)closure;
    return PyObject_GetAttrString(self->slow, "__doc__");
}

static PyGetSetDef resolver_getset[] = {
    {"__wrapped__", (getter)resolver_wrapped, NULL, "the Python function it stands for", NULL},
    {"__doc__", (getter)resolver_doc, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject Tkv1_ResolverType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "splitlab.core._tkv1.Resolver",
    .tp_basicsize = sizeof(Resolver),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = resolver_new,
    .tp_dealloc = (destructor)resolver_dealloc,
    .tp_traverse = (traverseproc)resolver_traverse,
    .tp_clear = (inquiry)resolver_clear,
    .tp_vectorcall_offset = offsetof(Resolver, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_getset = resolver_getset,
};
