/*
 * fuzz_taskbody.c - libFuzzer target for the body of POST /v1/tasks
 * (fm_taskbody_build, lib/store/taskbody.c).
 *
 * Input: the request body, any bytes. Checks:
 *   - a refusal is FM_EPARSE or FM_EINVAL with a message, and no record;
 *     the message goes to the client in a JSON answer, so it must be valid
 *     UTF-8 (it may hold a field name with an escaped newline: JSON escapes
 *     it again);
 *   - an accepted body gives a spec with a UUID v4 id, the user, a priority 1..10, a job_name
 * of 1..128 allowed characters that does not start with '.', every key of taskbody.h and no other;
 *   - the record renders as valid UTF-8, and its body fields, sent again as a body, are
 *     accepted and give the same fields (the validation is stable).
 */
#include "fuzz.h"
#include "jsonstr.h"
#include "taskbody.h"

#include <cjson/cJSON.h>
#include <errno.h>

static const char *const body_fields[] = {"job_name",   "args",     "priority", "commit_id",
                                          "experiment", "datasets", "metadata"};
static const char *const record_keys[] = {"id",       "job_name",  "args",       "priority",
                                          "user",     "commit_id", "experiment", "datasets",
                                          "metadata", "created_at"};
#define NFIELDS (sizeof(body_fields) / sizeof(body_fields[0]))
#define NKEYS (sizeof(record_keys) / sizeof(record_keys[0]))

static void check_uuid(const char *id)
{
    if (id == NULL || strlen(id) != 36 || id[14] != '4' || strchr("89ab", id[19]) == NULL)
        fuzz_fail("taskbody: id is not a UUID v4: %s", id != NULL ? id : "(none)");
    for (size_t i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? id[i] != '-'
                                                      : strchr("0123456789abcdef", id[i]) == NULL)
            fuzz_fail("taskbody: id is not a UUID v4: %s", id);
}

static void check_job_name(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n < 1 || n > 128 || s[0] == '.' ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") != n)
        fuzz_fail("taskbody: job_name accepted that taskbody.h refuses");
}

static void check_record(const cJSON *t)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(t, "priority"), *it;
    char *text;
    size_t n = 0;

    if (!cJSON_IsObject(t))
        fuzz_fail("taskbody: the record is not an object");
    check_uuid(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "id")));
    check_job_name(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "job_name")));
    if (!cJSON_IsNumber(p) || p->valuedouble < 1 || p->valuedouble > 10 ||
        p->valuedouble != (double)p->valueint)
        fuzz_fail("taskbody: priority outside 1..10 or not an integer");
    if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "user")), "alice") != 0)
        fuzz_fail("taskbody: user wrong");
    cJSON_ArrayForEach(it, t)
    {
        size_t k = 0;

        while (k < NKEYS && strcmp(record_keys[k], it->string) != 0)
            k++;
        if (k == NKEYS)
            fuzz_fail("taskbody: the record has the key \"%s\"", it->string);
        n++;
    }
    if (n != NKEYS)
        fuzz_fail("taskbody: the record has %zu keys, not %zu", n, NKEYS);
    text = cJSON_PrintUnformatted(t);
    if (text == NULL || !fm_jsonstr_utf8_valid(text, strlen(text)))
        fuzz_fail("taskbody: the record does not render as UTF-8 JSON");
    free(text);
}

/* The record's body fields as a body again; it must be accepted with the same fields. */
static void check_again(const cJSON *t)
{
    cJSON *body = cJSON_CreateObject(), *t2 = NULL;
    char *text, err[256];

    if (body == NULL)
        abort();
    for (size_t k = 0; k < NFIELDS; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, body_fields[k]);

        if (!cJSON_IsNull(v) && !cJSON_AddItemToObject(body, body_fields[k], cJSON_Duplicate(v, 1)))
            abort();
    }
    text = cJSON_PrintUnformatted(body);
    if (text == NULL)
        abort();
    if (fm_taskbody_build(text, strlen(text), "alice", &t2, err, sizeof(err)) != FM_OK)
        fuzz_fail("taskbody: the accepted fields sent again are refused: %s\nbody: %s", err, text);
    for (size_t k = 0; k < NFIELDS; k++)
        if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(t, body_fields[k]),
                           cJSON_GetObjectItemCaseSensitive(t2, body_fields[k]), 1))
            fuzz_fail("taskbody: field %s differs when sent again\nbody: %s", body_fields[k], text);
    cJSON_Delete(t2);
    cJSON_Delete(body);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *task = (cJSON *)&task; /* anything but NULL: a refusal must clear it */
    char err[256];
    fm_err rc;

    err[0] = '\0';
    rc = fm_taskbody_build((const char *)data, size, "alice", &task, err, sizeof(err));
    if (rc == FM_OK) {
        check_record(task);
        check_again(task);
        cJSON_Delete(task);
    } else if (rc == FM_EPARSE || rc == FM_EINVAL) {
        if (task != NULL)
            fuzz_fail("taskbody: a refusal left a record");
        if (strnlen(err, sizeof(err)) == sizeof(err) || err[0] == '\0' ||
            !fm_jsonstr_utf8_valid(err, strlen(err)))
            fuzz_fail("taskbody: refusal without a message, or not UTF-8: %s", err);
    } else if (!(rc == FM_ESYS && errno == ENOMEM)) {
        fuzz_fail("taskbody: unexpected result %d", (int)rc);
    }
    return 0;
}
