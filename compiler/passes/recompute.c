/* recompute.c - fits the train step into a memory budget (--mem-budget) by computing
 * forward values again in the backward instead of keeping them in the arena: cheap ones
 * first, convolutions and GEMMs only when the cheap ones cannot fit the budget.
 *
 * Where the backward starts: autodiff appends every gradient node after the whole forward
 * graph, the optimizer appends its updates after those, and simplify and DCE keep the
 * order, so every node after the loss is backward or update. A forward value that a node
 * after the loss reads is saved for backward: it holds its bytes from the node that
 * writes it to its last backward reader, across the end of the forward pass where the
 * arena peaks. (A forward value the .mdl computes after its loss statement, such as an
 * output, counts as backward here: recomputing for it is just as correct.)
 *
 * Candidates are saved values written by cheap, deterministic ops: elementwise ops
 * (K_EWISE) and those flagged OPF_RECOMPUTE (expand, bn_scale, bn_shift, pooling); in a
 * second round, when the first cannot fit the budget, also the costly ones flagged
 * OPF_CHECKPOINT (convolutions, GEMMs: gradient checkpointing). Never a random op.
 * Recomputing a set R of them rebuilds the
 * graph: forward nodes stay where they are; right before the first backward node that
 * reads a value in R, a clone of its node is inserted, reading the clones of its inputs
 * that are in R and the originals of the others; all backward readers read the clone.
 * Reshapes are views, so a reshape of a value in R is cloned with it. The original then
 * dies with its last forward reader, or DCE drops it when only the backward read it. The
 * clone is the same op on the same values, so it computes the same bits: training is
 * unchanged. Clones keep the original's .mdl location and carry ROLE_RECOMPUTED.
 *
 * A clone reads its inputs later than the original did. A parameter or state that an
 * update writes in place between the two would give a different value, so a node reading
 * one is a candidate only when no update writes it before the last backward node that
 * may hold a clone (optimizer updates come after the whole backward; the forward's
 * running-statistics updates write state no cheap op reads).
 *
 * A candidate comes with its cone: the recomputable forward values it reads, directly or
 * through others, that nothing in the backward reads. Recomputing a ReLU's output alone
 * would only keep the batch norm's output alive in its place; with its cone, the clone
 * starts from the conv output the batch norm's backward keeps anyway.
 *
 * Choosing R is greedy over the real memory plan (plan_memory): each step takes the
 * remaining candidate (with its cone) giving the smallest arena (ties: the fewest FLOPs
 * recomputed, then the lowest node id), or drops a chosen one when that shrinks the arena
 * more. A step that shrinks the arena tries the candidates lazily, in the order of what
 * they gained before, until none left could win (best_move); one that does not tries
 * them all. A step that only keeps the arena the same is taken too, since
 * the peak may need two values gone before it drops (two positions may reach it). The
 * search stops when the arena fits, or when no step helps, and settles on the first set
 * that reached the smallest arena seen. The costly round, if needed, runs from that set
 * and from nothing. Deterministic: no hashing of pointers, no randomness.
 *
 * On resnet the cheap round stops at the conv outputs the batch norms' backward reads and
 * the residual blocks' outputs; the costly round then recomputes a few convolutions and
 * halves the arena (--report's budget line says how many, and the FLOPs added). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "ops.h"
#include "passes.h"

/* The rebuilt graph being written. */
typedef struct Rebuild {
    const Graph *g; /* the graph before recomputation */
    Graph *out;
    const char *inr; /* per node of g: recomputed (a chosen value, or a view of one) */
    int *map;        /* node of g -> its original in out */
    int *clone;      /* node of g -> its clone in out, -1 until the backward needs one */
} Rebuild;

