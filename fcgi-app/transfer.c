/*
 * transfer.c - a worker's request bodies and downloads, paced (transfer.h).
 *
 * Slow transfers: a streamed upload's body and a download move at least at
 * data.min_transfer_bytes_per_second (lib/base/pace.h, with TRANSFER_GRACE_MS
 * of credit), or they are cut off, so a client that trickles a body or reads
 * a file slowly cannot hold a worker for hours. libfcgi blocks in read(2) and
 * write(2) and loops until it has moved all it was asked for, so only a
 * signal can end such a call at a deadline: SIGALRM is let in for the one
 * call (ITIMER_REAL set to the time left), and libfcgi takes the EINTR as an
 * error of the stream.
 *
 * The timer is armed for one blocking call at a time (paced_arm) and
 * disarmed after it (paced_disarm); SIGALRM is blocked at every other moment,
 * so it never interrupts anything else the worker does.
 */
#include "transfer.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "params.h"

#define STREAM_CHUNK 65536      /* bytes per read of a streamed upload or download */
#define TRANSFER_GRACE_MS 10000 /* a transfer's credit (pace.h): nginx's client_body_timeout */

static sigset_t alarm_set;

fm_err fm_transfer_init(void)
{
    return sigemptyset(&alarm_set) == 0 && sigaddset(&alarm_set, SIGALRM) == 0 ? FM_OK : FM_ESYS;
}

void fm_transfer_on_alarm(int sig)
{
    (void)sig;
}

int64_t fm_transfer_now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Arms the deadline of p for one blocking FastCGI call; false when it has
 * passed already (the transfer is too slow). paced_disarm must follow.
 */
static bool paced_arm(const fm_pace *p)
{
    int64_t left = fm_pace_left_ms(p, fm_transfer_now_ms());
    struct itimerval it = {{0, 0}, {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000}};

    if (left <= 0)
        return false;
    if (setitimer(ITIMER_REAL, &it, NULL) == 0)
        (void)sigprocmask(SIG_UNBLOCK, &alarm_set, NULL);
    return true;
}

static void paced_disarm(void)
{
    static const struct itimerval off;

    (void)sigprocmask(SIG_BLOCK, &alarm_set, NULL);
    (void)setitimer(ITIMER_REAL, &off, NULL);
}

/*
 * A download, in chunks: a worker's memory does not grow with the file. A
 * reader slower than data.min_transfer_bytes_per_second is cut off: the
 * connection is shut down, so that what libfcgi still writes at the end of
 * the request fails at once instead of waiting for the reader, and nginx
 * ends the response short of its Content-Length. The last part is flushed
 * under the same deadline, so that a download counts as whole only once
 * every byte went to the web server. Returns NULL then, or the audit reason
 * of its end (fm_pipeline_delivery_end), with the bytes handed on in *sent.
 */
static const char *send_file(FCGX_Request *r, const fm_response *resp, uint64_t min_rate,
                             uint64_t *sent)
{
    static char chunk[STREAM_CHUNK];
    uint64_t left = resp->file_len;
    fm_pace pace;
    bool moved = true;

    *sent = 0;
    fm_pace_start(&pace, min_rate, TRANSFER_GRACE_MS, fm_transfer_now_ms());
    while (left > 0 && moved) {
        ssize_t n = pread(resp->file_fd, chunk, left < sizeof(chunk) ? (size_t)left : sizeof(chunk),
                          (off_t)*sent);

        if (n < 0 && errno == EINTR)
            continue;
        /* Cut short or unreadable meanwhile (only a shell user can): the length was sent. */
        if (n <= 0)
            return n == 0 ? "file_shortened" : "file_read_error";
        moved = paced_arm(&pace) && FCGX_PutStr(chunk, (int)n, r->out) == (int)n;
        paced_disarm();
        if (moved) {
            fm_pace_add(&pace, (uint64_t)n, fm_transfer_now_ms());
            *sent += (uint64_t)n;
            left -= (uint64_t)n;
        }
    }
    if (moved) {
        moved = paced_arm(&pace) && FCGX_FFlush(r->out) == 0;
        paced_disarm();
        if (moved)
            return NULL;
    }
    if (fm_pace_left_ms(&pace, fm_transfer_now_ms()) > 0)
        return "connection_closed"; /* the client went away, or nginx's send_timeout passed */
    (void)shutdown(r->ipcFd, SHUT_RDWR);
    return "transfer_cut_off";
}

