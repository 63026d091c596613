/*
 * nchan.h - nchan's publisher location, reached over a unix socket (SPEC
 * 4.2): publish a message to channels, delete a channel (which closes its
 * subscribers' WebSockets).
 *
 * One HTTP/1.1 exchange per call (RFC 9112), "Connection: close", bounded by
 * a deadline: connect, write and read together take at most timeout_ms. The
 * publisher location is expected at "/<channel>[,<channel>...]" with
 * nchan_channel_id_split_delimiter ","; nchan's answer codes are those of its
 * documentation: a publish answers 201 (or 202: queued, nobody subscribed),
 * a DELETE 200 (deleted) or 404 (no such channel), a GET 200 (the channel's
 * info) or 404.
 */
#ifndef FM_NCHAN_H
#define FM_NCHAN_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define FM_NCHAN_CHANNEL_MAX 80 /* bytes of one channel id, NUL included */
#define FM_NCHAN_CHANNELS_MAX 4 /* channels one publish names */

/*
 * fm_nchan_channel_ok - whether s is a channel id this product makes: 1 to
 * FM_NCHAN_CHANNEL_MAX - 1 bytes of [A-Za-z0-9_.-] (no ',' or '/', which
 * would name other channels or paths).
 */
bool fm_nchan_channel_ok(const char *s);

/*
 * fm_nchan_publish - POST body (len bytes, Content-Type application/json) to
 * the n channels (1..FM_NCHAN_CHANNELS_MAX, each fm_nchan_channel_ok) of the
 * publisher at socket_path (a unix socket path, without "unix:"), within
 * timeout_ms (> 0, milliseconds). *status gets the HTTP status (0 when none
 * was read). Returns FM_OK when nchan took the message (201 or 202); FM_EINVAL
 * for a bad channel, count or path; FM_ESYS (errno; ETIMEDOUT past the
 * deadline, EPROTO for an answer that is not HTTP) when the exchange failed;
 * FM_ECONFLICT when nchan answered another status.
 */
FM_MUST_CHECK fm_err fm_nchan_publish(const char *socket_path, const char *const *channels,
                                      size_t n, const char *body, size_t len, int timeout_ms,
                                      int *status);

/*
 * fm_nchan_delete - DELETE channel (fm_nchan_channel_ok) at the publisher:
 * nchan closes every subscriber of the channel (a WebSocket gets close code
 * 1001) and drops its messages. Errors as fm_nchan_publish; FM_OK for 200
 * (deleted) and 404 (no such channel: nothing to close), *status telling which.
 */
FM_MUST_CHECK fm_err fm_nchan_delete(const char *socket_path, const char *channel, int timeout_ms,
                                     int *status);

/*
 * fm_nchan_exists - GET channel's info from the publisher: *exists true for
 * 200 (nchan holds the channel), false for 404 (it does not: no subscriber
 * on this nginx holds it). nchan's subscriber counts are not used: they stay
 * stale after a deletion and miss multiplexed subscribers. Errors as
 * fm_nchan_publish; FM_OK only for 200 and 404.
 */
FM_MUST_CHECK fm_err fm_nchan_exists(const char *socket_path, const char *channel, int timeout_ms,
                                     bool *exists);

#endif