static int clone_of(Rebuild *r, int x) {
    if (r->clone[x] >= 0) return r->clone[x];
    Node n = r->g->nodes[x];
    for (int k = 0; k < n.nin; k++) n.in[k] = r->inr[n.in[k]] ? clone_of(r, n.in[k]) : r->map[n.in[k]];
    n.role = ROLE_RECOMPUTED; /* loc, attributes and shape stay the original's */
    r->clone[x] = graph_push(r->out, &n);
    return r->clone[x];
}

/* g with the values in inr recomputed for the nodes after bnd, then DCE'd; in arena a. */
static Graph *rebuild(Arena *a, const Graph *g, int bnd, const char *inr) {
    Rebuild r = {g, graph_new(a, g->mode, g->batch), inr, ARENA_ARRAY(a, int, g->n), ARENA_ARRAY(a, int, g->n)};
    for (int id = 0; id < g->n; id++) r.clone[id] = -1;
    for (int id = 0; id < g->n; id++) {
        Node n = g->nodes[id];
        for (int k = 0; k < n.nin; k++) n.in[k] = id > bnd && inr[n.in[k]] ? clone_of(&r, n.in[k]) : r.map[n.in[k]];
        r.map[id] = graph_push(r.out, &n);
    }
    r.out->loss = g->loss;
    r.out->nout = g->nout;
    memcpy(r.out->outputs, g->outputs, sizeof g->outputs);
    memcpy(r.out->out_names, g->out_names, sizeof g->out_names);
    r.out->cls_output = g->cls_output;
    r.out->cls_label = g->cls_label;
    /* the trials' arenas are planned for the convolutions that will run (--conv-algo) */
    graph_copy_settings(r.out, g);
    graph_remap_roots(r.out, r.map);
    dce(r.out);
    return r.out;
}

/* The search's state. */
typedef struct Search {
    const Graph *g;
    int bnd;           /* the loss: later nodes are backward */
    int *cand, nc;     /* candidate node ids, ascending */
    double *cost;      /* per candidate: FLOPs recomputed, its cone's included */
    int costly;        /* the second round: OPF_CHECKPOINT ops (convolutions, GEMMs) too */
    int **cone;        /* per candidate: its cone's node ids, -1 ended */
    int64_t *gain;     /* per candidate: what its last trial saved (INT64_MAX: not tried yet) */
    char *tried;       /* per candidate: tried in this step */
    char *near;        /* per node: retry_neighbours' marks */
    char *sel;         /* per node: chosen */
    char *inr;         /* per node: chosen, or a reshape of one (recomputed as a view) */
    TargetKind target; /* the arena is planned for this target, */
    int threads;       /* at this many threads */
    int full_search;   /* every step tries every candidate (tests) */
    Arena scratch;     /* the trials' graphs and plans, rewound after each */
    /* the progress line on a terminal (show_progress) */
    int steps;        /* steps taken, all descents */
    double t0, shown; /* when the search started, when the line was last written */
    int64_t budget_asked;
} Search;

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* bytes as "412.3 MiB" or "40.0 KiB", into buf */
static const char *size_text(char *buf, size_t cap, int64_t bytes) {
    double v = (double)bytes / 1024;
    int mib = v >= 1024;
    snprintf(buf, cap, "%.1f %s", mib ? v / 1024 : v, mib ? "MiB" : "KiB");
    return buf;
}

/* A deep model's search takes minutes (docs/distributed.md); after 2 s of it, a line on
 * stderr, rewritten once a second, says that it runs and how far it has come, so that it
 * is not taken for a hang. Only on a terminal: a log or a test's pipe gets nothing. */
static void show_progress(Search *s, int64_t cur, int64_t best) {
    s->steps++;
    double now = seconds_now();
    if (now - s->t0 < 2 || now - s->shown < 1 || !isatty(STDERR_FILENO)) return;
    s->shown = now;
    char a[32], b[32], c[32];
    fprintf(stderr, "\rmlc: --mem-budget: %.0f s, %d steps: arena %s, smallest %s, budget %s   ", now - s->t0, s->steps,
            size_text(a, sizeof a, cur), size_text(b, sizeof b, best), size_text(c, sizeof c, s->budget_asked));
    fflush(stderr);
}

