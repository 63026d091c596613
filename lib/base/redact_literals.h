/*
 * redact_literals.h - internal to the redaction filter (redact.c): the
 * registered literal secrets and the key forms held for the current request.
 * The public contract (fm_redact_add_secret, fm_redact_hold_path,
 * fm_redact_release, fm_redact_clear_secrets) is in redact.h.
 */
#ifndef FM_REDACT_LITERALS_H
#define FM_REDACT_LITERALS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * fm_redact_literals_at - the length of the longest registered literal or
 * held form that starts at s[i] (s is len bytes, i < len), or 0. Compared in
 * constant time (sodium_memcmp) once the first byte matches one.
 */
size_t fm_redact_literals_at(const unsigned char *s, size_t len, size_t i);

/* fm_redact_literals_none - true when no literal is registered and none is held. */
bool fm_redact_literals_none(void);

/*
 * fm_redact_literals_starts - 256 bytes, nonzero for a byte that starts a
 * registered secret or a held form: where fm_redact_literals_at can be
 * nonzero. Owned by the module; changes with the secrets and held forms.
 */
const unsigned char *fm_redact_literals_starts(void);

#endif
