/* attrs.c - the attribute table (compiler/ops/attrs.def) as data: slots by name, typed
 * access checked against each op's row, and the printer --dump-ir uses. */
#include <string.h>

#include "ir.h"
#include "ops.h"

const AttrInfo attr_info[A_COUNT] = {
    [A_NONE] = {"", AT_INT, 0, NULL},
#define ATTR(id, name, type, flags, names) [id] = {name, type, flags, names},
#include "attrs.def"
#undef ATTR
};

/* Each op's row; a row longer than IR_MAX_ATTRS does not compile (excess initialisers). */
typedef struct OpAttrRow {
    AttrName a[IR_MAX_ATTRS + 1];
} OpAttrRow;
static const OpAttrRow rows[OP_COUNT] = {
#define OP_ATTRS(op, ...) [OP_##op] = {{__VA_ARGS__}},
#include "attrs.def"
#undef OP_ATTRS
};

int attr_slot(int op, AttrName a) {
    for (int i = 0; rows[op].a[i] != A_NONE; i++)
        if (rows[op].a[i] == a) return i;
    return -1;
}

const AttrName *op_attr_names(int op) { return rows[op].a; }

AttrName attr_by_name(const char *name, size_t len) {
    for (int a = 1; a < A_COUNT; a++)
        if (strlen(attr_info[a].name) == len && !strncmp(attr_info[a].name, name, len)) return (AttrName)a;
    return A_NONE;
}

/* The slot of a on n's op, as type t: an internal error when the op has no such attribute
 * or (debug builds) it has another type. */
static int slot(const Node *n, AttrName a, AttrType t) {
    int s = attr_slot(n->op, a);
    if (s < 0) mlc_die("op %s has no attribute %s (attrs.def)", op_info[n->op].name, attr_info[a].name);
#ifndef NDEBUG
    AttrType have = attr_info[a].type;
    int ok = have == t || (t == AT_INT && (have == AT_BOOL || have == AT_ENUM));
    if (!ok) mlc_die("attribute %s of %s is read or written as the wrong type", attr_info[a].name, op_info[n->op].name);
#else
    (void)t;
#endif
    return s;
}

int64_t attr_i(const Node *n, AttrName a) { return n->attr[slot(n, a, AT_INT)].i; }
double attr_f(const Node *n, AttrName a) { return n->attr[slot(n, a, AT_FLOAT)].f; }
int64_t attr_h(const Node *n, AttrName a) { return n->attr[slot(n, a, AT_PAIR)].p[0]; }
int64_t attr_w(const Node *n, AttrName a) { return n->attr[slot(n, a, AT_PAIR)].p[1]; }
int attr_perm_at(const Node *n, AttrName a, int i) { return n->attr[slot(n, a, AT_PERM)].perm[i]; }
void attr_set_i(Node *n, AttrName a, int64_t v) { n->attr[slot(n, a, AT_INT)].i = v; }
void attr_set_f(Node *n, AttrName a, double v) { n->attr[slot(n, a, AT_FLOAT)].f = v; }

/* Copies only the member the type uses, into a zeroed slot: the bytes of a union beyond
 * the member an initialiser names are unspecified, and simplify compares slots bytewise. */
void attr_set_all(Node *n, const AttrArg *list) {
    for (const AttrArg *p = list; p && p->name != A_NONE; p++) {
        AttrType t = attr_info[p->name].type;
        AttrVal *v = &n->attr[slot(n, p->name, t == AT_BOOL || t == AT_ENUM ? AT_INT : t)];
        memset(v, 0, sizeof *v);
        if (t == AT_FLOAT) v->f = p->val.f;
        else if (t == AT_PAIR) memcpy(v->p, p->val.p, sizeof v->p);
        else if (t == AT_PERM) memcpy(v->perm, p->val.perm, sizeof v->perm);
        else v->i = p->val.i;
    }
}

int attr_same(const Node *a, const Node *b, AttrName x) {
    AttrType t = attr_info[x].type;
    AttrType as = t == AT_BOOL || t == AT_ENUM ? AT_INT : t;
    return !memcmp(&a->attr[slot(a, x, as)], &b->attr[slot(b, x, as)], sizeof(AttrVal));
}

void attr_copy_common(Node *n, const Node *from) {
    for (const AttrName *a = op_attr_names(from->op); *a != A_NONE; a++) {
        int s = attr_slot(n->op, *a);
        if (s >= 0) n->attr[s] = from->attr[attr_slot(from->op, *a)];
    }
}

void attr_print(FILE *out, const Node *n) {
    const char *sep = " {";
    for (const AttrName *a = op_attr_names(n->op); *a != A_NONE; a++) {
        const AttrInfo *ai = &attr_info[*a];
        const AttrVal *v = &n->attr[a - op_attr_names(n->op)];
        if (ai->flags & AF_OMIT_ZERO && (ai->type == AT_FLOAT ? v->f == 0 : v->i == 0)) continue;
        if (ai->type == AT_BOOL && !v->i) continue;
        fprintf(out, "%s%s", sep, ai->name);
        sep = ", ";
        switch (ai->type) {
        case AT_BOOL: break;
        case AT_INT: fprintf(out, "=%lld", (long long)v->i); break;
        case AT_FLOAT: fprintf(out, "=%.9g", v->f); break;
        case AT_PAIR: fprintf(out, "=[%lld, %lld]", (long long)v->p[0], (long long)v->p[1]); break;
        case AT_PERM:
            for (int i = 0; i < n->shape.rank; i++) fprintf(out, "%s%d", i ? ", " : "=[", v->perm[i]);
            fprintf(out, "]");
            break;
        case AT_ENUM: {
            int64_t k = 0;
            while (ai->names[k] && k < v->i) k++;
            if (v->i >= 0 && ai->names[k]) fprintf(out, "=%s", ai->names[k]);
            else fprintf(out, "=?%lld", (long long)v->i);
            break;
        }
        }
    }
    if (sep[0] == ',') fprintf(out, "}");
}