/* Clears the progress line, if one was written. */
static void end_progress(const Search *s) {
    if (s->shown > 0) fprintf(stderr, "\r%*s\r", 110, "");
}

static void close_views(Search *s) {
    const Graph *g = s->g;
    for (int id = 0; id < g->n; id++)
        s->inr[id] = id < s->bnd && (s->sel[id] || (g->nodes[id].op == OP_reshape && s->inr[g->nodes[id].in[0]]));
}

static int64_t arena_bytes(Arena *a, const Graph *g, TargetKind target, int threads) {
    FusionPlan fp = fuse_graph(a, g); /* the plan the emitters will use: with fusion */
    MemPlan p = plan_memory(a, g, &fp, target);
    return 4 * plan_floats(&p, g->batch, threads);
}

/* The arena with the current selection, planned in the scratch arena. */
static int64_t trial(Search *s) {
    close_views(s);
    int64_t bytes = arena_bytes(&s->scratch, rebuild(&s->scratch, s->g, s->bnd, s->inr), s->target, s->threads);
    arena_rewind(&s->scratch);
    return bytes;
}

static int recomputable(const Search *s, const Node *n) {
    const OpInfo *oi = op_of(n);
    return oi->kind == K_EWISE || (oi->rules->flags & OPF_RECOMPUTE) ||
           (s->costly && (oi->rules->flags & OPF_CHECKPOINT));
}

/* Adds to list (of *len) the cone of v's inputs: recomputable, unsaved forward values,
 * each once (mark); returns their FLOPs. */
static double cone_of(const Search *s, const char *saved, const char *ok, int v, char *mark, int *list, int *len) {
    const Node *nd = &s->g->nodes[v];
    double cost = 0;
    for (int k = 0; k < nd->nin; k++) {
        int x = nd->in[k];
        if (mark[x] || saved[view_owner(s->g, x)] || !ok[x]) continue;
        mark[x] = 1;
        list[(*len)++] = x;
        cost += op_flops(s->g, &s->g->nodes[x]) + cone_of(s, saved, ok, x, mark, list, len);
    }
    return cost;
}

static void find_candidates(Search *s) {
    const Graph *g = s->g;
    Arena *a = g->arena;
    int n = g->n, bnd = s->bnd;
    /* saved[v]: a backward node reads v (or a view of it); last: the last such node, the
     * latest a clone can be placed (sources are read in place, never cloned) */
    char *saved = arena_alloc(a, (size_t)n);
    int last = bnd;
    for (int id = bnd + 1; id < n; id++)
        for (int k = 0; k < g->nodes[id].nin; k++) {
            int o = view_owner(g, g->nodes[id].in[k]);
            if (o < bnd && op_of(&g->nodes[o])->kind != K_SOURCE) {
                saved[o] = 1;
                last = id;
            }
        }
    /* written[s]: the last update up to `last` that writes s in place, or -1 */
    int *written = ARENA_ARRAY(a, int, n);
    for (int id = 0; id < n; id++) written[id] = -1;
    for (int id = 0; id <= last; id++)
        if (op_of(&g->nodes[id])->kind == K_UPDATE) written[view_owner(g, g->nodes[id].in[0])] = id;
    /* the loss and the outputs live to the end of the step anyway */
    char *keep = arena_alloc(a, (size_t)n);
    keep[view_owner(g, g->loss)] = 1;
    for (int k = 0; k < g->nout; k++) keep[view_owner(g, g->outputs[k])] = 1;
    s->cand = ARENA_ARRAY(a, int, n);
    s->cost = ARENA_ARRAY(a, double, n);
    s->nc = 0;
    s->cone = ARENA_ARRAY(a, int *, n);
    s->gain = ARENA_ARRAY(a, int64_t, n);
    s->tried = arena_alloc(a, (size_t)n);
    s->near = arena_alloc(a, (size_t)n);
    /* ok[v]: v may be computed again in the backward */
    char *ok = arena_alloc(a, (size_t)n), *mark = arena_alloc(a, (size_t)n);
    int *list = ARENA_ARRAY(a, int, n);
    for (int v = 0; v < bnd; v++) {
        const Node *nd = &g->nodes[v];
        int safe = recomputable(s, nd) || nd->op == OP_reshape;
        for (int k = 0; k < nd->nin && safe; k++) safe &= written[view_owner(g, nd->in[k])] < v;
        ok[v] = (char)safe;
    }
    for (int v = 0; v < bnd; v++) {
        const Node *nd = &g->nodes[v];
        if (!saved[v] || !ok[v] || nd->op == OP_reshape || keep[v]) continue;
        int len = 0;
        memset(mark, 0, (size_t)n);
        s->cost[s->nc] = op_flops(g, nd) + cone_of(s, saved, ok, v, mark, list, &len);
        s->cone[s->nc] = ARENA_ARRAY(a, int, len + 1);
        memcpy(s->cone[s->nc], list, sizeof(int) * (size_t)len);
        s->cone[s->nc][len] = -1;
        s->cand[s->nc++] = v;
    }
}

