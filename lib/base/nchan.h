/*
 * nchan.h - nchan's publisher location, reached over a unix socket (SPEC
 * 4.2): publish a message to channels, delete a channel (which closes its
 * subscribers' WebSockets).
 *
 * A handle (fm_nchan_open) keeps one HTTP/1.1 connection open between calls
 * (RFC 9112 section 9.3, persistent connections): a busy relay does not pay
 * a connect, an accept and a close in nginx per event. Each call is one
 * exchange bounded by a deadline: connect (when needed), write and read
 * together take at most timeout_ms. The answer is framed by its
 * Content-Length; an answer without one, with "Connection: close", a
 * Transfer-Encoding, or from HTTP/1.0, ends the connection after its head
 * (only the status is used), and the next call opens a new one. A kept
 * connection the server closed while it was idle (nginx's keepalive_timeout,
 * a reload) fails before any byte of an answer: the call is then made once
 * more on a new connection, which cannot repeat a request nginx took (nginx
 * only closes an idle connection between requests). The publisher location is expected at
 * "/<channel>[,<channel>...]" with nchan_channel_id_split_delimiter ",";
 * nchan's answer codes are those of its documentation: a publish answers 201
 * (or 202: queued, nobody subscribed), a DELETE 200 (deleted) or 404 (no such
 * channel), a GET 200 (the channel's info) or 404.
 *
 * The publisher token (conf/README.md, websocket.publisher_token_file): the
 * relay and the FastCGI workers share an account, so the socket's directory
 * cannot keep a compromised worker from the publisher; nginx admits only
 * requests carrying a 256-bit random token that the worker never holds. It
 * goes in the FM_NCHAN_TOKEN_HEADER header of every request; nginx compares
 * the MD5 of that header with the verifier of its include file
 * (fm_nchan_token_new) by secure_link, and answers 403 to anything else.
 */
#ifndef FM_NCHAN_H
#define FM_NCHAN_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define FM_NCHAN_CHANNEL_MAX 80 /* bytes of one channel id, NUL included */
#define FM_NCHAN_CHANNELS_MAX 4 /* channels one publish names */
#define FM_NCHAN_TOKEN_HEADER "X-FetchML-Publisher-Token"
#define FM_NCHAN_TOKEN_LEN 64 /* lower-case hex characters of a token: 32 random bytes */
#define FM_NCHAN_TOKEN_SIZE (FM_NCHAN_TOKEN_LEN + 1)

typedef struct fm_nchan fm_nchan;

/*
 * fm_nchan_open - a handle for the publisher at socket_path (a unix socket
 * path, without "unix:", shorter than sun_path), sending token (a
 * fm_nchan_token_ok string, copied; NULL: no token header) with every
 * request. Nothing is connected yet. Returns the handle, owned by the caller
 * (fm_nchan_close), or NULL with errno (EINVAL: NULL path or a token that is
 * not one; ENAMETOOLONG; ENOMEM).
 */
fm_nchan *fm_nchan_open(const char *socket_path, const char *token);

/* fm_nchan_close - close the kept connection, if any, wipe the token and free c. NULL is accepted.
 */
void fm_nchan_close(fm_nchan *c);

/* fm_nchan_path - the socket path c was opened with (owned by c). */
const char *fm_nchan_path(const fm_nchan *c);

/*
 * fm_nchan_channel_ok - whether s is a channel id this product makes: 1 to
 * FM_NCHAN_CHANNEL_MAX - 1 bytes of [A-Za-z0-9_.-] (no ',' or '/', which
 * would name other channels or paths).
 */
bool fm_nchan_channel_ok(const char *s);

/*
 * fm_nchan_publish - POST body (len bytes, Content-Type application/json) to
 * the n channels (1..FM_NCHAN_CHANNELS_MAX, each fm_nchan_channel_ok) of the
 * publisher of c, within timeout_ms (> 0, milliseconds). *status gets the
 * HTTP status (0 when none was read). Returns FM_OK when nchan took the
 * message (201 or 202); FM_EINVAL for a bad channel, count or handle; FM_ESYS
 * (errno; ETIMEDOUT past the deadline, EPROTO for an answer that is not HTTP
 * or whose head passes 4 KiB) when the exchange failed, and the connection is
 * then closed; FM_ECONFLICT when nchan answered another status (403: nginx
 * refused the token, or its absence).
 */
FM_MUST_CHECK fm_err fm_nchan_publish(fm_nchan *c, const char *const *channels, size_t n,
                                      const char *body, size_t len, int timeout_ms, int *status);

/*
 * fm_nchan_delete - DELETE channel (fm_nchan_channel_ok) at the publisher:
 * nchan closes every subscriber of the channel (a WebSocket gets close code
 * 1001) and drops its messages. Errors as fm_nchan_publish; FM_OK for 200
 * (deleted) and 404 (no such channel: nothing to close), *status telling which.
 */
FM_MUST_CHECK fm_err fm_nchan_delete(fm_nchan *c, const char *channel, int timeout_ms, int *status);

/*
 * fm_nchan_exists - GET channel's info from the publisher: *exists true for
 * 200 (nchan holds the channel), false for 404 (it does not: no subscriber
 * on this nginx holds it). nchan's subscriber counts are not used: they stay
 * stale after a deletion and miss multiplexed subscribers. Errors as
 * fm_nchan_publish (*status as there); FM_OK only for 200 and 404.
 */
FM_MUST_CHECK fm_err fm_nchan_exists(fm_nchan *c, const char *channel, int timeout_ms, bool *exists,
                                     int *status);

/* fm_nchan_token_ok - whether s is a token: FM_NCHAN_TOKEN_LEN characters [0-9a-f]. */
bool fm_nchan_token_ok(const char *s);

/*
 * fm_nchan_token_read - the token of the open token file fd into token
 * (FM_NCHAN_TOKEN_SIZE bytes, NUL-terminated): a regular file that neither
 * group nor others may read (mode 0600 or 0400, like ssh's private keys)
 * holding the token and at most one newline. Read with pread from offset 0,
 * so that a descriptor shared across fork keeps its offset. Returns FM_OK;
 * FM_ESYS (errno) when fstat or the read fails; FM_EINVAL when the file is
 * not regular or group or others may read it; FM_EPARSE when it holds
 * anything else. On failure token is wiped and err (errlen bytes) says why,
 * never with a byte of the file.
 */
FM_MUST_CHECK fm_err fm_nchan_token_read(int fd, char token[FM_NCHAN_TOKEN_SIZE], char *err,
                                         size_t errlen);

/*
 * fm_nchan_token_new - a new token (32 bytes of libsodium's randombytes, in
 * hex) written to a new file at token_path (mode 0600), and nginx's check of
 * it to a new file at nginx_path (mode 0600), for inclusion in the
 * publisher's server block: the directive `secure_link "<verifier>";`, the
 * verifier being the MD5 of the token's hex text (RFC 1321) in base64url
 * without padding (RFC 4648 section 5), as nginx's secure_link_md5 compares
 * it. Neither file may exist (O_EXCL; a link is not followed). Returns FM_OK;
 * FM_ESYS (errno) when a file cannot be made or written, with neither left
 * behind; err (errlen bytes) says which.
 */
FM_MUST_CHECK fm_err fm_nchan_token_new(const char *token_path, const char *nginx_path, char *err,
                                        size_t errlen);

#endif
