/* interp.h - the reference interpreter: evaluates a graph in double precision.
 *
 * It is the yardstick the tests hold everything else to: gradient rules are checked
 * against finite differences computed with it, and generated code against its values.
 * It is deliberately simple (dense loops, no sharing) and never used by the trainers. */
#ifndef MLC_INTERP_H
#define MLC_INTERP_H

#include "ir.h"

/* Values of every node, row-major, B at its compile-time value. Before running, the
 * caller fills vals[id] for each input/param/state node (interp_alloc gives zeroed
 * buffers for all of them). Update nodes are not evaluated. */
typedef struct Interp {
    const Graph *g;
    double **vals;
} Interp;

Interp *interp_new(const Graph *g);
void interp_run(Interp *in);
void interp_free(Interp *in);

#endif
