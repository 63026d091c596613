/*
 * wsauth.h - what GET /ws adds to the pipeline (SPEC 4.2): the key offered
 * as a WebSocket subprotocol, the Origin check, the channel an identity gets,
 * and the shape of the answer nginx's auth_request understands.
 *
 * Subprotocols (RFC 6455 section 4.1, Sec-WebSocket-Protocol): a browser
 * cannot set headers on a WebSocket, so it offers "ws+meta.nchan" (answered
 * by nchan, which then sends each message with its id) followed by
 * "fetchml.bearer.<key>" (never answered: the key is not echoed). A list
 * whose first token is not "ws+meta.nchan" is refused: nchan 1.3.6 answers
 * any other list with an empty Sec-WebSocket-Protocol, which RFC 6455
 * clients (browsers, Python's websockets) take as a failed handshake.
 *
 * Channels: admins get "all", workers (jobs:run) "queue", everyone else
 * "u.<user>"; the choice reads only the authenticated user, never the
 * request.
 */
#ifndef FM_WSAUTH_H
#define FM_WSAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "config.h"
#include "response.h"

#define FM_WSAUTH_META "ws+meta.nchan"
#define FM_WSAUTH_BEARER "fetchml.bearer."
#define FM_WSAUTH_CHANNEL_MAX (FM_NAME_MAX + 2) /* "u." + a user name */

/* What a Sec-WebSocket-Protocol header offers. */
typedef struct fm_wsauth_offer {
    char key[FM_AUTH_KEY_MAX + 1]; /* the fetchml.bearer.<key> key, "" = none offered */
    bool meta;                     /* ws+meta.nchan offered */
    bool meta_first;               /* ... as the first token of the list */
    bool repeated;                 /* more than one bearer offered */
} fm_wsauth_offer;

/*
 * fm_wsauth_subprotocols - parse header (a comma-separated token list, RFC
 * 6455 section 11.3.4; NULL = none offered) into *out. A bearer key longer
 * than FM_AUTH_KEY_MAX is taken as malformed: out->key gets the first
 * FM_AUTH_KEY_MAX + 1 bytes cut to "" and repeated is set, so the request is
 * refused. Never fails; out is always filled.
 */
void fm_wsauth_subprotocols(const char *header, fm_wsauth_offer *out);

/*
 * fm_wsauth_origin_allowed - whether a request with Origin origin may open a
 * socket: no Origin (a script) always may; else origin must equal one of
 * cfg->websocket.allowed_origins, compared byte for byte after lowering the
 * scheme and host (RFC 6454 section 6.1 serialisation).
 */
bool fm_wsauth_origin_allowed(const fm_config *cfg, const char *origin);

/*
 * fm_wsauth_channel - the channel of user and its kind: "all"/"all" for an
 * admin, "queue"/"queue" for a user with jobs:run, "u.<name>"/"user" for the
 * rest. channel gets FM_WSAUTH_CHANNEL_MAX bytes; *kind is static.
 */
void fm_wsauth_channel(const fm_user *user, char channel[FM_WSAUTH_CHANNEL_MAX], const char **kind);

/*
 * fm_wsauth_answer - turn the pipeline's answer to GET /ws into one for
 * nginx's auth_request, which passes only 2xx (allow), 401 and 403 on and
 * turns anything else into 500: a refusal becomes 401 (when it was 401) or
 * 403 with "X-FetchML-Status: <the real status>" and "X-FetchML-Error: <the
 * JSON error body>", which nginx's error location answers with. A 2xx answer
 * and one whose headers do not fit are left as they are (nginx then answers
 * its own 503 for the latter). The body is dropped: auth_request reads none.
 */
void fm_wsauth_answer(fm_response *resp);

#endif
