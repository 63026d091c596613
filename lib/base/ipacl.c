/*
 * ipacl.c - IP allow-lists of CIDR blocks.
 *
 * Parsing: the text is split at '/'. The address part is checked by hand first
 * (inet_pton gives no reason on failure, and its strictness differs between libcs):
 * IPv4 must be four decimal octets 0..255 without leading zeros; IPv6 may only
 * hold hex digits, ':' and '.', and an embedded dotted tail gets the IPv4
 * check. inet_pton then produces the bytes. The prefix is plain decimal within
 * the family's range, and no bit below it may be set in the address.
 * Finally an IPv4-mapped block (::ffff:0:0/96 or longer) is rewritten as the
 * IPv4 block it carries, prefix minus 96; the host-bit rule guarantees that a
 * mapped address with a prefix shorter than 96 never gets this far.
 *
 * Matching: the client address goes through the same address parser and the
 * same mapped-to-IPv4 rewrite, then is compared with each block of the same
 * family byte by byte under the block's mask. A list is a few entries, so a
 * linear scan is the whole lookup.
 */
#include "ipacl.h"

#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The longest IPv6 text with an embedded IPv4 tail is 45 bytes; add "/128" and margin. */
#define CIDR_TEXT_MAX 64
/* How much of a refused entry is echoed back in the error. */

static const char digits[] = "0123456789";
static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int check_ipv4(const char *s, const char **why)
{
    const char *p = s;
    int octets = 0;

    if (strspn(s, "0123456789.") != strlen(s)) {
        *why = "not an IP address";
        return -1;
    }
    for (;;) {
        size_t n = strspn(p, digits);
        int value = 0;

        if (n == 0) {
            *why = "empty IPv4 octet";
            return -1;
        }
        if (n > 1 && p[0] == '0') {
            *why = "leading zero in IPv4 octet";
            return -1;
        }
        for (size_t i = 0; i < n && value <= 255; i++)
            value = value * 10 + (p[i] - '0');
        if (value > 255) {
            *why = "IPv4 octet out of range 0..255";
            return -1;
        }
        octets++;
        p += n;
        if (*p != '.' || octets == 4)
            break;
        p++;
    }
    /* Only digits and dots are left, so stopping anywhere but the end means a fifth octet. */
    if (octets != 4 || *p != '\0') {
        *why = "IPv4 address must have 4 octets";
        return -1;
    }
    return 0;
}

/* Fills family and addr only; the caller owns the prefix. */
static int parse_addr(const char *s, fm_cidr *c, const char **why)
{
    if (*s == '\0') {
        *why = "empty address";
        return -1;
    }
    if (strchr(s, ':') != NULL) {
        const char *tail = strrchr(s, ':') + 1;

        if (strchr(tail, '.') != NULL && check_ipv4(tail, why) != 0)
            return -1;
        if (strspn(s, "0123456789abcdefABCDEF:.") != strlen(s) ||
            inet_pton(AF_INET6, s, c->addr) != 1) {
            *why = "not an IPv6 address";
            return -1;
        }
        c->family = AF_INET6;
        return 0;
    }
    if (check_ipv4(s, why) != 0)
        return -1;
    if (inet_pton(AF_INET, s, c->addr) != 1) {
        *why = "not an IPv4 address";
        return -1;
    }
    c->family = AF_INET;
    return 0;
}

/* A too large value comes back as ULONG_MAX, which the caller's range check refuses. */
static int parse_prefix(const char *s, unsigned long *out, const char **why)
{
    size_t n = strspn(s, digits);
    char *end;

    if (*s == '\0') {
        *why = "empty prefix";
        return -1;
    }
    if (n != strlen(s) || (n > 1 && s[0] == '0')) {
        *why = "prefix must be decimal without sign or leading zero";
        return -1;
    }
    errno = 0;
    *out = strtoul(s, &end, 10);
    if (errno == ERANGE)
        *out = ULONG_MAX;
    else if (errno != 0 || *end != '\0') {
        *why = "prefix must be decimal without sign or leading zero";
        return -1;
    }
    return 0;
}

static uint8_t byte_mask(unsigned prefix, unsigned i)
{
    if (prefix >= (i + 1) * 8)
        return 0xff;
    if (prefix <= i * 8)
        return 0;
    return (uint8_t)(0xffu << (8 - (prefix - i * 8)));
}

static unsigned addr_len(int family)
{
    return family == AF_INET ? 4 : 16;
}

