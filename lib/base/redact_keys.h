/*
 * redact_keys.h - internal to the redaction filter (redact.c): the set of
 * configured key digests, and the search of a line for tokens that hash to
 * one of them. The public contract is fm_redact_set_key_hashes in redact.h.
 */
#ifndef FM_REDACT_KEYS_H
#define FM_REDACT_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define FM_REDACT_KEY_HITS 16 /* disjoint spans per line; more are merged into the last */

/* The spans [start, end) of a line that are keys, sorted and disjoint. */
typedef struct fm_redact_hits {
    size_t start[FM_REDACT_KEY_HITS], end[FM_REDACT_KEY_HITS];
    size_t n;
} fm_redact_hits;

/* fm_redact_keys_find - fill *h with the key spans of s (len bytes); none when no set is
 * registered. */
void fm_redact_keys_find(const unsigned char *s, size_t len, fm_redact_hits *h);

/* fm_redact_keys_at - the length of the key span that starts at i, or 0. */
size_t fm_redact_keys_at(const fm_redact_hits *h, size_t i);

/* fm_redact_keys_clear - forget the registered digests. */
void fm_redact_keys_clear(void);

#endif
