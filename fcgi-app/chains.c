/*
 * chains.c - audit chain regions by path (see chains.h): a short array, as a
 * master rarely holds more than two (the current file and the one before a
 * reload that changed it).
 */
#include "chains.h"

#include "grow.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct fm_chain {
    char *path;
    fm_audit_shared *region;
    int newest; /* newest generation that uses it */
} chain;

void fm_chains_clear(fm_chains *chains)
{
    fm_chains_release(chains, INT_MAX);
    free(chains->rows);
    *chains = (fm_chains){0};
}

/* Appends a row for a new region of path; NULL with errno. */
static chain *add(fm_chains *chains, const char *path)
{
    chain *rows = fm_grow(chains->rows, chains->n, &chains->cap, sizeof(*rows), 4), *c;

    if (rows == NULL)
        return NULL;
    chains->rows = rows;
    c = &rows[chains->n];
    c->path = strdup(path);
    if (c->path == NULL)
        return NULL;
    c->region = fm_audit_shared_create(path);
    if (c->region == NULL) {
        int err = errno;

        free(c->path);
        errno = err;
        return NULL;
    }
    c->newest = INT_MIN;
    chains->n++;
    return c;
}

fm_audit_shared *fm_chains_use(fm_chains *chains, const char *path, int generation)
{
    chain *c = NULL;

    for (size_t i = 0; c == NULL && i < chains->n; i++)
        if (strcmp(chains->rows[i].path, path) == 0)
            c = &chains->rows[i];
    if (c == NULL && (c = add(chains, path)) == NULL)
        return NULL;
    if (generation > c->newest)
        c->newest = generation;
    return c->region;
}

void fm_chains_release(fm_chains *chains, int oldest)
{
    for (size_t i = 0; i < chains->n;) {
        chain *c = &chains->rows[i];

        if (c->newest >= oldest) {
            i++;
            continue;
        }
        fm_audit_shared_free(c->region);
        free(c->path);
        *c = chains->rows[--chains->n];
    }
}

size_t fm_chains_count(const fm_chains *chains)
{
    return chains->n;
}
