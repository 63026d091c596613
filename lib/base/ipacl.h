/*
 * ipacl.h - IP allow-lists of CIDR blocks (RFC 4632 for IPv4, RFC 4291 for IPv6).
 *
 * An allow-list is an immutable array of CIDR blocks built at config load and
 * only read on the request path. An IPv4-mapped IPv6 address (::ffff:a.b.c.d,
 * RFC 4291 section 2.5.5.2) is compared as the IPv4 address it carries, both
 * when it is a list entry and when it is the client address.
 */
#ifndef FM_IPACL_H
#define FM_IPACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct fm_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network address, masked; first 4 bytes used for AF_INET */
    unsigned prefix;  /* prefix length: 0..32 (AF_INET) or 0..128 (AF_INET6) */
} fm_cidr;

typedef struct fm_ipacl {
    fm_cidr *entries; /* owned by the list */
    size_t count;
} fm_ipacl;

/*
 * fm_ipacl_parse_cidr - parse one entry: "a.b.c.d", "a.b.c.d/n", an IPv6
 * address, or "ipv6/n". A bare address is a host (/32 or /128). Parsing is
 * strict: leading zeros in an IPv4 octet ("010.0.0.1"), a prefix out of range
 * ("/33"), an empty or non-decimal prefix ("10.0.0.0/", "/+8", "/08"), more than
 * four octets and surrounding white space are refused. Host bits set below the
 * prefix ("10.0.0.1/8") are refused too, since they usually mean a typo.
 *
 * Returns FM_OK and fills *out; FM_EINVAL (text NULL too) with a one-line
 * reason "invalid CIDR \"<text>\": <why>" (no trailing newline, the text
 * echoed as printable ASCII, at most 48 characters) written to err (errlen
 * bytes, always NUL-terminated; err may be NULL), *out untouched.
 */
FM_MUST_CHECK fm_err fm_ipacl_parse_cidr(const char *text, fm_cidr *out, char *err, size_t errlen);

/*
 * fm_ipacl_add - append a parsed CIDR block to list (which may start zeroed).
 * The list owns a copy. Returns FM_OK, or FM_ESYS with errno ENOMEM (the
 * list unchanged).
 */
FM_MUST_CHECK fm_err fm_ipacl_add(fm_ipacl *list, const fm_cidr *cidr);

/*
 * fm_ipacl_parse_host - parse the textual client address addr (as nginx gives
 * it in REMOTE_ADDR: dotted IPv4 or IPv6 without brackets or zone), as
 * strictly as a list entry, into host: a /32 or /128 block, an IPv4-mapped
 * IPv6 address as the IPv4 address it carries. Parsed once per request, host
 * serves every list and the brute-force guard. Returns FM_OK, or FM_EINVAL
 * (addr NULL too) when addr is not an IP literal, *host untouched.
 */
FM_MUST_CHECK fm_err fm_ipacl_parse_host(const char *addr, fm_cidr *host);

/*
 * fm_ipacl_match_host - true when host (from fm_ipacl_parse_host; NULL for an
 * address that is not an IP literal, which never matches) is inside any block
 * of list. An empty list matches nothing; callers decide what "no list
 * configured" means.
 */
bool fm_ipacl_match_host(const fm_ipacl *list, const fm_cidr *host);

/* fm_ipacl_match - fm_ipacl_match_host of the textual address addr, parsed here. */
bool fm_ipacl_match(const fm_ipacl *list, const char *addr);

/* fm_ipacl_free - release the entries; list itself is not freed. NULL is accepted. */
void fm_ipacl_free(fm_ipacl *list);

#endif
