/*
 * taskbody.h - the bodies of the task routes: strict validation, and the
 * immutable spec of a new task (stored by fm_tasks_create).
 *
 * Every body is JSON (RFC 8259) and must be exactly one object: every field
 * known, none twice, each of its type and bounds; the text must be JSON text
 * as RFC 8259 has it, which cJSON alone does not check: UTF-8, no raw control
 * character in a string, no NUL. POST /v1/tasks:
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
 * The worker routes: see fm_taskbody_claim, _heartbeat and _complete.
 *
 * Errors of every function: FM_EPARSE (not one JSON object, NUL characters,
 * or any byte that is not UTF-8 as RFC 3629 defines it, raw or as an unpaired
 * surrogate escape), FM_EINVAL (a field refused), each with a message for the
 * client in err (errlen bytes); FM_ESYS (errno ENOMEM).
 */
#ifndef FM_TASKBODY_H
#define FM_TASKBODY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "err.h"

#define FM_TASKBODY_WORKER_MAX 64 /* a worker name, 1-63 bytes, and its NUL */

/*
 * fm_taskbody_build - validate the body of POST /v1/tasks (len bytes, need
 * not be NUL-terminated) and build the new task's immutable spec, in this
 * order: id (a random UUID v4, RFC 9562 section 5.4), job_name, args,
 * priority, user, commit_id, experiment, datasets, metadata (absent ones JSON
 * null) and created_at (now, RFC 3339 UTC with ms). On FM_OK *spec is owned
 * by the caller (cJSON_Delete); otherwise it is NULL.
 */
FM_MUST_CHECK fm_err fm_taskbody_build(const char *body, size_t len, const char *user, cJSON **spec,
                                       char *err, size_t errlen);

/*
 * fm_taskbody_claim - the body of POST /v1/worker/claim: empty, or an object
 * with an optional "worker": 1-63 of A-Z a-z 0-9 _ . : - (not starting with
 * .). name is the worker
 * name, "" when none was given.
 */
FM_MUST_CHECK fm_err fm_taskbody_claim(const char *body, size_t len,
                                       char name[FM_TASKBODY_WORKER_MAX], char *err, size_t errlen);

/*
 * fm_taskbody_heartbeat - the body of POST /v1/tasks/{id}/heartbeat: empty,
 * or an object with an optional "progress" (a number 0-100; *progress is -1
 * when absent) and an optional "metrics" (an object of at most 32 names of
 * 1-64 of A-Z a-z 0-9 _ . : / - (not starting with .) to finite numbers;
 * rendered, that is at most 4096 bytes). *metrics is the rendered object (heap, the caller frees
 * with free()), or NULL when absent.
 */
FM_MUST_CHECK fm_err fm_taskbody_heartbeat(const char *body, size_t len, double *progress,
                                           char **metrics, char *err, size_t errlen);

/*
 * fm_taskbody_complete - the body of POST /v1/tasks/{id}/complete: an object
 * with a required "status" ("completed", "failed" or "cancelled"; *status
 * points to a static copy) and an optional "error" (a string of at most 4096
 * bytes, only with failed or cancelled; *error is a heap copy, the caller
 * frees with free(), or NULL when absent).
 */
FM_MUST_CHECK fm_err fm_taskbody_complete(const char *body, size_t len, const char **status,
                                          char **error, char *err, size_t errlen);

#endif
