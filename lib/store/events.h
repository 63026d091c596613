/*
 * events.h - task events: the one place events leave the product (SPEC 4.2).
 *
 * An event is one JSON object, fields in this order:
 *   {"id":"<32 hex>","type":"task.created","ts":"2026-11-29T06:40:00.123Z","task":{...}}
 * id: 128 random bits from libsodium, hex: unique across every process that
 * publishes (workers, the sweeper, restarts) without any coordination, which
 * a per-process sequence would not be. ts: when it was published (RFC 3339
 * UTC, ms). type: task.created|started|progress|completed|failed|cancelled|
 * deleted|requeued. task: the task as the API shows it.
 *
 * The event is PUBLISHed on the Redis Pub/Sub channel "<prefix>events" with
 * fm_redis_send (fire and forget: no round trip is waited for). The
 * WebSocket relay (fcgi-app/wsrelay.c) subscribes to it and delivers each
 * event to nchan, so /ws subscribers on any host get it.
 *
 * A publish never fails its caller: one that cannot be sent (Redis down, the
 * breaker open, out of memory) is counted (metrics.h: FM_MET_EVENTS_FAILED,
 * as a sent one is in FM_MET_EVENTS_PUBLISHED) and logged at
 * most once every FM_EVENTS_LOG_INTERVAL_MS per process. Publishing is for
 * subscribers that are listening: Pub/Sub keeps nothing, so an event sent
 * while nobody subscribes is gone (the task's state in Redis is the record).
 */
#ifndef FM_EVENTS_H
#define FM_EVENTS_H

#include <cjson/cJSON.h>

#include "redisconn.h"

#define FM_EVENTS_ID_SIZE 33 /* 32 hex digits and NUL */
#define FM_EVENTS_LOG_INTERVAL_MS 10000

/*
 * fm_events_publish - build the event of type (a static "task.*" string)
 * about task (a JSON object, not modified, not kept; NULL or not an object:
 * "task":null) and publish
 * it on "<prefix>events" through r. Never blocks longer than fm_redis_send
 * (timeout_ms). Counts the outcome; nothing to check.
 */
void fm_events_publish(fm_redis *r, const char *prefix, const char *type, const cJSON *task);

#endif
