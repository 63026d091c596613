/*
 * keyindex.c - the index from key hash to (user, key), and its lookup.
 *
 * Open addressing with linear probing, at least twice as many slots as keys.
 * A key goes to the slot that the SipHash (crypto_shorthash) of its whole
 * digest, under a key drawn for each snapshot, names. The digests of real
 * keys are uniformly random already, but a file may give any 64 hex digits
 * (hashes typed by hand, generated in sequence): placed by their leading
 * bytes, such hashes would all share one run of slots, and building the index
 * would cost a scan per key. Under the keyed hash no choice of hashes makes
 * the probes long; a probe ends at an empty slot, which the load factor
 * guarantees to exist. Each key's fingerprint is derived here too, once,
 * rather than hashed again on every request that presents it.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sections.h"

_Static_assert(sizeof(((fm_config *)0)->key_index_key) == crypto_shorthash_KEYBYTES,
               "fm_config.key_index_key holds a crypto_shorthash key");

static const char key_id_domain[] = "fetchml-key-id:";

void fm_config_key_id(const unsigned char hash[FM_KEY_HASH_BYTES], char out[FM_KEY_ID_LEN + 1])
{
    crypto_hash_sha256_state st;
    unsigned char d[crypto_hash_sha256_BYTES];

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)key_id_domain, sizeof(key_id_domain) - 1);
    crypto_hash_sha256_update(&st, hash, FM_KEY_HASH_BYTES);
    crypto_hash_sha256_final(&st, d);
    /* The leading FM_KEY_ID_LEN hex digits: those of the digest's first bytes. */
    sodium_bin2hex(out, FM_KEY_ID_LEN + 1, d, FM_KEY_ID_LEN / 2);
}

static size_t slot_of(const fm_config *cfg, const unsigned char hash[FM_KEY_HASH_BYTES])
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;

    (void)crypto_shorthash(out, hash, FM_KEY_HASH_BYTES, cfg->key_index_key);
    memcpy(&h, out, sizeof(h));
    return (size_t)(h & (uint64_t)(cfg->key_index_size - 1));
}

fm_err keyindex_build(struct loader *l)
{
    fm_config *cfg = l->cfg;
    size_t total = 0, size = 8, g = 0;

    for (size_t u = 0; u < cfg->auth.nusers; u++)
        total += cfg->auth.users[u].nkeys;
    while (size < 2 * total) {
        if (size > SIZE_MAX / 4)
            return ld_oom(l);
        size *= 2;
    }
    cfg->key_index = calloc(size, sizeof(*cfg->key_index));
    if (cfg->key_index == NULL)
        return ld_oom(l);
    cfg->key_index_size = size;
    crypto_shorthash_keygen(cfg->key_index_key);
    for (size_t u = 0; u < cfg->auth.nusers; u++) {
        const fm_user *user = &cfg->auth.users[u];

        for (size_t k = 0; k < user->nkeys; k++, g++) {
            fm_key *key = &user->keys[k];
            size_t i = slot_of(cfg, key->hash);

            fm_config_key_id(key->hash, key->id);

            while (cfg->key_index[i].user != NULL) {
                if (sodium_memcmp(cfg->key_index[i].key->hash, key->hash, FM_KEY_HASH_BYTES) == 0)
                    return ld_fail(l, &l->key_marks[g],
                                   "key hash of user \"%s\" is already used by user \"%s\"",
                                   user->name, cfg->key_index[i].user->name);
                i = (i + 1) & (size - 1);
            }
            cfg->key_index[i].user = user;
            cfg->key_index[i].key = key;
        }
    }
    return FM_OK;
}

bool fm_config_find_key(const fm_config *cfg, const unsigned char hash[FM_KEY_HASH_BYTES],
                        const fm_user **user, const fm_key **key)
{
    size_t i;

    if (cfg == NULL || hash == NULL || cfg->key_index == NULL)
        return false;
    i = slot_of(cfg, hash);
    for (size_t probes = 0; probes < cfg->key_index_size; probes++) {
        const fm_key_slot *slot = &cfg->key_index[i];

        if (slot->user == NULL)
            return false;
        if (sodium_memcmp(slot->key->hash, hash, FM_KEY_HASH_BYTES) == 0) {
            if (user != NULL)
                *user = slot->user;
            if (key != NULL)
                *key = slot->key;
            return true;
        }
        i = (i + 1) & (cfg->key_index_size - 1);
    }
    return false;
}
