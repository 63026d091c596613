/*
 * test_pool.c - the master's worker table: every generation gets its full
 * count however many older generations are still alive (back-to-back reloads
 * while old workers finish slow requests), rows are found and removed by
 * pid, and a spawn that fails leaves no row behind and lets a later fill
 * finish the job.
 */
#include <check.h>
#include <errno.h>

#include "helpers.h"
#include "pool.h"

#define WORKERS 256 /* the largest server.workers */
#define GENERATIONS 6

typedef struct fake {
    pid_t next;  /* pid the next spawn returns */
    int fail_at; /* the spawn with this number fails (0 = none) */
    int spawned;
} fake;

static fm_err fake_spawn(void *ctx, pid_t *pid)
{
    fake *f = ctx;

    if (++f->spawned == f->fail_at) {
        errno = EAGAIN;
        return FM_ESYS;
    }
    *pid = f->next++;
    return FM_OK;
}

START_TEST(generations_alive_at_once_each_get_their_count)
{
    fm_pool *pool = fm_pool_new();
    fake f = {.next = 1000};

    ck_assert_ptr_nonnull(pool);
    /* Nothing is reaped: every older generation is still finishing its requests. */
    for (int g = 0; g < GENERATIONS; g++) {
        ck_assert_int_eq(fm_pool_fill(pool, g, WORKERS, fake_spawn, &f), FM_OK);
        ck_assert_uint_eq(fm_pool_count(pool, g), WORKERS);
        ck_assert_uint_eq(fm_pool_count(pool, FM_POOL_ALL), (size_t)(g + 1) * WORKERS);
    }
    /* Filling a full generation again forks nothing. */
    ck_assert_int_eq(fm_pool_fill(pool, GENERATIONS - 1, WORKERS, fake_spawn, &f), FM_OK);
    ck_assert_int_eq(f.spawned, GENERATIONS * WORKERS);
    ck_assert_int_eq(fm_pool_oldest(pool, 99), 0);
    fm_pool_free(pool);
}
END_TEST

START_TEST(remove_by_pid)
{
    fm_pool *pool = fm_pool_new();
    fm_pool_worker w;
    fake f = {.next = 1};

    ck_assert_ptr_nonnull(pool);
    ck_assert_int_eq(fm_pool_fill(pool, 1, 3, fake_spawn, &f), FM_OK); /* pids 1..3 */
    ck_assert_int_eq(fm_pool_fill(pool, 2, 2, fake_spawn, &f), FM_OK); /* pids 4, 5 */
    ck_assert(fm_pool_remove(pool, 2, &w));
    ck_assert_int_eq(w.pid, 2);
    ck_assert_int_eq(w.generation, 1);
    ck_assert(!fm_pool_remove(pool, 2, &w));
    ck_assert(!fm_pool_remove(pool, 77, NULL));
    ck_assert_uint_eq(fm_pool_count(pool, 1), 2);
    ck_assert(fm_pool_remove(pool, 1, NULL));
    ck_assert(fm_pool_remove(pool, 3, NULL));
    ck_assert_uint_eq(fm_pool_count(pool, 1), 0);
    ck_assert_int_eq(fm_pool_oldest(pool, 99), 2);
    /* A dead worker of the current generation is replaced by the next fill. */
    ck_assert(fm_pool_remove(pool, 4, NULL));
    ck_assert_int_eq(fm_pool_fill(pool, 2, 2, fake_spawn, &f), FM_OK);
    ck_assert_uint_eq(fm_pool_count(pool, 2), 2);
    ck_assert_uint_eq(fm_pool_count(pool, FM_POOL_ALL), 2);
    ck_assert(fm_pool_remove(pool, 5, NULL));
    ck_assert(fm_pool_remove(pool, 6, NULL));
    ck_assert_int_eq(fm_pool_oldest(pool, 99), 99);
    fm_pool_free(pool);
}
END_TEST

START_TEST(failed_spawn_is_reported_and_retried)
{
    fm_pool *pool = fm_pool_new();
    fake f = {.next = 1, .fail_at = 3};

    ck_assert_ptr_nonnull(pool);
    ck_assert_int_eq(fm_pool_fill(pool, 0, 4, fake_spawn, &f), FM_ESYS);
    ck_assert_uint_eq(fm_pool_count(pool, 0), 2);
    ck_assert_int_eq(fm_pool_fill(pool, 0, 4, fake_spawn, &f), FM_OK);
    ck_assert_uint_eq(fm_pool_count(pool, 0), 4);
    fm_pool_free(pool);
}
END_TEST

START_TEST(add_grows)
{
    fm_pool *pool = fm_pool_new();

    ck_assert_ptr_nonnull(pool);
    for (pid_t p = 1; p <= 5000; p++)
        ck_assert_int_eq(fm_pool_add(pool, p, (int)(p % 7), 0), FM_OK);
    ck_assert_uint_eq(fm_pool_count(pool, FM_POOL_ALL), 5000);
    ck_assert(fm_pool_remove(pool, 4321, NULL));
    ck_assert_uint_eq(fm_pool_count(pool, FM_POOL_ALL), 4999);
    fm_pool_free(pool);
    fm_pool_free(NULL);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");

    TH_TCASE(s, "pool", NULL, NULL, generations_alive_at_once_each_get_their_count, remove_by_pid,
             failed_spawn_is_reported_and_retried, add_grows);
    return s;
}

TH_MAIN(pool_suite)
