/*
 * err.h - the one error vocabulary of lib/.
 *
 * A function that can fail returns fm_err: FM_OK (0) on success, or one of
 * the negative codes below. Nothing else is an error return:
 *   FM_ESYS       a system call or allocation failed; errno says which
 *                 (ENOMEM, ENOSPC, EIO, EOVERFLOW, ...).
 *   FM_EINVAL     the input was refused (bad value, bad bounds). When the
 *                 function takes (err, errlen), a message is there, safe to
 *                 show to whoever supplied the input (never a secret).
 *   FM_EPARSE     the input is not well-formed (not JSON, not YAML, ...);
 *                 message as for FM_EINVAL.
 *   FM_ENOTFOUND  what was asked for does not exist, or is not visible to
 *                 the caller (no existence leak).
 *   FM_ECONFLICT  it exists, but its state forbids the change.
 *   FM_EREDIS     Redis could not answer: connection, timeout, error reply
 *                 (also Redis refusing a write because it is full: maxmemory
 *                 with noeviction).
 *   FM_ETOOBIG    a size limit refused it (a task record over
 *                 limits.max_task_bytes, ...); message as for FM_EINVAL.
 *   FM_EQUOTA     a quota refused it (limits.max_open_tasks, ...); message
 *                 as for FM_EINVAL.
 *
 * Answers that are not failures (a key is unknown, an address is blocked, a
 * request is over its limit) are never error codes: they come back in an out
 * parameter (fm_auth_result.status, bool *blocked, fm_rl_result.allowed), so
 * `rc != FM_OK` always means "could not decide". Constructors return a
 * pointer, or NULL with errno set (or, for loaders, the message in err).
 * Predicates return bool.
 *
 * FM_MUST_CHECK marks functions whose result decides security or data
 * integrity (an audit write, a config load, a key lookup): GCC then refuses
 * to build a caller that drops it. A (void) cast does not silence it, on
 * purpose: such a result is always looked at.
 */
#ifndef FM_ERR_H
#define FM_ERR_H

typedef enum fm_err {
    FM_OK = 0,
    FM_ESYS = -1,
    FM_EINVAL = -2,
    FM_EPARSE = -3,
    FM_ENOTFOUND = -4,
    FM_ECONFLICT = -5,
    FM_EREDIS = -6,
    FM_ETOOBIG = -7,
    FM_EQUOTA = -8
} fm_err;

#define FM_MUST_CHECK __attribute__((warn_unused_result))
#define FM_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))

/*
 * fm_err_name - "ok", "system", "invalid", "parse", "not_found", "conflict",
 * "redis", "too_big", "quota".
 */
static inline const char *fm_err_name(fm_err e)
{
    switch (e) {
    case FM_OK:
        return "ok";
    case FM_ESYS:
        return "system";
    case FM_EINVAL:
        return "invalid";
    case FM_EPARSE:
        return "parse";
    case FM_ENOTFOUND:
        return "not_found";
    case FM_ECONFLICT:
        return "conflict";
    case FM_EREDIS:
        return "redis";
    case FM_ETOOBIG:
        return "too_big";
    case FM_EQUOTA:
        return "quota";
    }
    return "unknown";
}

#endif
