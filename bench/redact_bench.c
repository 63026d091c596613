/*
 * redact_bench.c - throughput of the redaction filter (lib/redact) on log
 * lines shaped like the ones fetchml-fcgi writes, for scripts/bench.sh.
 *
 *   redact_bench [MEGABYTES]      (default 4; 1..256)
 *
 * It generates MEGABYTES of lines once, from a fixed seed (libsodium's
 * deterministic generator, so every run filters the same bytes):
 *   - 45% audit records as they reach the filter: the JSON line up to and
 *     including "reason" (prev_hash and hash are added after the filter and
 *     never pass it), with UUID paths, trace ids, key fingerprints and
 *     addresses that must all be kept;
 *   - 45% nginx access lines (log_format fetchml), which fetchml-logrelay
 *     filters: with the audit record, what every request writes;
 *   - 5% api.log lines: failed authentications, task creation with a commit
 *     id, limiter trouble, config loads;
 *   - 5% lines that carry a credential (X-API-Key header, Bearer token, Redis
 *     URL userinfo, a JSON password, the registered Redis password), so the
 *     replacing path is timed too.
 * A 48-hex literal is registered first, as the master does with the Redis
 * password. Then fm_redact runs line by line over the whole buffer, pass
 * after pass, until at least one second has gone by; the result is input
 * bytes per second in MB (10^6 bytes). The printed redaction count is a
 * sanity check: it must be nonzero and the same on every run. A second line
 * times the same lines with 10,000 random key digests registered
 * (fm_redact_set_key_hashes), as the pool and the relay run with a config of
 * that many keys: the cost of hashing the tokens keys could hide in.
 */
#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redact.h"

#define LINE_MAX_BYTES 1024
#define MIN_SECONDS 1.0
#define MAX_PASSES 1000
#define BENCH_KEYS 10000
#define BENCH_KEYS_TEXT "10000"

/* Draws from a fixed-seed stream, refilled in blocks. */
typedef struct rng {
    unsigned char seed[randombytes_SEEDBYTES];
    unsigned char pool[4096];
    size_t used;
} rng;

static uint32_t draw(rng *g)
{
    uint32_t v;

    if (g->used + sizeof v > sizeof g->pool) {
        randombytes_buf_deterministic(g->pool, sizeof g->pool, g->seed);
        sodium_increment(g->seed, sizeof g->seed); /* next block: a new, still fixed, stream */
        g->used = 0;
    }
    memcpy(&v, g->pool + g->used, sizeof v);
    g->used += sizeof v;
    return v;
}

static void hex(rng *g, char *out, size_t nhex)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < nhex; i++)
        out[i] = digits[draw(g) & 15];
    out[nhex] = '\0';
}

static void uuid(rng *g, char out[37])
{
    char h[33];

    hex(g, h, 32);
    (void)snprintf(out, 37, "%.8s-%.4s-4%.3s-a%.3s-%.12s", h, h + 8, h + 12, h + 15, h + 18);
}

static const char *pick(rng *g, const char *const *list, size_t n)
{
    return list[draw(g) % n];
}

#define PICK(g, list) pick(g, list, sizeof(list) / sizeof((list)[0]))

static const char *const users[] = {"alice", "bob", "researcher", "analyst", "admin", "carol"};
static const char *const addrs[] = {"127.0.0.1", "10.1.4.20", "192.168.7.31", "::1",
                                    "2001:db8::17"};
static const char *const reasons[] = {"null",          "null",        "null", "\"rate_limited\"",
                                      "\"forbidden\"", "\"no_route\""};

