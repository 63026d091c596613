/*
 * auditcheck.c - what the audit logger checks before it trusts anything it
 * did not make itself: the place of a trail or key (fm_audit_check_place:
 * no other account may change a directory on its path) and the fields a
 * sender sent (audit_fields_ok: exactly what format_fields in audit.c makes,
 * SPEC section 5's escaping kept). Both stand between a compromised worker
 * and the trail (audit.h, "Who writes the file").
 */
#include "audit.h"
#include "auditline.h"
#include "jsonstr.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Whether directory dir (one of the trail's directory and those above it)
 * lets no account but root and writer remove or replace what is in it:
 * owned by root or writer, and not writable by group or others unless
 * sticky. FM_OK, or the reason in err.
 */
static fm_err safe_dir(const char *path, const char *dir, uid_t writer, char *err, size_t errlen)
{
    struct stat st;

    if (stat(dir, &st) != 0) {
        (void)snprintf(err, errlen, "cannot open %s for appending: %s: %s", path, dir,
                       strerror(errno));
        return FM_ESYS;
    }
    if (st.st_uid != 0 && st.st_uid != writer) {
        (void)snprintf(err, errlen,
                       "%s: a directory of the audit trail's path belongs to uid %u, who could "
                       "remove or replace the trail; give it to root or to the audit logger's "
                       "account (uid %u)",
                       dir, (unsigned)st.st_uid, (unsigned)writer);
        return FM_EINVAL;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
        (void)snprintf(err, errlen,
                       "%s: the audit trail's directory is writable by %s (mode %04o) and not "
                       "sticky, so another account could remove or replace the trail; make it "
                       "sticky (chmod +t, mode 1770) or not writable by others (0750)",
                       dir, (st.st_mode & S_IWOTH) != 0 ? "everyone" : "its group",
                       (unsigned)(st.st_mode & 07777));
        return FM_EINVAL;
    }
    return FM_OK;
}

