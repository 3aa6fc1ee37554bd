/*
 * Shared between the accelerator's files: _tkv1.c (hashing, tk-v1 and sl-v2 slots, the module),
 * _tkv1_condition.c (targeting conditions compiled to a program) and _tkv1_plan.c (the whole
 * sl-v2 evaluation of one unit, from a plan precomputed per experiment and site).
 */
#ifndef SPLITLAB_TKV1_H
#define SPLITLAB_TKV1_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define MAX_SLOTS 10000

/* SHA-256 of a followed by b (OpenSSL when found, else the portable implementation). */
void tkv1_hash_two(const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size,
                   uint8_t out[32]);
/* The UTF-8 text of str(identifier) (a str or an int); *owner, when set, must be released. */
int tkv1_identifier_text(PyObject *identifier, const char **text, Py_ssize_t *size,
                         PyObject **owner);
/* Hashes text + salt, writes 64 hex digits to hex, returns the digest's first 24 bits. */
long tkv1_hex_digest(const uint8_t *text, size_t size, const uint8_t *salt, size_t salt_size,
                     Py_UCS1 *hex);
/* The slot of a 24-bit value among count slots, or -1 when the unit is out of sample. */
long tkv1_place(long value, long count, double threshold);

extern PyTypeObject Tkv1_ConditionType;
extern PyTypeObject Tkv1_PlanType;
extern PyTypeObject Tkv1_ResolverType;

/* Whether attributes (a mapping, or None for none) satisfy a Condition: 1, 0, or -1 with an
 * exception set. */
int tkv1_condition_holds(PyObject *condition, PyObject *attributes);
/* plan_resolve(plan, identifier, experiment, attributes) -> the Resolution. */
PyObject *tkv1_plan_resolve(PyObject *plan, PyObject *identifier, PyObject *experiment,
                            PyObject *attributes);
PyObject *tkv1_resolve_plan(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