/* Writes one generated line (without newline) into line; returns its length. */
static int make_line(rng *g, char line[LINE_MAX_BYTES], const char *literal)
{
    char trace[33], kid[13], id[37], commit[41], tok[65];
    uint32_t kind = draw(g) % 100;
    uint32_t ms = draw(g) % 86400000;
    uint32_t pid = 1000 + draw(g) % 30000, seq = draw(g) % 10000000, n = draw(g);
    char ts[32];
    const char *user = PICK(g, users), *addr = PICK(g, addrs);

    (void)snprintf(ts, sizeof ts, "2025-03-14T%02u:%02u:%02u.%03uZ", ms / 3600000, ms / 60000 % 60,
                   ms / 1000 % 60, ms % 1000);
    hex(g, trace, 32);
    hex(g, kid, 12);
    uuid(g, id);
    if (kind < 45) {
        static const char *const actions[] = {"GET /v1/whoami", "GET /v1/tasks", "POST /v1/tasks",
                                              "GET /v1/tasks/", "DELETE /v1/tasks/"};
        const char *action = PICK(g, actions);
        int with_id = action[strlen(action) - 1] == '/';
        const char *reason = PICK(g, reasons);
        int status = strcmp(reason, "null") == 0               ? 200
                     : strcmp(reason, "\"rate_limited\"") == 0 ? 429
                     : strcmp(reason, "\"forbidden\"") == 0    ? 403
                                                               : 404;
        return snprintf(line, LINE_MAX_BYTES,
                        "{\"ts\":\"%s\",\"seq\":%u,\"trace_id\":\"%s\",\"user\":\"%s\","
                        "\"key_id\":\"%s\",\"action\":\"%s%s\",\"resource\":\"%s%s\","
                        "\"source_ip\":\"%s\",\"result\":\"%s\",\"status\":%d,\"reason\":%s,",
                        ts, seq, trace, user, kid, action, with_id ? id : "",
                        action + strcspn(action, " ") + 1, with_id ? id : "", addr,
                        status < 400 ? "success" : "failure", status, reason);
    }
    if (kind < 90) {
        static const char *const methods[] = {"GET", "GET", "POST", "DELETE"};
        static const char *const statuses[] = {"200", "200", "200", "201", "401", "404", "429"};
        const char *method = PICK(g, methods), *status = PICK(g, statuses);

        return snprintf(line, LINE_MAX_BYTES,
                        "{\"ts\":\"%.19s+00:00\",\"trace_id\":\"%s\",\"remote_addr\":\"%s\","
                        "\"method\":\"%s\",\"status\":%s,\"bytes\":%u,\"request_time\":0.%03u}",
                        ts, trace, addr, method, status, n % 2000, n % 40);
    }
    if (kind < 95) {
        switch (kind % 5) {
        case 0:
        case 1:
            return snprintf(line, LINE_MAX_BYTES,
                            "%s warn [%u] authentication failed: reason=unknown_key source=%s "
                            "key_id=%s trace_id=%s",
                            ts, pid, addr, kid, trace);
        case 2:
            hex(g, commit, 40);
            return snprintf(line, LINE_MAX_BYTES,
                            "%s info [%u] task %s created by %s: job_name=train-resnet "
                            "commit_id=%s priority=%u trace_id=%s",
                            ts, pid, id, user, commit, n % 10 + 1, trace);
        case 3:
            return snprintf(line, LINE_MAX_BYTES,
                            "%s error [%u] rate limiter unavailable (Connection refused); refusing "
                            "(on_redis_error: deny) trace_id=%s",
                            ts, pid, trace);
        default:
            return snprintf(line, LINE_MAX_BYTES,
                            "%s info [%u] config /etc/fetch_ml/config.yaml: %u users, redis "
                            "unix:/run/fetch_ml/redis.sock, password from REDIS_PASSWORD",
                            ts, pid, n % 200 + 1);
        }
    }
    hex(g, tok, 64);
    switch (kind % 5) {
    case 0:
        return snprintf(line, LINE_MAX_BYTES,
                        "%s warn [%u] rejected request header X-API-Key: %s source=%s trace_id=%s",
                        ts, pid, tok, addr, trace);
    case 1:
        return snprintf(line, LINE_MAX_BYTES,
                        "%s warn [%u] upstream said: Authorization: Bearer %s trace_id=%s", ts, pid,
                        tok, trace);
    case 2:
        return snprintf(line, LINE_MAX_BYTES,
                        "%s error [%u] redis connect failed: redis://:%s@127.0.0.1:6379/0", ts, pid,
                        literal);
    case 3:
        return snprintf(line, LINE_MAX_BYTES,
                        "%s warn [%u] bad body {\"user\":\"%s\",\"password\":\"p4ss\\\"w0rd%.8s\"}",
                        ts, pid, user, tok);
    default:
        return snprintf(line, LINE_MAX_BYTES, "%s error [%u] AUTH %s failed source=%s", ts, pid,
                        literal, addr);
    }
}

