/*
 * exptree_walk.h - the walks of one user's experiment tree (exptree_walk.c),
 * shared by exptree.c (the quota check at commit) and the listings. Not a
 * public header: exptree.h is the contract.
 */
#ifndef FM_EXPTREE_WALK_H
#define FM_EXPTREE_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exptree.h"

typedef struct fm_exp_item {
    char *path;
    uint64_t bytes;
    int64_t mtime_ms;
} fm_exp_item;

typedef struct fm_exp_walk {
    fm_exp_usage use;
    bool collect;       /* keep the files (a listing) */
    bool sweep;         /* remove hidden names (the lock is held: none is in flight) */
    fm_exp_item *items; /* collect: use.files of them */
    size_t cap;
    char path[FM_BENEATH_PATH_MAX + 1]; /* of the directory walked, relative to the start */
} fm_exp_walk;

/*
 * fm_exptree_walk - walk the directory at rel beneath t ("." = the whole
 * tree) into *w (zeroed by the caller but for collect and sweep): its
 * regular, singly linked files and its directories are counted in w->use,
 * and collected in w->items when w->collect (free with fm_exptree_walk_free).
 * FM_OK; FM_ENOTFOUND when rel is no directory of the tree; FM_ESYS with errno.
 */
fm_err fm_exptree_walk(const fm_exptree *t, const char *rel, fm_exp_walk *w);

/* fm_exptree_walk_free - free what a collecting walk kept. */
void fm_exptree_walk_free(fm_exp_walk *w);

#endif
