/*
 * syslogmsg.h - nginx's syslog messages, parsed and turned into safe log lines.
 *
 * nginx sends each error-log and access-log entry as one datagram in the BSD
 * syslog form (RFC 3164 section 4.1):
 *   <PRI>Mmm dd hh:mm:ss [HOSTNAME ]TAG: MSG
 * PRI is 0..191 (facility * 8 + severity); dd is a day of month, space-padded
 * ("Nov  1"); HOSTNAME is absent with nginx's "nohostname" parameter; TAG is
 * 1..32 of [A-Za-z0-9_] (nginx's own rule). fetchml-logrelay parses each
 * datagram with fm_syslogmsg_parse and writes fm_syslogmsg_line's output.
 */
#ifndef FM_SYSLOGMSG_H
#define FM_SYSLOGMSG_H

#include <stddef.h>

#include "err.h"

#define FM_SYSLOGMSG_TAG_MAX 32     /* bytes, nginx's limit */
#define FM_SYSLOGMSG_LINE_MAX 8192  /* bytes per output line, newline included */
#define FM_SYSLOGMSG_NGINX_MAX 2048 /* nginx's NGX_MAX_ERROR_STR: no message is longer */
#define FM_SYSLOGMSG_NGINX_CUT 1900 /* from here to NGINX_MAX a message may have been cut */

typedef struct fm_syslogmsg {
    int pri;         /* 0..191 */
    const char *tag; /* into the datagram, tag_len bytes, not NUL-terminated */
    size_t tag_len;
    const char *msg; /* into the datagram: everything after "TAG: ", msg_len bytes */
    size_t msg_len;
} fm_syslogmsg;

/*
 * fm_syslogmsg_parse - split one datagram (buf, len bytes; need not be
 * NUL-terminated, may hold any bytes) into PRI, TAG and MSG. The timestamp is
 * checked for shape (month name, day 1..31, hh:mm:ss in range) and dropped.
 * out's pointers point into buf. Returns FM_OK, or FM_EPARSE when the header
 * does not have the form above or buf or out is NULL (out is then
 * unspecified).
 */
fm_err fm_syslogmsg_parse(const char *buf, size_t len, fm_syslogmsg *out);

/*
 * fm_syslogmsg_line - make msg (len bytes, any bytes) one log line in line.
 * nginx logs request lines raw, so credentials may arrive percent-encoded
 * ("%70assword=", "Bearer%20..."): "%XX" escapes are decoded first (up to
 * three times, for double encoding), so that the filter sees them. A message
 * of FM_SYSLOGMSG_NGINX_CUT to FM_SYSLOGMSG_NGINX_MAX bytes may have been cut
 * by nginx in the middle of a secret the filter can then no longer
 * recognise: its last token (after the last space, quote, '/', '?',
 * '&', '=', ',' or ';') is replaced by [REDACTED]. Then fm_log_sanitize:
 * fm_redact (credentials, registered secrets), control bytes escaped so a
 * message can never forge a second line, '\n'. A line longer than
 * FM_SYSLOGMSG_LINE_MAX is cut (after redaction, so never in the middle of a
 * secret). Returns the line length, newline included (>= 1); line is not
 * NUL-terminated.
 */
size_t fm_syslogmsg_line(const char *msg, size_t len, char line[FM_SYSLOGMSG_LINE_MAX]);

#endif
