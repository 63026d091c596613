/*
 * fuzz_cidr.c - libFuzzer target for CIDR allow-lists (lib/base/ipacl.c):
 * the entries of server/user ip_whitelist in the config, and REMOTE_ADDR.
 *
 * Input: "CIDR\nADDRESS" (the address part may be absent). Checks:
 *   - a refused entry leaves *out untouched and gives a one-line reason
 *     "invalid CIDR ..." with only printable ASCII in it;
 *   - an accepted entry is in range (prefix, family), has no host bits set,
 *     is never an IPv4-mapped block (those become IPv4), its address part is
 *     one inet_pton(3) accepts, and printing it back (inet_ntop + prefix)
 *     parses to the same block;
 *   - fm_ipacl_match agrees with a bit-by-bit reference: the address is in
 *     the block exactly when the strict parser takes it as a host and its
 *     first prefix bits equal the block's.
 */
#include "fuzz.h"
#include "ipacl.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#define TEXT_MAX 256

static bool bit(const uint8_t *a, unsigned i)
{
    return (a[i / 8] >> (7 - i % 8)) & 1;
}

static bool ref_in_block(const fm_cidr *block, const fm_cidr *host)
{
    if (block->family != host->family)
        return false;
    for (unsigned i = 0; i < block->prefix; i++)
        if (bit(block->addr, i) != bit(host->addr, i))
            return false;
    return true;
}

static void check_accepted(const char *text, const fm_cidr *c)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned bits = c->family == AF_INET ? 32 : 128;
    char addr[INET6_ADDRSTRLEN], again[INET6_ADDRSTRLEN + 8], err[128], part[TEXT_MAX];
    unsigned char raw[16];
    fm_cidr back;

    if ((c->family != AF_INET && c->family != AF_INET6) || c->prefix > bits)
        fuzz_fail("cidr: \"%s\" parsed out of range (family %d, /%u)", text, c->family, c->prefix);
    for (unsigned i = c->prefix; i < 128; i++)
        if (bit(c->addr, i))
            fuzz_fail("cidr: \"%s\" kept a bit at or below its prefix /%u", text, c->prefix);
    if (c->family == AF_INET6 && c->prefix >= 96 && memcmp(c->addr, mapped, 12) == 0)
        fuzz_fail("cidr: \"%s\" kept as an IPv4-mapped IPv6 block", text);
    (void)snprintf(part, sizeof(part), "%.*s", (int)strcspn(text, "/"), text);
    if (inet_pton(strchr(part, ':') != NULL ? AF_INET6 : AF_INET, part, raw) != 1)
        fuzz_fail("cidr: accepted \"%s\", which inet_pton refuses", text);
    if (inet_ntop(c->family, c->addr, addr, sizeof(addr)) == NULL)
        fuzz_fail("cidr: inet_ntop failed on the result of \"%s\"", text);
    (void)snprintf(again, sizeof(again), "%s/%u", addr, c->prefix);
    memset(&back, 0, sizeof(back));
    if (fm_ipacl_parse_cidr(again, &back, err, sizeof(err)) != FM_OK)
        fuzz_fail("cidr: \"%s\" printed back as \"%s\" is refused: %s", text, again, err);
    if (back.family != c->family || back.prefix != c->prefix ||
        memcmp(back.addr, c->addr, sizeof(c->addr)) != 0)
        fuzz_fail("cidr: \"%s\" printed back as \"%s\" parses differently", text, again);
}

static void check_refused(const char *text, const fm_cidr *out, const char *err)
{
    fm_cidr untouched;

    memset(&untouched, 0x5a, sizeof(untouched));
    if (memcmp(out, &untouched, sizeof(untouched)) != 0)
        fuzz_fail("cidr: refusing \"%s\" wrote *out", text);
    fuzz_check_message("cidr", err, 128);
    if (strncmp(err, "invalid CIDR \"", 14) != 0)
        fuzz_fail("cidr: unexpected message form: %s", err);
    for (const char *p = err; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            fuzz_fail("cidr: message holds a non-printable byte 0x%02x", (unsigned char)*p);
}

static void check_match(const fm_cidr *block, const char *addr)
{
    fm_ipacl list = {.entries = (fm_cidr *)block, .count = 1};
    bool got = fm_ipacl_match(&list, addr), want = false;
    fm_cidr host;

    /* The reference: the strict parser's reading of addr as a host (no '/' allowed). */
    memset(&host, 0, sizeof(host));
    if (strchr(addr, '/') == NULL && fm_ipacl_parse_cidr(addr, &host, NULL, 0) == FM_OK)
        want = ref_in_block(block, &host);
    if (got != want)
        fuzz_fail("cidr: match of \"%s\" is %d, the reference says %d", addr, got, want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *addr, err[128];
    fm_cidr c;

    if (size >= TEXT_MAX)
        return 0;
    text = fuzz_cstr(data, size);
    addr = strchr(text, '\n');
    if (addr != NULL)
        *addr++ = '\0';
    memset(&c, 0x5a, sizeof(c));
    if (fm_ipacl_parse_cidr(text, &c, err, sizeof(err)) != FM_OK) {
        check_refused(text, &c, err);
    } else {
        check_accepted(text, &c);
        if (addr != NULL)
            check_match(&c, addr);
    }
    free(text);
    return 0;
}
