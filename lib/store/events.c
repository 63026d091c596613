/*
 * events.c - build a task event and publish it, fire and forget (events.h).
 *
 * The task is put into the event by reference (cJSON_CreateObjectReference),
 * so a large task is printed once and never copied. The outcomes are counted
 * in the shared metrics (FM_MET_EVENTS_PUBLISHED, FM_MET_EVENTS_FAILED).
 */
#include "events.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

static int64_t last_log_ms; /* 0: never logged */
static unsigned long long failed; /* by this process, for its log line */

/* The event's text, or NULL when out of memory; the caller frees it (cJSON_free). */
static char *render(const char *type, const cJSON *task)
{
    unsigned char rnd[16];
    char id[FM_EVENTS_ID_SIZE], ts[FM_RFC3339_MAX];
    cJSON *event = cJSON_CreateObject(), *ref;
    char *text = NULL;

    randombytes_buf(rnd, sizeof(rnd));
    (void)sodium_bin2hex(id, sizeof(id), rnd, sizeof(rnd));
    /* An object reference is made from the first member (cJSON's convention). */
    ref = cJSON_IsObject(task) ? cJSON_CreateObjectReference(task->child) : cJSON_CreateNull();
    if (event == NULL || ref == NULL || cJSON_AddStringToObject(event, "id", id) == NULL ||
        cJSON_AddStringToObject(event, "type", type) == NULL ||
        cJSON_AddStringToObject(event, "ts", fm_clock_rfc3339(ts, 1)) == NULL ||
        !cJSON_AddItemToObject(event, "task", ref)) {
        cJSON_Delete(ref);
        goto done;
    }
    text = cJSON_PrintUnformatted(event);
done:
    cJSON_Delete(event);
    return text;
}

void fm_events_publish(fm_redis *r, const char *prefix, const char *type, const cJSON *task)
{
    char channel[FM_REDIS_KEY_MAX];
    char *text = NULL;
    const char *why = "out of memory";
    int64_t now;

    if (r == NULL || prefix == NULL || type == NULL)
        why = "no connection";
    else if (fm_redis_key(channel, "%sevents", prefix) != FM_OK)
        why = "prefix too long";
    else if ((text = render(type, task)) != NULL) {
        const char *argv[] = {"PUBLISH", channel, text};
        if (fm_redis_send(r, 3, argv) == FM_OK) {
            fm_metrics_inc(FM_MET_EVENTS_PUBLISHED);
            cJSON_free(text);
            return;
        }
        why = fm_redis_errstr(r);
    }
    cJSON_free(text);
    failed++;
    fm_metrics_inc(FM_MET_EVENTS_FAILED);
    now = fm_clock_now_ms();
    if (last_log_ms == 0 || now - last_log_ms >= FM_EVENTS_LOG_INTERVAL_MS || now < last_log_ms) {
        last_log_ms = now;
        fm_log_warn("events: %s not published (%s); %llu failed so far in this process",
                    type != NULL ? type : "event", why, failed);
    }
}