/* Selects candidate i and its cone; `undo` (NULL: keep) gets the nodes newly selected,
 * -1 ended, to unselect them after a trial. */
static void select_cand(Search *s, int i, int *undo) {
    int u = 0;
    if (!s->sel[s->cand[i]]) {
        s->sel[s->cand[i]] = 1;
        if (undo) undo[u++] = s->cand[i];
    }
    for (const int *c = s->cone[i]; *c >= 0; c++)
        if (!s->sel[*c]) {
            s->sel[*c] = 1;
            if (undo) undo[u++] = *c;
        }
    if (undo) undo[u] = -1;
}

/* The arena with candidate i toggled: added with its cone when unselected, dropped (its
 * cone stays) when selected. */
static int64_t toggled(Search *s, int i, int *undo) {
    int v = s->cand[i];
    int64_t bytes;
    if (s->sel[v]) {
        s->sel[v] = 0;
        bytes = trial(s);
        s->sel[v] = 1;
    } else {
        select_cand(s, i, undo);
        bytes = trial(s);
        for (int *u = undo; *u >= 0; u++) s->sel[*u] = 0;
    }
    return bytes;
}

/* Candidate i before j in the order a step tries them: the larger gain last measured,
 * then the fewer FLOPs, then the lower id. */
static int tried_before(const Search *s, int i, int j) {
    if (s->gain[i] != s->gain[j]) return s->gain[i] > s->gain[j];
    if (s->cost[i] != s->cost[j]) return s->cost[i] < s->cost[j];
    return i < j;
}

/* The best addition (adding: 1) or removal (0) found so far. */
typedef struct Move {
    int i;         /* the candidate, -1 for none */
    int64_t bytes; /* the arena after it */
} Move;

/* Whether candidate i, leaving `bytes` of arena, beats the best move m of its kind: an
 * addition by the smaller arena, then the fewer FLOPs, then the lower id; a removal by
 * the smaller arena, then the lower id, and only below cur. */
static int beats(const Search *s, int adding, int i, int64_t bytes, Move m, int64_t cur) {
    if (m.i < 0) return adding || bytes < cur;
    if (bytes != m.bytes) return bytes < m.bytes;
    if (adding && s->cost[i] != s->cost[m.i]) return s->cost[i] < s->cost[m.i];
    return i < m.i;
}

/* The best move of one kind from arena `cur`. A full step tries every candidate of that
 * kind. A lazy one tries them in the order of the gains their last trials measured (gain:
 * cur - the trial's arena) and stops at the first that could not beat the best found if
 * its gain were still that: a value recomputed mostly frees the same bytes at the peak
 * step after step, so its old gain bounds its new one, except next to the last move
 * (retry_neighbours). That saves the trials of most candidates in the steps that shrink
 * the arena. `other` is the best move of the other kind: an addition that does not reach
 * a removal's arena, or a removal that does not beat an addition's, is not taken. */
