/*
 * names.c - the name sets of a load: which user, role or list entry a name
 * already denotes, in O(1), so that every check of a load is O(n) in the
 * size of the file.
 *
 * Open addressing with linear probing over a power-of-two table kept at most
 * half full. A slot holds the name's 64-bit SipHash (crypto_shorthash, under a
 * key drawn for each set, so that no choice of names makes the probes long)
 * and the index of the entry in the caller's array; the names themselves stay
 * in that array, and a lookup compares them there, so a hash collision never
 * makes two names equal. Growing rehashes from the stored hashes, without the
 * names. A slot belongs to the set only while its generation is the set's:
 * ld_names_clear bumps the generation, which empties the set in O(1), and a
 * set reused for many short lists never pays for its largest one again.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "loader.h"

#define NAMES_MIN_SLOTS 16

static uint64_t name_hash(const struct ld_names *s, const char *name)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;

    (void)crypto_shorthash(out, (const unsigned char *)name, strlen(name), s->key);
    memcpy(&h, out, sizeof(h));
    return h;
}

static bool live(const struct ld_names *s, const struct ld_name_slot *slot)
{
    return slot->gen == s->gen && slot->gen != 0;
}

/* The slot holding name, or the empty slot where it would go. */
static struct ld_name_slot *probe(const struct ld_names *s, uint64_t h, const char *name,
                                  const char *base, size_t stride)
{
    size_t i = (size_t)(h & (uint64_t)(s->size - 1));

    while (live(s, &s->slots[i])) {
        const struct ld_name_slot *slot = &s->slots[i];

        if (slot->hash == h && base != NULL &&
            strcmp(base + (size_t)slot->index * stride, name) == 0)
            break;
        i = (i + 1) & (s->size - 1);
    }
    return &s->slots[i];
}

bool ld_names_find(const struct ld_names *s, const char *name, const char *base, size_t stride,
                   size_t *index)
{
    const struct ld_name_slot *slot;

    if (s->slots == NULL || s->n == 0)
        return false;
    slot = probe(s, name_hash(s, name), name, base, stride);
    if (!live(s, slot))
        return false;
    *index = slot->index;
    return true;
}

/* Doubles the table (or makes the first one), keeping the live slots. */
static fm_err grow(struct loader *l, struct ld_names *s)
{
    size_t size = s->size == 0 ? NAMES_MIN_SLOTS : s->size * 2;
    struct ld_name_slot *old = s->slots, *slots;
    size_t oldsize = s->size;

    if (size > SIZE_MAX / sizeof(*slots) || (slots = calloc(size, sizeof(*slots))) == NULL)
        return ld_oom(l);
    if (old == NULL)
        crypto_shorthash_keygen(s->key);
    s->slots = slots;
    s->size = size;
    for (size_t i = 0; i < oldsize; i++) {
        size_t j;

        if (!live(s, &old[i]))
            continue;
        for (j = (size_t)(old[i].hash & (uint64_t)(size - 1)); slots[j].gen != 0;
             j = (j + 1) & (size - 1))
            ;
        slots[j] = old[i];
        /* A fresh table has no stale slots: any generation will do, and 1 is the first. */
        slots[j].gen = 1;
    }
    s->gen = 1;
    free(old);
    return FM_OK;
}

fm_err ld_names_add(struct loader *l, struct ld_names *s, const char *name, size_t index)
{
    uint64_t h;
    struct ld_name_slot *slot;

    if (index >= UINT32_MAX)
        return ld_oom(l);
    if ((s->n + 1) * 2 > s->size && grow(l, s) != 0)
        return FM_EINVAL;
    h = name_hash(s, name);
    /* The caller has checked that name is new: probe to the first free slot. */
    slot = probe(s, h, name, NULL, 0);
    *slot = (struct ld_name_slot){.hash = h, .gen = s->gen, .index = (uint32_t)index};
    s->n++;
    return FM_OK;
}

void ld_names_clear(struct ld_names *s)
{
    if (s->n == 0)
        return;
    s->n = 0;
    if (++s->gen != 0)
        return;
    /* After 2^32 - 1 clears the generations wrap: start over from empty slots. */
    memset(s->slots, 0, s->size * sizeof(*s->slots));
    s->gen = 1;
}

void ld_names_free(struct ld_names *s)
{
    free(s->slots);
    sodium_memzero(s, sizeof(*s));
}
