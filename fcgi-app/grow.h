/*
 * grow.h - room for one more row in a heap array that doubles when full
 * (the master's worker and chain tables).
 */
#ifndef FM_GROW_H
#define FM_GROW_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * fm_grow - rows (NULL when empty) holds n of *cap rows of size bytes. When
 * full, it is reallocated to twice its capacity (initial rows at first) and
 * *cap updated. Returns the array to use from now on, or NULL with errno
 * ENOMEM, rows and *cap then unchanged.
 */
static inline void *fm_grow(void *rows, size_t n, size_t *cap, size_t size, size_t initial)
{
    size_t want = *cap == 0 ? initial : *cap * 2;
    void *grown;

    if (n < *cap)
        return rows;
    if (want < *cap || want > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    grown = realloc(rows, want * size);
    if (grown != NULL)
        *cap = want;
    return grown;
}

#endif