static Move best_move(Search *s, int adding, int64_t cur, int full, Move other, int *undo) {
    Move m = {-1, cur};
    memset(s->tried, 0, (size_t)s->nc);
    for (;;) {
        int i = -1;
        for (int j = 0; j < s->nc; j++)
            if (!s->tried[j] && (s->sel[s->cand[j]] == 0) == adding && (i < 0 || tried_before(s, j, i))) i = j;
        if (i < 0) break;
        if (!full && s->gain[i] != INT64_MAX) {
            int64_t bound = cur - s->gain[i]; /* its arena, if its gain has not grown */
            if (!beats(s, adding, i, bound, m, cur)) break;
            if (other.i >= 0 && (adding ? bound > other.bytes : bound >= other.bytes)) break;
        }
        s->tried[i] = 1;
        int64_t bytes = toggled(s, i, undo);
        s->gain[i] = cur - bytes;
        if (beats(s, adding, i, bytes, m, cur)) m = (Move){i, bytes};
    }
    return m;
}

/* Marks node x as moved (2) and its inputs as next to the move (1). */
static void mark_moved(Search *s, int x) {
    const Node *nd = &s->g->nodes[x];
    for (int k = 0; k < nd->nin; k++)
        if (!s->near[nd->in[k]]) s->near[nd->in[k]] = 1;
    s->near[x] = 2;
}

/* Whether node x is next to the move: moved, an input of a moved node, or a reader of one. */
static int is_near(const Search *s, int x) {
    if (s->near[x]) return 1;
    const Node *nd = &s->g->nodes[x];
    for (int k = 0; k < nd->nin; k++)
        if (s->near[nd->in[k]] == 2) return 1;
    return 0;
}

/* After candidate p was added or dropped, the candidates next to it (a value of theirs,
 * or of their cones, is one of p's, an input of one, or reads one) are tried again in the
 * next step whatever their gains: a move changes what its neighbours save most
 * (recomputing a value makes recomputing what it reads, or what reads it, worth more or
 * less: the drop after LeNet's ReLU output is chosen), while the others keep theirs. */
static void retry_neighbours(Search *s, int p) {
    memset(s->near, 0, (size_t)s->g->n);
    mark_moved(s, s->cand[p]);
    for (const int *c = s->cone[p]; *c >= 0; c++) mark_moved(s, *c);
    for (int j = 0; j < s->nc; j++) {
        int hit = is_near(s, s->cand[j]);
        for (const int *c = s->cone[j]; *c >= 0 && !hit; c++) hit = is_near(s, *c);
        if (hit && j != p) s->gain[j] = INT64_MAX;
    }
}

/* The greedy descent from the current selection (arena `cur` bytes). Each step either
 * adds the candidate (with its cone) giving the smallest arena, or drops a chosen one
 * when that gives a smaller arena still: a value chosen early can keep its inputs alive
 * through the backward once a later choice recomputes those (LeNet: a pooling output
 * recomputed from the ReLU output, then the ReLU output recomputed from the conv). An
 * addition may keep the arena the same, a drop must shrink it, so the descent ends. It
 * stops when the arena fits `budget` or no step helps. *best and best_sel get the
 * smallest arena seen and its set, when below *best.
 *
 * Steps are lazy (best_move) while they shrink the arena. A step that does not is taken
 * again in full: which of the moves that keep the arena the same comes first decides what
 * later moves can gain (a chain of dense layers is most of such steps), and a move that
 * gained nothing before may now; and the descent ends only where a full step finds
 * nothing. On every sample, at every budget tried (docs/distributed.md), it ends where
 * trying every candidate at every step ended. */
