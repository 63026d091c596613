/*
 * pool.c - the master's table of live workers (see pool.h): an array that
 * doubles when full, searched linearly (a few hundred rows, touched once per
 * fork, reap or signal), rows removed by moving the last one into the hole.
 */
#include "pool.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "log.h"

#define POOL_INITIAL 16

struct fm_pool {
    fm_pool_worker *rows;
    size_t n, cap;
};

fm_pool *fm_pool_new(void)
{
    return calloc(1, sizeof(fm_pool));
}

void fm_pool_free(fm_pool *pool)
{
    if (pool == NULL)
        return;
    free(pool->rows);
    free(pool);
}

/* Makes room for one more row. FM_OK, or FM_ESYS with errno ENOMEM. */
static fm_err reserve(fm_pool *pool)
{
    fm_pool_worker *rows = fm_grow(pool->rows, pool->n, &pool->cap, sizeof(*rows), POOL_INITIAL);

    if (rows == NULL)
        return FM_ESYS;
    pool->rows = rows;
    return FM_OK;
}

fm_err fm_pool_add(fm_pool *pool, pid_t pid, int generation, time_t started)
{
    if (reserve(pool) != FM_OK)
        return FM_ESYS;
    pool->rows[pool->n++] = (fm_pool_worker){pid, generation, started};
    return FM_OK;
}

bool fm_pool_remove(fm_pool *pool, pid_t pid, fm_pool_worker *out)
{
    for (size_t i = 0; i < pool->n; i++) {
        if (pool->rows[i].pid != pid)
            continue;
        if (out != NULL)
            *out = pool->rows[i];
        pool->rows[i] = pool->rows[--pool->n];
        return true;
    }
    return false;
}

size_t fm_pool_count(const fm_pool *pool, int generation)
{
    size_t k = 0;

    for (size_t i = 0; i < pool->n; i++)
        k += generation == FM_POOL_ALL || pool->rows[i].generation == generation;
    return k;
}

int fm_pool_oldest(const fm_pool *pool, int otherwise)
{
    int oldest = otherwise;

    for (size_t i = 0; i < pool->n; i++)
        if (i == 0 || pool->rows[i].generation < oldest)
            oldest = pool->rows[i].generation;
    return oldest;
}

void fm_pool_kill(const fm_pool *pool, int sig, int below)
{
    for (size_t i = 0; i < pool->n; i++)
        if (pool->rows[i].generation < below)
            (void)kill(pool->rows[i].pid, sig);
}

fm_err fm_pool_fill(fm_pool *pool, int generation, size_t want, fm_pool_spawn_fn spawn, void *ctx)
{
    size_t have = fm_pool_count(pool, generation);
    pid_t pid;

    for (; have < want; have++) {
        /* Room first: a child the table cannot hold would never be reaped or stopped. */
        if (reserve(pool) != FM_OK) {
            fm_log_error("pool: cannot track more than %zu workers (%s); %zu of %zu started, "
                         "retrying",
                         pool->n, strerror(errno), have, want);
            return FM_ESYS;
        }
        if (spawn(ctx, &pid) != FM_OK) {
            fm_log_error("pool: fork failed (%s); %zu of %zu workers started, retrying",
                         strerror(errno), have, want);
            return FM_ESYS;
        }
        pool->rows[pool->n++] = (fm_pool_worker){pid, generation, time(NULL)};
    }
    return FM_OK;
}
