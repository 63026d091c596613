/*
 * pool.h - the master's table of live workers, by generation.
 *
 * Each reload starts a generation; the workers of older ones finish their
 * request in flight and exit on their own time, so several generations can
 * be alive at once (a slow request, back-to-back reloads). The table grows
 * as needed, so the current generation always gets its full count: room is
 * made before a fork, and when it cannot be made the fill stops with a logged
 * error and no untracked child, and the caller retries later.
 */
#ifndef FM_POOL_H
#define FM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "err.h"

#define FM_POOL_ALL (-1) /* every generation, for fm_pool_count */

typedef struct fm_pool fm_pool;

typedef struct fm_pool_worker {
    pid_t pid;
    int generation;
    time_t started; /* time(2) when forked */
} fm_pool_worker;

/* fm_pool_new - an empty table (caller frees with fm_pool_free), or NULL with errno ENOMEM. */
fm_pool *fm_pool_new(void);

/* fm_pool_free - free the table (the processes are not touched). NULL is accepted. */
void fm_pool_free(fm_pool *pool);

/*
 * fm_pool_add - record worker pid of generation, forked at started.
 * FM_OK, or FM_ESYS with errno ENOMEM when the table cannot grow.
 */
FM_MUST_CHECK fm_err fm_pool_add(fm_pool *pool, pid_t pid, int generation, time_t started)
    FM_NONNULL(1);

/*
 * fm_pool_remove - forget worker pid (reaped). Returns true and its row in
 * *out (may be NULL) when it was in the table, false otherwise.
 */
bool fm_pool_remove(fm_pool *pool, pid_t pid, fm_pool_worker *out) FM_NONNULL(1);

/* fm_pool_count - live workers of generation, or of all with FM_POOL_ALL. */
size_t fm_pool_count(const fm_pool *pool, int generation) FM_NONNULL(1);

/* fm_pool_oldest - the oldest generation with a live worker; otherwise when there is none. */
int fm_pool_oldest(const fm_pool *pool, int otherwise) FM_NONNULL(1);

/* fm_pool_kill - kill(2) sig to every worker of a generation below below. */
void fm_pool_kill(const fm_pool *pool, int sig, int below) FM_NONNULL(1);

/*
 * Forks one worker: FM_OK with the child's pid in *pid, or FM_ESYS (errno)
 * when no process was created. ctx is the caller's. Runs in the parent only.
 */
typedef fm_err (*fm_pool_spawn_fn)(void *ctx, pid_t *pid);

/*
 * fm_pool_fill - spawn workers of generation until it has want live ones.
 * FM_OK when it has; FM_ESYS (errno, logged) when the table could not grow
 * or spawn failed: the workers spawned so far are recorded, none is
 * untracked, and calling again later continues the fill.
 */
FM_MUST_CHECK fm_err fm_pool_fill(fm_pool *pool, int generation, size_t want,
                                  fm_pool_spawn_fn spawn, void *ctx) FM_NONNULL(1, 4);

#endif
