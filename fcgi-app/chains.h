/*
 * chains.h - the audit chain state of each audit file the audit logger
 * writes (auditlog.c), one per path.
 *
 * The chain head (seq, last hash) of a file lives in a region
 * (fm_audit_shared_create) read from that file's last record. A reload that
 * names another logging.file must continue that file's own chain, not the
 * previous file's; and two regions must never serve one file at once, or
 * two trails could take the same seq. So regions are kept by path: a
 * generation writing a path an older generation's trail still writes
 * shares its region, and a region is released once no open trail uses it.
 */
#ifndef FM_CHAINS_H
#define FM_CHAINS_H

#include "audit.h"
#include "err.h"

struct fm_chain;

/* The set; all zero is empty. Only chains.c looks inside. */
typedef struct fm_chains {
    struct fm_chain *rows;
    size_t n, cap;
} fm_chains;

/* fm_chains_clear - release every region; the set is empty again. */
void fm_chains_clear(fm_chains *chains) FM_NONNULL(1);

/*
 * fm_chains_use - the region generation's trail appends to path with: the
 * one already serving path, or a new one initialised from the file's last
 * record. The set owns it. NULL with errno (ENOMEM, EBADMSG for a file whose
 * last line is not a record, or an open/read error of the file).
 */
fm_audit_shared *fm_chains_use(fm_chains *chains, const char *path, int generation)
    FM_NONNULL(1, 2);

/*
 * fm_chains_release - release the regions whose newest generation is older
 * than oldest, the oldest generation whose trail is still open (INT_MAX when
 * none is): no trail will use them again.
 */
void fm_chains_release(fm_chains *chains, int oldest) FM_NONNULL(1);

/* fm_chains_count - regions held, for tests and the log. */
size_t fm_chains_count(const fm_chains *chains) FM_NONNULL(1);

#endif