static void unmap(fm_cidr *c)
{
    if (c->family != AF_INET6 || c->prefix < 96 ||
        memcmp(c->addr, mapped_prefix, sizeof(mapped_prefix)) != 0)
        return;
    memmove(c->addr, c->addr + 12, 4);
    memset(c->addr + 4, 0, 12);
    c->family = AF_INET;
    c->prefix -= 96;
}

fm_err fm_ipacl_parse_cidr(const char *text, fm_cidr *out, char *err, size_t errlen)
{
    char buf[CIDR_TEXT_MAX], shown[FM_LOG_ECHO_BUF], reason[64];
    const char *why = "invalid", *prefix_text = NULL;
    char *slash;
    unsigned long prefix, max;
    size_t len;
    fm_cidr c;

    if (text == NULL)
        text = "";
    len = strlen(text);
    for (size_t i = 0; i < len; i++) {
        if (isspace((unsigned char)text[i])) {
            why = "white space not allowed";
            goto fail;
        }
    }
    if (len >= sizeof(buf)) {
        why = "too long";
        goto fail;
    }
    memcpy(buf, text, len + 1);
    slash = strchr(buf, '/');
    if (slash != NULL) {
        *slash = '\0';
        prefix_text = slash + 1;
    }
    memset(&c, 0, sizeof(c));
    if (parse_addr(buf, &c, &why) != 0)
        goto fail;
    max = c.family == AF_INET ? 32 : 128;
    prefix = max;
    if (prefix_text != NULL) {
        if (parse_prefix(prefix_text, &prefix, &why) != 0)
            goto fail;
        if (prefix > max) {
            (void)snprintf(reason, sizeof(reason), "prefix must be 0..%lu", max);
            why = reason;
            goto fail;
        }
    }
    c.prefix = (unsigned)prefix;
    for (unsigned i = 0; i < addr_len(c.family); i++) {
        if ((c.addr[i] & (uint8_t)~byte_mask(c.prefix, i)) != 0) {
            (void)snprintf(reason, sizeof(reason), "host bits set below /%u", c.prefix);
            why = reason;
            goto fail;
        }
    }
    unmap(&c);
    *out = c;
    return FM_OK;

fail:
    if (err != NULL && errlen > 0) {
        fm_log_echo(text, shown);
        (void)snprintf(err, errlen, "invalid CIDR \"%s\": %s", shown, why);
    }
    return FM_EINVAL;
}

fm_err fm_ipacl_add(fm_ipacl *list, const fm_cidr *cidr)
{
    fm_cidr *grown;

    if (list->count >= SIZE_MAX / sizeof(*grown) - 1) {
        errno = ENOMEM;
        return FM_ESYS;
    }
    /* Lists are built once at config load and hold a handful of entries: no capacity field. */
    grown = realloc(list->entries, (list->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        errno = ENOMEM;
        return FM_ESYS;
    }
    list->entries = grown;
    list->entries[list->count++] = *cidr;
    return FM_OK;
}

static bool in_block(const fm_cidr *block, const fm_cidr *host)
{
    if (block->family != host->family)
        return false;
    for (unsigned i = 0; i < addr_len(block->family); i++) {
        if (((block->addr[i] ^ host->addr[i]) & byte_mask(block->prefix, i)) != 0)
            return false;
    }
    return true;
}

fm_err fm_ipacl_parse_host(const char *addr, fm_cidr *host)
{
    const char *why;
    fm_cidr c;

    if (addr == NULL)
        return FM_EINVAL;
    memset(&c, 0, sizeof(c));
    if (parse_addr(addr, &c, &why) != 0)
        return FM_EINVAL;
    c.prefix = c.family == AF_INET ? 32 : 128;
    unmap(&c);
    *host = c;
    return FM_OK;
}

bool fm_ipacl_match_host(const fm_ipacl *list, const fm_cidr *host)
{
    if (list == NULL || host == NULL)
        return false;
    for (size_t i = 0; i < list->count; i++) {
        if (in_block(&list->entries[i], host))
            return true;
    }
    return false;
}

bool fm_ipacl_match(const fm_ipacl *list, const char *addr)
{
    fm_cidr host;

    return fm_ipacl_parse_host(addr, &host) == FM_OK && fm_ipacl_match_host(list, &host);
}

void fm_ipacl_free(fm_ipacl *list)
{
    if (list == NULL)
        return;
    free(list->entries);
    list->entries = NULL;
    list->count = 0;
}
