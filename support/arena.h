/* arena.h - one bump allocator per compilation.
 *
 * Everything the frontend and compiler allocate (tokens, AST, IR, strings) lives in one
 * arena that is freed at once when the compilation ends; no pass frees individual objects.
 * Out of memory is an internal error: mlc aborts naming its own source location. */
#ifndef MLC_ARENA_H
#define MLC_ARENA_H

#include <stddef.h>

typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
    ArenaChunk *head;
    ArenaChunk *spare; /* chunks arena_rewind kept, reused before asking malloc */
} Arena;

void *arena_alloc(Arena *a, size_t size); /* zeroed, 16-byte aligned */
void *arena_realloc(Arena *a, void *p, size_t old_size, size_t new_size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);
/* Frees everything allocated from a at once, as arena_free, but keeps the memory for a's
 * next allocations: for a scratch arena filled and emptied many times (--mem-budget's
 * trials), where fresh pages from the system each time cost more than the work. */
void arena_rewind(Arena *a);

#define ARENA_NEW(a, T) ((T *)arena_alloc((a), sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))

/* Memory ran out (size: the bytes asked for, 0 if not known): not a bug in mlc but a
 * model too large for this machine, so an error line and exit status 1, no core dump. */
_Noreturn void mlc_out_of_memory(size_t size);

/* Internal errors: a bug in mlc, never a user mistake. */
_Noreturn void mlc_die_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define mlc_die(...) mlc_die_at(__FILE__, __LINE__, __VA_ARGS__)
#define MLC_CHECK(cond)                                  \
    do {                                                 \
        if (!(cond)) mlc_die("check failed: %s", #cond); \
    } while (0)

#endif