static void descend(Search *s, int64_t budget, int64_t cur, int64_t *best, char *best_sel, int *undo) {
    size_t n = (size_t)s->g->n;
    for (int i = 0; i < s->nc; i++) s->gain[i] = INT64_MAX; /* never tried: first in line */
    int full = 0;
    while (cur > budget) {
        full |= s->full_search;
        Move pick = best_move(s, 1, cur, full, (Move){-1, 0}, undo);
        Move drop = best_move(s, 0, cur, full, pick, undo);
        int shrinks = (drop.i >= 0 && (pick.i < 0 || drop.bytes < pick.bytes)) || (pick.i >= 0 && pick.bytes < cur);
        if (!shrinks && !full) {
            full = 1;
            continue;
        }
        /* the move's gain, negated, is about what undoing it would gain */
        if (drop.i >= 0 && (pick.i < 0 || drop.bytes < pick.bytes)) {
            s->sel[s->cand[drop.i]] = 0;
            s->gain[drop.i] = drop.bytes - cur;
            retry_neighbours(s, drop.i);
            cur = drop.bytes;
        } else if (pick.i >= 0 && pick.bytes <= cur) {
            select_cand(s, pick.i, NULL);
            s->gain[pick.i] = pick.bytes - cur;
            retry_neighbours(s, pick.i);
            cur = pick.bytes;
        } else break;
        full = 0;
        if (cur < *best) {
            *best = cur;
            memcpy(best_sel, s->sel, n);
        }
        show_progress(s, cur, *best);
    }
}

/* The greedy search for the smallest arena, then the best set applied to g. */
static RecomputeResult search(Search *s, Graph *g, int64_t budget) {
    RecomputeResult res = {0};
    Arena *a = g->arena;
    size_t n = (size_t)g->n;
    s->sel = arena_alloc(a, n);
    s->inr = arena_alloc(a, n);
    char *best_sel = arena_alloc(a, n);
    int *undo = ARENA_ARRAY(a, int, g->n + 1);
    res.before = res.after = trial(s);
    if (res.before <= budget) return res;
    /* Cheap values first. */
    find_candidates(s);
    descend(s, budget, res.before, &res.after, best_sel, undo);
    if (res.after > budget) {
        /* Convolutions and GEMMs too, only when cheap values cannot fit the budget: once
         * from the best cheap set and once from nothing, since a greedy descent ends in a
         * local minimum that depends on where it starts. The smaller arena wins. */
        s->costly = 1;
        find_candidates(s);
        memcpy(s->sel, best_sel, n);
        descend(s, budget, res.after, &res.after, best_sel, undo);
        if (res.after > budget) {
            int64_t fresh = res.before;
            char *fresh_sel = arena_alloc(a, n);
            memset(s->sel, 0, n);
            descend(s, budget, res.before, &fresh, fresh_sel, undo);
            if (fresh < res.after) {
                res.after = fresh;
                memcpy(best_sel, fresh_sel, n);
            }
        }
    }
    if (res.after == res.before) return res;

    /* Apply the best set found, in the graph's own arena. */
    memcpy(s->sel, best_sel, n);
    close_views(s);
    Graph *out = rebuild(a, g, s->bnd, s->inr);
    g->nodes = out->nodes;
    g->n = out->n;
    g->cap = out->cap;
    g->loss = out->loss;
    memcpy(g->outputs, out->outputs, sizeof g->outputs);
    for (int id = 0; id < g->n; id++)
        if ((g->nodes[id].role & ROLE_RECOMPUTED) && g->nodes[id].op != OP_reshape) res.recomputed++;
    return res;
}

RecomputeResult recompute(Graph *g, int64_t budget, TargetKind target, int threads, int full_search) {
    if (g->loss < 0) mlc_die("recompute: the train graph has no loss");
    Search s = {.g = g,
                .bnd = g->loss,
                .target = target,
                .threads = threads,
                .full_search = full_search,
                .t0 = seconds_now(),
                .budget_asked = budget};
    RecomputeResult res = search(&s, g, budget);
    end_progress(&s);
    arena_free(&s.scratch);
    return res;
}