fm_err fm_audit_check_place(const char *path, uid_t writer, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
    struct stat st;
    fm_err rc;

    if (n >= sizeof dir) {
        (void)snprintf(err, errlen, "%s: path too long", path);
        return FM_EINVAL;
    }
    memcpy(dir, slash == NULL ? "." : path, n);
    dir[n] = '\0';
    /* The directory, then each one above it up to the root: any of them could be swapped. */
    for (;;) {
        char *up;
        if ((rc = safe_dir(path, dir, writer, err, errlen)) != FM_OK)
            return rc;
        up = strrchr(dir, '/');
        if (up == NULL || (up == dir && dir[1] == '\0'))
            break;
        if (up == dir)
            up[1] = '\0'; /* "/x" -> "/" */
        else
            *up = '\0';
    }
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return FM_OK; /* the logger creates it */
        (void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return FM_ESYS;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != writer || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        (void)snprintf(err, errlen,
                       "%s: the audit trail must be a regular file of the audit logger's account "
                       "(uid %u) that only it may write (it is %s of uid %u, mode %04o)",
                       path, (unsigned)writer, S_ISREG(st.st_mode) ? "a file" : "not a plain file",
                       (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return FM_EINVAL;
    }
    return FM_OK;
}

/*
 * The fields a sender's record may carry, in the order format_fields writes
 * them (prev_hash last, always), with what each holds. Anything else (a key
 * of the logger's own: ts, seq, hash, signature; a repeated or unknown key;
 * an object where a string belongs) is refused.
 */
enum field_kind { F_STR_OR_NULL, F_STR, F_RESULT, F_STATUS, F_COUNT, F_NAMES };

static const struct {
    const char *name;
    enum field_kind kind;
    bool required;
} record_fields[] = {
    {"trace_id", F_STR_OR_NULL, true}, {"user", F_STR_OR_NULL, true},
    {"key_id", F_STR_OR_NULL, true},   {"action", F_STR, true},
    {"resource", F_STR, true},         {"source_ip", F_STR_OR_NULL, true},
    {"result", F_RESULT, true},        {"status", F_STATUS, true},
    {"reason", F_STR_OR_NULL, true},   {"task_id", F_STR, false},
    {"worker", F_STR, false},          {"permission", F_STR, false},
    {"owner", F_STR, false},           {"bytes", F_COUNT, false},
    {"truncated", F_NAMES, false},     {"prev_hash", F_STR, true},
};
#define RECORD_FIELDS (sizeof record_fields / sizeof record_fields[0])

static bool field_value_ok(const cJSON *item, enum field_kind kind)
{
    switch (kind) {
    case F_STR_OR_NULL:
        return cJSON_IsNull(item) || cJSON_IsString(item);
    case F_STR:
        return cJSON_IsString(item);
    case F_RESULT:
        return cJSON_IsString(item) && (strcmp(item->valuestring, "success") == 0 ||
                                        strcmp(item->valuestring, "failure") == 0);
    case F_STATUS:
        return cJSON_IsNumber(item) && item->valuedouble >= 100 && item->valuedouble <= 599 &&
               item->valuedouble == (double)item->valueint;
    case F_COUNT:
        return cJSON_IsNumber(item) && item->valuedouble >= 0;
    case F_NAMES:
        if (!cJSON_IsArray(item))
            return false;
        for (const cJSON *c = item->child; c != NULL; c = c->next)
            if (!cJSON_IsString(c))
                return false;
        return true;
    }
    return false;
}

/*
 * Whether fields (len bytes) are what format_fields makes: every character
 * UTF-8 and none that fm_jsonstr_char calls unsafe left unescaped (controls,
 * DEL, C1, U+2028/U+2029, bidirectional controls: a reader could take them
 * for a line break or reorder the line), the record's fields as JSON in
 * their order, each once and of its type, prev_hash last, and no
 * CHECKPOINT, which only the logger writes. A sender that was taken over
 * could otherwise write a line that breaks the file's JSON, a reader's
 * lines or the chain, or one that jq and cJSON read differently (a repeated
 * key); it can still write a false record, as it could before.
 */
bool audit_fields_ok(const char *fields, size_t len)
{
    static const char head[] = "\"trace_id\":", tail[] = ",\"prev_hash\":\"";
    char line[FM_AUDIT_LINE_MAX + 8];
    const cJSON *item;
    bool seen[RECORD_FIELDS] = {false}, ok;
    size_t at = 0;
    cJSON *obj;

    /* Too long for a line with ts, seq and hashes: finish_line refuses it (EOVERFLOW). */
    if (len < sizeof head + sizeof tail || len >= FM_AUDIT_LINE_MAX ||
        memcmp(fields, head, sizeof head - 1) != 0 ||
        memcmp(fields + len - (sizeof tail - 1), tail, sizeof tail - 1) != 0)
        return false;
    for (size_t i = 0; i < len;) {
        bool unsafe;
        uint32_t cp;
        size_t n = fm_jsonstr_char(fields + i, len - i, &unsafe, &cp);
        if (n == 0 || unsafe)
            return false;
        i += n;
    }
    line[0] = '{';
    memcpy(line + 1, fields, len);
    memcpy(line + 1 + len, "0\"}", 3);
    obj = cJSON_ParseWithLength(line, len + 4);
    ok = cJSON_IsObject(obj);
    for (item = ok ? obj->child : NULL; ok && item != NULL; item = item->next) {
        /* The next field at or after at with this name: the order is fixed, so no repeat. */
        while (at < RECORD_FIELDS && strcmp(record_fields[at].name, item->string) != 0) {
            ok = ok && !record_fields[at].required;
            at++;
        }
        ok = ok && at < RECORD_FIELDS && field_value_ok(item, record_fields[at].kind) &&
             (item->next != NULL || at == RECORD_FIELDS - 1);
        if (ok)
            seen[at++] = true;
    }
    if (ok) {
        const cJSON *action = cJSON_GetObjectItemCaseSensitive(obj, "action");
        ok = seen[RECORD_FIELDS - 1] && strcmp(action->valuestring, "CHECKPOINT") != 0;
    }
    cJSON_Delete(obj);
    return ok;
}
