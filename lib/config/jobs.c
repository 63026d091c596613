/*
 * jobs.c - the jobs and limits sections (SPEC 4.1): how long a worker's
 * claim lasts, how many claims a task gets, how often the sweeper looks for
 * expired leases, and the limits that keep one user from hurting others (a
 * task record's size, a user's open tasks, a response body's size).
 */
#include "sections.h"

/* A page of GET /v1/tasks must hold one task of the largest size, with room for the rest. */
#define PAGE_OVERHEAD 65536

LD_TABLE(, jobs_table, LD_INT_ROW("lease_seconds", fm_config, jobs.lease_seconds, 1, 86400, 60),
         LD_INT_ROW("max_attempts", fm_config, jobs.max_attempts, 1, 100, 3),
         LD_INT_ROW("sweep_interval_ms", fm_config, jobs.sweep_interval_ms, 100, 60000, 1000));

LD_TABLE(, task_limits_table,
         LD_INT_ROW("max_task_bytes", fm_config, limits.max_task_bytes, 1024, 16777216, 65536),
         LD_INT_ROW("max_open_tasks", fm_config, limits.max_open_tasks, 1, 10000000, 1000),
         LD_INT_ROW("max_response_bytes", fm_config, limits.max_response_bytes, 65536, 268435456,
                    4194304));

fm_err jobs_check_limits(struct loader *l, const char *where, const yaml_mark_t *at,
                         const void *obj)
{
    const fm_config *cfg = obj;

    if (cfg->limits.max_response_bytes >= cfg->limits.max_task_bytes + PAGE_OVERHEAD)
        return FM_OK;
    return ld_fail(l, at,
                   "%s.max_response_bytes (%zu) must be at least %s.max_task_bytes + %d (%zu): a "
                   "page of tasks must hold at least one task",
                   where, cfg->limits.max_response_bytes, where, PAGE_OVERHEAD,
                   cfg->limits.max_task_bytes + PAGE_OVERHEAD);
}