static double now_s(void)
{
    struct timespec t;

    (void)clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int parse_mb(const char *s, long *out)
{
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtol(s, &end, 10);
    return errno == 0 && *end == '\0' && *out >= 1 && *out <= 256 ? 0 : -1;
}

/*
 * Times fm_redact over lines [starts[i], starts[i + 1]) and prints one result
 * line. 0, or -1 when no marker was written (the filter did nothing).
 */
static int measure(const char *what, const char *buf, const size_t *starts, size_t nlines,
                   char *out, size_t cap)
{
    unsigned long long redactions = 0, bytes = 0;
    size_t used = starts[nlines] - starts[0];
    double t0, elapsed;
    int passes = 0;

    /* An untimed pass counts the markers: a fixed number to compare runs by. */
    for (size_t i = 0; i < nlines; i++) {
        (void)fm_redact(buf + starts[i], starts[i + 1] - starts[i], out, cap);
        for (const char *p = out; (p = strstr(p, FM_REDACTED)) != NULL; p++)
            redactions++;
    }
    t0 = now_s();
    do {
        for (size_t i = 0; i < nlines; i++)
            (void)fm_redact(buf + starts[i], starts[i + 1] - starts[i], out, cap);
        bytes += used;
        passes++;
        elapsed = now_s() - t0;
    } while (elapsed < MIN_SECONDS && passes < MAX_PASSES);

    printf("%s: %.1f MB/s (%zu lines, %.1f MB, %d passes, %.0f ns/line, %llu redactions per "
           "pass)\n",
           what, (double)bytes / 1e6 / elapsed, nlines, (double)used / 1e6, passes,
           elapsed * 1e9 / ((double)nlines * passes), redactions);
    return redactions > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static rng g; /* zero seed: fixed data */
    char literal[49], out[2 * LINE_MAX_BYTES], line[LINE_MAX_BYTES];
    long mb = 4;
    size_t want, used = 0, nlines = 0, cap;
    size_t *starts = NULL;
    char *buf = NULL;
    unsigned char *keys = NULL;
    int status = 1;

    if (argc > 2 || (argc == 2 && parse_mb(argv[1], &mb) != 0)) {
        fprintf(stderr, "usage: redact_bench [MEGABYTES 1..256]\n");
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "redact_bench: sodium_init failed\n");
        return 1;
    }
    want = (size_t)mb * 1000000;
    cap = want / 64 + 1; /* lines are longer than 64 bytes */
    buf = malloc(want + LINE_MAX_BYTES);
    starts = malloc((cap + 1) * sizeof *starts);
    if (buf == NULL || starts == NULL) {
        fprintf(stderr, "redact_bench: out of memory\n");
        goto done;
    }
    g.used = sizeof g.pool; /* first draw fills the pool */
    hex(&g, literal, 48);
    if (fm_redact_add_secret(literal) != 0) {
        fprintf(stderr, "redact_bench: fm_redact_add_secret: %s\n", strerror(errno));
        goto done;
    }
    while (used < want && nlines < cap) {
        int n = make_line(&g, line, literal);
        if (n <= 0 || n >= LINE_MAX_BYTES) {
            fprintf(stderr, "redact_bench: line generation failed\n");
            goto done;
        }
        starts[nlines++] = used;
        memcpy(buf + used, line, (size_t)n);
        used += (size_t)n;
    }
    starts[nlines] = used;

    if (measure("redact", buf, starts, nlines, out, sizeof out) != 0)
        goto done;
    /* The same lines again with the digests of a 10,000-key config registered (the pool does). */
    keys = malloc(BENCH_KEYS * FM_REDACT_KEY_HASH_BYTES);
    if (keys == NULL) {
        fprintf(stderr, "redact_bench: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < BENCH_KEYS * FM_REDACT_KEY_HASH_BYTES; i++)
        keys[i] = (unsigned char)draw(&g);
    if (fm_redact_set_key_hashes(keys, BENCH_KEYS) != FM_OK) {
        fprintf(stderr, "redact_bench: fm_redact_set_key_hashes: %s\n", strerror(errno));
        goto done;
    }
    if (measure("redact with " BENCH_KEYS_TEXT " key digests", buf, starts, nlines, out,
                sizeof out) != 0)
        goto done;
    status = 0;
done:
    free(keys);
    free(starts);
    free(buf);
    return status;
}