/* How a download that ended short is told in api.log (the audit record has the reason). */
static const struct {
    const char *reason;
    fm_log_level level;
    const char *text;
} short_ends[] = {
    {"transfer_cut_off", FM_LOG_INFO,
     "a download was cut off: read slower than data.min_transfer_bytes_per_second"},
    {"connection_closed", FM_LOG_INFO,
     "a download ended early: the web server closed the connection (the client went away, or "
     "its send_timeout passed)"},
    {"file_shortened", FM_LOG_WARN,
     "a download ended early: the file became shorter while it was sent"},
    {"file_read_error", FM_LOG_ERROR,
     "a download ended early: the file could not be read while it was sent"},
};

void fm_transfer_deliver(FCGX_Request *r, const fm_env *env, const fm_response *resp,
                         const fm_delivery *d)
{
    uint64_t sent;
    const char *reason = send_file(r, resp, env->cfg->data.min_transfer_rate, &sent);

    if (reason == NULL)
        return;
    for (size_t i = 0; i < sizeof(short_ends) / sizeof(short_ends[0]); i++)
        if (strcmp(short_ends[i].reason, reason) == 0)
            fm_log(short_ends[i].level, "worker %d: %s (%llu of %llu bytes sent) trace_id=%s",
                   (int)getpid(), short_ends[i].text, (unsigned long long)sent,
                   (unsigned long long)resp->file_len, d->trace_id);
    (void)fm_pipeline_delivery_end(env, d, sent, reason);
}

void fm_transfer_read_body(FCGX_Request *r, const fm_config *cfg, const char *length,
                           const char *te, fm_request *req, char **body)
{
    size_t clen;

    *body = NULL;
    if (te != NULL && (length == NULL || length[0] == '\0')) {
        req->length_unknown = 1;
    } else if (req->stream != NULL) {
        /* The handler reads it (FM_ROUTE_STREAM_BODY), up to data.max_file_bytes. */
        if (length == NULL || length[0] == '\0')
            req->length_unknown = 1;
        else if (fm_params_content_length(length, &clen) != FM_OK ||
                 clen > cfg->data.max_file_bytes)
            req->body_too_large = 1;
        else
            req->content_length = clen;
    } else if (fm_params_content_length(length, &clen) != FM_OK ||
               clen > cfg->server.max_body_bytes) {
        req->body_too_large = 1;
    } else if (clen > 0) {
        *body = malloc(clen);
        if (*body == NULL) {
            req->body_too_large = 1;
        } else {
            /*
             * Paced like a streamed body: where nginx passes a body on as the client
             * sends it (the experiments files location), a trickled one would hold the
             * worker before any step of the pipeline, key or none.
             */
            size_t have = 0;
            fm_pace pace;

            fm_pace_start(&pace, cfg->data.min_transfer_rate, TRANSFER_GRACE_MS,
                          fm_transfer_now_ms());
            while (have < clen && paced_arm(&pace)) {
                int got = FCGX_GetStr(*body + have, (int)(clen - have), r->in);

                paced_disarm();
                if (got <= 0)
                    break;
                fm_pace_add(&pace, (uint64_t)got, fm_transfer_now_ms());
                have += (size_t)got;
                if (FCGX_GetError(r->in) != 0)
                    break;
            }
            req->body = *body;
            req->body_len = have;
            req->body_incomplete = have != clen;
            req->body_slow = have != clen && fm_pace_left_ms(&pace, fm_transfer_now_ms()) <= 0;
        }
    }
}

void fm_transfer_stream_start(fm_transfer_stream *s, FCGX_Request *r, uint64_t min_rate)
{
    s->r = r;
    s->got = 0;
    fm_pace_start(&s->pace, min_rate, TRANSFER_GRACE_MS, fm_transfer_now_ms());
}

long fm_transfer_stream_read(void *ctx, char *buf, size_t n)
{
    fm_transfer_stream *b = ctx;
    int got;

    if (!paced_arm(&b->pace))
        return FM_BODY_SLOW;
    got = FCGX_GetStr(buf, n > INT_MAX ? INT_MAX : (int)n, b->r->in);
    paced_disarm();
    if (got > 0)
        fm_pace_add(&b->pace, (uint64_t)got, fm_transfer_now_ms());
    if (got < 0 || FCGX_GetError(b->r->in) != 0)
        return fm_pace_left_ms(&b->pace, fm_transfer_now_ms()) <= 0 ? FM_BODY_SLOW : -1;
    b->got += (uint64_t)got;
    return got;
}
