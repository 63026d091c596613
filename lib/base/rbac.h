/*
 * rbac.h - role-based access control with FetchML's permission strings.
 *
 * A permission is "<resource>:<action>" with resources jobs, experiments,
 * metrics and actions read, create, update, delete, and run for jobs only
 * (jobs:run: a job worker claims and ends tasks, SPEC 4.1); "write" means
 * create and update, and "*" is a wildcard for either part ("*", "jobs:*",
 * "*:read"; "*:run" is jobs:run). A permission set is a bit mask (fm_perms),
 * so the check on the request path is one AND. Bit res * FM_ACT_COUNT + act
 * stands for "<res>:<act>"; the bits of experiments:run and metrics:run are
 * never set (FM_PERM_ALL leaves them out). Effective permissions are computed
 * once at config load:
 *     effective = (union of the user's roles | user grants) & ~user denies
 * and admin: true yields FM_PERM_ALL regardless of denies.
 */
#ifndef FM_RBAC_H
#define FM_RBAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef uint32_t fm_perms;

enum { FM_RES_JOBS, FM_RES_EXPERIMENTS, FM_RES_METRICS, FM_RES_COUNT };
enum { FM_ACT_READ, FM_ACT_CREATE, FM_ACT_UPDATE, FM_ACT_DELETE, FM_ACT_RUN, FM_ACT_COUNT };

#define FM_PERM(res, act) ((fm_perms)1u << ((res)*FM_ACT_COUNT + (act)))
/* Every valid permission: the whole grid but run on anything other than jobs. */
#define FM_PERM_ALL                                                                                \
    ((((fm_perms)1u << (FM_RES_COUNT * FM_ACT_COUNT)) - 1u) &                                      \
     ~(FM_PERM(FM_RES_EXPERIMENTS, FM_ACT_RUN) | FM_PERM(FM_RES_METRICS, FM_ACT_RUN)))
#define FM_PERM_NONE ((fm_perms)0)

/*
 * fm_rbac_parse - parse a permission string into the set of bits it names.
 * Accepts exactly the grammar above (lower case, no white space); a wildcard
 * yields only valid bits ("experiments:*" has no run, "*:run" is jobs:run).
 * Returns FM_OK and sets *out; FM_EINVAL on an unknown resource or action
 * (perm NULL too) or on run named for experiments or metrics, with a
 * one-line reason in err (errlen bytes, always NUL-terminated; err may be
 * NULL), *out untouched.
 */
FM_MUST_CHECK fm_err fm_rbac_parse(const char *perm, fm_perms *out, char *err, size_t errlen);

/*
 * fm_rbac_builtin_role - the built-in definition of role name:
 *   admin      everything
 *   researcher jobs:read/create/update, experiments:read/create/update
 *   analyst    jobs:read, experiments:read, metrics:read
 *   worker     jobs:run, jobs:read (a job worker; reads every user's tasks, see
 *              fm_rbac_reads_all)
 * Returns true and sets *out when name is built in; false otherwise.
 */
bool fm_rbac_builtin_role(const char *name, fm_perms *out);

/* fm_rbac_allows - true when every bit of required is in effective. */
bool fm_rbac_allows(fm_perms effective, fm_perms required);

/*
 * fm_rbac_reads_all - true when the caller may read every user's tasks, not
 * only its own: admins, and job workers (jobs:run in effective), who must see
 * the task they claim. Changing another user's task (cancel, delete) stays
 * admin-only.
 */
bool fm_rbac_reads_all(bool admin, fm_perms effective);

/*
 * fm_rbac_name - canonical string of the single permission bit `bit`
 * ("jobs:read"), or NULL when bit is not exactly one known permission.
 * The string is static.
 */
const char *fm_rbac_name(fm_perms bit);

#endif
