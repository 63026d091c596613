/*
 * chains.h - the audit chain state of each audit file the live workers
 * write, in the master.
 *
 * The chain head (seq, last hash) of a file lives in a shared region the
 * master maps before forking (fm_audit_shared_create), read from that file's
 * last record. A reload that names another logging.file must give its
 * workers the head of that file's own chain, not the previous file's; and
 * two regions must never serve one file at once, or two writers could take
 * the same seq. So regions are kept by path: a generation writing a path
 * that live workers already write shares their region, and a region is
 * released once no live worker can hold it.
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
 * fm_chains_use - the region generation's workers append to path with: the
 * one already serving path, or a new one initialised from the file's last
 * record. The set owns it. NULL with errno (ENOMEM, EBADMSG for a file whose
 * last line is not a record, or an open/read error of the file).
 */
fm_audit_shared *fm_chains_use(fm_chains *chains, const char *path, int generation)
    FM_NONNULL(1, 2);

/*
 * fm_chains_release - release the regions whose newest generation is older
 * than oldest, the oldest generation that still has a live worker (or the
 * current one when none has): no process of the master's will use them again.
 */
void fm_chains_release(fm_chains *chains, int oldest) FM_NONNULL(1);

/* fm_chains_count - regions held, for tests and the log. */
size_t fm_chains_count(const fm_chains *chains) FM_NONNULL(1);

#endif
