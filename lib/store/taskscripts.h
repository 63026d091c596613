/*
 * taskscripts.h - the Lua scripts of the task store, internal to lib/store
 * (tasks.c is their one user; what each takes and answers is written above
 * its source in taskscripts.c).
 */
#ifndef FM_TASKSCRIPTS_H
#define FM_TASKSCRIPTS_H

#include "redisconn.h"

extern fm_redis_script fm_taskscript_create, fm_taskscript_claim, fm_taskscript_heartbeat,
    fm_taskscript_complete, fm_taskscript_cancel, fm_taskscript_delete, fm_taskscript_restore,
    fm_taskscript_sweep, fm_taskscript_unacked, fm_taskscript_list;

#endif
