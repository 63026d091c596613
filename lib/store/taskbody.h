/*
 * taskbody.h - the body of POST /v1/tasks: strict validation, and the new
 * task record built from it (stored by fm_tasks_create).
 *
 * The body is JSON (RFC 8259) and must be exactly one object: every field
 * known, none twice, each of its type and bounds:
 *   job_name    required, 1-128 of A-Z a-z 0-9 _ . : - (not starting with .)
 *   args        a string of at most 4096 bytes, or an array of at most 64 such
 *   priority    an integer 1-10, default 5
 *   commit_id   40 hex digits
 *   experiment  1-128 of A-Z a-z 0-9 _ . - (not starting with .)
 *   datasets    an array of at most 64 names (also : and /), 256 bytes each
 *   metadata    an object of at most 64 string (<= 4096 bytes), number
 *               (finite: not 1e999) or boolean values under names of at most
 *               64 characters, each name once (JSON readers differ on which
 *               of two values they take)
 * and the text must be JSON text as RFC 8259 has it, which cJSON alone does
 * not check: UTF-8, no raw control character in a string.
 */
#ifndef FM_TASKBODY_H
#define FM_TASKBODY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "err.h"

/*
 * fm_taskbody_build - validate body (len bytes, need not be NUL-terminated)
 * and build the queued task owned by user: a random UUID v4 id (RFC 9562
 * section 5.4), the body's fields (absent ones JSON null), created_at now
 * (RFC 3339 UTC), started_at, ended_at, worker_id and error null. On FM_OK
 * *task is the record (caller owns it, cJSON_Delete). Errors: FM_EPARSE (not
 * one JSON object, NUL characters, or any byte that is not UTF-8 as RFC 3629
 * defines it, raw or as an unpaired surrogate escape), FM_EINVAL (a field refused), each
 * with a message for the client in err (errlen bytes); FM_ESYS (errno
 * ENOMEM) when the record cannot be allocated.
 */
FM_MUST_CHECK fm_err fm_taskbody_build(const char *body, size_t len, const char *user, cJSON **task,
                                       char *err, size_t errlen);

#endif
