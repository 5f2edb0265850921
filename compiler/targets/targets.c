/* targets.c - the list of targets, and what the rest of the compiler asks of them by
 * name (--target) or by kind (the memory plans' workspaces). A new target adds its folder,
 * a TargetKind (passes.h) and a line here. */
#include <string.h>

#include "target.h"

const Target *const targets[] = {&target_c, &target_cuda, NULL};

const Target *target_by_name(const char *name) {
    for (int i = 0; targets[i]; i++)
        if (!strcmp(targets[i]->name, name)) return targets[i];
    return NULL;
}

const Target *target_of_kind(TargetKind k) {
    for (int i = 0; targets[i]; i++)
        if (targets[i]->kind == k) return targets[i];
    mlc_die("no target of kind %d", (int)k);
}

void target_workspace(TargetKind t, const Graph *g, const Node *n, Workspace *w) {
    const OpEmitter *r = &target_of_kind(t)->emitters[n->op];
    if (r->workspace) r->workspace(g, n, w);
}

void target_half_storage(TargetKind t, const Graph *g, const FusionPlan *fp, char *half) {
    const Target *tg = target_of_kind(t);
    if (tg->half_storage && fp) tg->half_storage(g, fp, half);
}
