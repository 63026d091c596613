/*
 * transfer.h - a worker's request bodies and downloads over FastCGI, paced
 * at data.min_transfer_bytes_per_second (lib/base/pace.h; transfer.c says
 * how a deadline ends a blocking libfcgi call). For worker.c only: these
 * use SIGALRM and the process's interval timer, which nothing else in a
 * worker may.
 */
#ifndef FM_TRANSFER_H
#define FM_TRANSFER_H

#include <fcgiapp.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "pace.h"
#include "pipeline.h"
#include "response.h"

/*
 * fm_transfer_init - once, before any transfer, with SIGALRM blocked and
 * handled by fm_transfer_on_alarm (the worker's signal table). FM_OK, or
 * FM_ESYS (sigemptyset(3), sigaddset(3)).
 */
FM_MUST_CHECK fm_err fm_transfer_init(void);

/* fm_transfer_on_alarm - SIGALRM's handler: it only ends the paced call it was armed for. */
void fm_transfer_on_alarm(int sig);

/* fm_transfer_now_ms - milliseconds of CLOCK_MONOTONIC, the clock of every deadline here. */
int64_t fm_transfer_now_ms(void);

/*
 * fm_transfer_read_body - reads the body that length (CONTENT_LENGTH, may be
 * NULL) announces into req, within cfg's limits (server.max_body_bytes;
 * data.max_file_bytes for a streaming route, req->stream set, whose body is
 * not read here but left to its handler). *body is the caller's to free
 * (NULL when nothing was read). A body sent with te (a Transfer-Encoding)
 * and no length is not read but marked length_unknown (411), never taken
 * for an empty one; one over its limit body_too_large (413); one that ends
 * early body_incomplete, and body_slow too when it came slower than the
 * minimum rate: no handler sees part of a body as the whole.
 */
void fm_transfer_read_body(FCGX_Request *r, const fm_config *cfg, const char *length,
                           const char *te, fm_request *req, char **body);

/* A streaming route's body (FM_ROUTE_STREAM_BODY): FastCGI stdin, counted and paced. */
typedef struct fm_transfer_stream {
    FCGX_Request *r;
    uint64_t got; /* bytes the handler has read */
    fm_pace pace; /* from the start of the request */
} fm_transfer_stream;

/* fm_transfer_stream_start - s reads r's stdin at min_rate bytes a second at least, from now. */
void fm_transfer_stream_start(fm_transfer_stream *s, FCGX_Request *r, uint64_t min_rate);

/*
 * fm_transfer_stream_read - fm_body_stream's read (pipeline.h) over an
 * fm_transfer_stream (ctx): up to n bytes into buf; their count, 0 at the
 * end, -1 when the stream broke, FM_BODY_SLOW when it came too slowly.
 */
long fm_transfer_stream_read(void *ctx, char *buf, size_t n);

/*
 * fm_transfer_deliver - sends the file of resp (fm_response_file), after
 * its headers, in chunks at env->cfg's minimum rate. When it does not all
 * reach the web server (cut off as too slow, the connection closed, the file
 * changed under it) the end is logged with d's trace id and audited a second
 * time (fm_pipeline_delivery_end; d armed by fm_pipeline_run). Never fails.
 */
void fm_transfer_deliver(FCGX_Request *r, const fm_env *env, const fm_response *resp,
                         const fm_delivery *d);

#endif
