/* attrs.h - named, typed op attributes (the table: compiler/ops/attrs.def).
 *
 * A node keeps its attributes in Node.attr, one slot per entry of its op's OP_ATTRS row, in
 * that order; code names them, never their slot: attr_i(n, A_AXIS), attr_pair(n, A_STRIDE).
 * Asking a node for an attribute its op does not have is an internal error (mlc_die); so is,
 * in debug builds, asking for it as another type. Nodes are made with their attributes
 * given by name:
 *     graph_add(g, OP_slice, &x, 1, ATTRS(AI(A_AXIS, 1), AI(A_START, 0), AI(A_END, 4)), loc);
 * and attributes an ATTRS list leaves out are zero. */
#ifndef MLC_ATTRS_H
#define MLC_ATTRS_H

#include <stdint.h>
#include <stdio.h>

/* Included by ir.h, after IR_MAX_RANK. */
#define IR_MAX_ATTRS 6 /* conv2d_bwd_data has 5; one spare for a conv algorithm choice */

typedef enum AttrName {
    A_NONE, /* ends an ATTRS list and an op's row */
#define ATTR(id, name, type, flags, names) id,
#include "attrs.def"
#undef ATTR
    A_COUNT
} AttrName;

typedef enum AttrType { AT_INT, AT_BOOL, AT_FLOAT, AT_PAIR, AT_PERM, AT_ENUM } AttrType;
enum { AF_OMIT_ZERO = 1 };

/* One attribute's value: i (int, bool, enum), f (float), p (pair: p[0] h, p[1] w) or perm. */
typedef union AttrVal {
    int64_t i;
    double f;
    int64_t p[2];
    int8_t perm[IR_MAX_RANK];
} AttrVal;

typedef struct AttrInfo {
    const char *name;
    AttrType type;
    unsigned flags;
    const char *const *names; /* AT_ENUM: the name of each value, NULL-terminated */
} AttrInfo;
extern const AttrInfo attr_info[A_COUNT];

/* An attribute given by name, for graph_add. */
typedef struct AttrArg {
    AttrName name;
    AttrVal val;
} AttrArg;
#define AI(a, x) ((AttrArg){(a), {.i = (x)}})
#define AF(a, x) ((AttrArg){(a), {.f = (x)}})
#define AP(a, h, w) ((AttrArg){(a), {.p = {(h), (w)}}})
#define AV(a, v) ((AttrArg){(a), (v)}) /* any AttrVal, e.g. a perm */
#define ATTRS(...) ((const AttrArg[]){__VA_ARGS__, {A_NONE, {0}}})

struct Node;
/* The slot of attribute a on op (an Op); -1 when the op has no such attribute. */
int attr_slot(int op, AttrName a);
/* Whether op has attribute a. */
static inline int op_has_attr(int op, AttrName a) { return attr_slot(op, a) >= 0; }
/* The attribute names of op, A_NONE-terminated. */
const AttrName *op_attr_names(int op);
/* The attribute whose printed name is `name`; A_NONE when none. */
AttrName attr_by_name(const char *name, size_t len);

int64_t attr_i(const struct Node *n, AttrName a); /* int, bool, enum */
double attr_f(const struct Node *n, AttrName a);  /* float */
int64_t attr_h(const struct Node *n, AttrName a); /* a pair's first value */
int64_t attr_w(const struct Node *n, AttrName a); /* a pair's second value */
int attr_perm_at(const struct Node *n, AttrName a, int i);
void attr_set_i(struct Node *n, AttrName a, int64_t v);
void attr_set_f(struct Node *n, AttrName a, double v);
/* Sets n's attributes from list (A_NONE-terminated, NULL: none). */
void attr_set_all(struct Node *n, const AttrArg *list);
/* Whether a and b hold the same value of attribute x (both ops must have it). */
int attr_same(const struct Node *a, const struct Node *b, AttrName x);
/* Copies every attribute of `from` that n's op also has. */
void attr_copy_common(struct Node *n, const struct Node *from);

/* Prints n's attributes, ` {name=value, ...}`, or nothing when it has none to show. */
void attr_print(FILE *out, const struct Node *n);

#endif
