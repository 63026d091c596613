/*
 * keyrotate.c - rewriting the users' keys of a configuration file in place.
 *
 * The rewrite never re-emits the document. libyaml's events carry the byte
 * offsets of every node (start and end marks), so one walk over the events
 * finds, under auth.api_keys (or auth.apikeys), each user's hash: value and
 * keys: value; the new text is the old one with only those ranges replaced
 * (or one keys: entry inserted after hash:). Of a block collection libyaml's
 * end mark is where the next token starts, past any comment that follows, so
 * a block keys: list is taken to end where its last scalar or flow
 * collection ends: a comment after the list stays where it is.
 *
 * What is written in the replaced ranges is fixed text: 64 hex digits and
 * RFC 3339 times in double quotes, and old labels double-quoted with \" and
 * \\ escaped (a label has no control characters). The file must already
 * load, so its structure (no anchors, aliases or tags, one document) and its
 * values are known good; what this file refuses is only what it cannot
 * rewrite faithfully.
 */
#include "keyrotate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <yaml.h>

#include "clock.h"

#define GRACE_MAX (365LL * 86400)

/* A growing output buffer; a failed append sets oom and keeps what it had. */
struct buf {
    char *s;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 256 : b->cap;
        char *p;

        while (cap < b->len + n + 1 && cap <= SIZE_MAX / 2)
            cap *= 2;
        if (cap < b->len + n + 1 || (p = realloc(b->s, cap)) == NULL) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void spaces(struct buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(b, " ", 1);
}

/* One replaced range [start, end) of the original text; start == end inserts. */
struct edit {
    size_t start, end;
    char *text;
};

/* What the walk found of one user's mapping. */
struct user_at {
    bool flow; /* the user's mapping is a flow mapping */
    bool has_hash, has_keys;
    yaml_mark_t hash_key;        /* the "hash" key */
    size_t hash_start, hash_end; /* its value */
    size_t keys_key_end;         /* just after the "keys" key */
    yaml_mark_t keys_at;         /* its value's start */
    size_t keys_end;             /* its value's end (last scalar or flow collection) */
    bool keys_flow;
};

struct rw {
    const fm_config *cfg;
    const fm_keyrotate_opts *o;
    const char *file, *text;
    size_t len;
    char *err;
    size_t errlen;
    yaml_parser_t parser;
    yaml_event_t ev;
    bool ev_live;
    size_t next_user; /* index in cfg->auth.users of the next user in the file */
    size_t rotated;
    struct edit *edits;
    size_t nedits, capedits;
};

__attribute__((format(printf, 3, 4))) static fm_err fail(struct rw *w, const yaml_mark_t *at,
                                                         const char *fmt, ...)
{
    char msg[FM_CONFIG_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->err != NULL && w->errlen > 0) {
        if (at != NULL)
            (void)snprintf(w->err, w->errlen, "%s:%zu:%zu: %s", w->file, at->line + 1,
                           at->column + 1, msg);
        else
            (void)snprintf(w->err, w->errlen, "%s: %s", w->file, msg);
    }
    return FM_EINVAL;
}

static fm_err oom(struct rw *w)
{
    (void)fail(w, NULL, "out of memory");
    errno = ENOMEM;
    return FM_ESYS;
}

static fm_err next(struct rw *w)
{
    if (w->ev_live) {
        yaml_event_delete(&w->ev);
        w->ev_live = false;
    }
    if (!yaml_parser_parse(&w->parser, &w->ev))
        return fail(w, &w->parser.problem_mark, "YAML syntax error: %s",
                    w->parser.problem != NULL ? w->parser.problem : "invalid YAML");
    w->ev_live = true;
    return FM_OK;
}

static bool from_env(const yaml_event_t *e)
{
    return strstr((const char *)e->data.scalar.value, "${") != NULL;
}

/*
 * Reads the node whose first event is current, leaving its last event
 * current; *end is where its content ends (see the top of this file), *env
 * tells whether one of its scalars takes text from the environment.
 */
static fm_err skip_node(struct rw *w, size_t *end, bool *env)
{
    size_t depth = 0, flow_at = 0; /* flow_at: depth of the outermost flow collection, 0 = none */

    for (;;) {
        switch (w->ev.type) {
        case YAML_SCALAR_EVENT:
            *end = w->ev.end_mark.index;
            *env = *env || from_env(&w->ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            depth++;
            if (flow_at == 0 && (w->ev.type == YAML_SEQUENCE_START_EVENT
                                     ? w->ev.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
                                     : w->ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE))
                flow_at = depth;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth == flow_at) {
                *end = w->ev.end_mark.index;
                flow_at = 0;
            }
            depth--;
            break;
        default:
            return fail(w, &w->ev.start_mark, "YAML anchors and aliases are not allowed");
        }
        if (depth == 0)
            return FM_OK;
        if (next(w) != 0)
            return FM_EINVAL;
    }
}

/* Calls fn for each entry of the mapping whose start is current (keys are scalars). */
typedef fm_err (*entry_fn)(struct rw *w, const yaml_event_t *key, void *arg);

static fm_err each_entry(struct rw *w, entry_fn fn, void *arg)
{
    for (;;) {
        yaml_event_t key;
        fm_err rc;

        if (next(w) != 0)
            return FM_EINVAL;
        if (w->ev.type == YAML_MAPPING_END_EVENT)
            return FM_OK;
        if (w->ev.type != YAML_SCALAR_EVENT)
            return fail(w, &w->ev.start_mark, "a key that is not a string");
        key = w->ev; /* the value's event frees nothing of it until it is deleted below */
        w->ev_live = false;
        rc = next(w) != 0 ? FM_EINVAL : fn(w, &key, arg);
        yaml_event_delete(&key);
        if (rc != 0)
            return rc;
    }
}

static bool key_is(const yaml_event_t *key, const char *name)
{
    return strcmp((const char *)key->data.scalar.value, name) == 0;
}

static fm_err skip(struct rw *w)
{
    size_t end;
    bool env = false;

    return skip_node(w, &end, &env);
}

/* ---- one user -------------------------------------------------------------------- */

static fm_err user_field(struct rw *w, const yaml_event_t *key, void *arg)
{
    struct user_at *u = arg;
    bool env = false;

    if (key_is(key, "hash") && w->ev.type == YAML_SCALAR_EVENT) {
        u->has_hash = true;
        u->hash_key = key->start_mark;
        u->hash_start = w->ev.start_mark.index;
        u->hash_end = w->ev.end_mark.index;
        if (from_env(&w->ev))
            return fail(w, &w->ev.start_mark,
                        "this hash comes from the environment (${...}): rotate cannot change "
                        "it; write the hash in the file, or change the variable instead");
        if (w->ev.data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
            w->ev.data.scalar.style == YAML_FOLDED_SCALAR_STYLE)
            return fail(w, &w->ev.start_mark,
                        "a hash written as a block scalar (| or >) cannot be rewritten in "
                        "place: write it as \"<64 hex digits>\"");
        return FM_OK;
    }
    if (key_is(key, "keys") && w->ev.type == YAML_SEQUENCE_START_EVENT) {
        u->has_keys = true;
        u->keys_key_end = key->end_mark.index;
        u->keys_at = w->ev.start_mark;
        u->keys_flow = w->ev.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
        if (skip_node(w, &u->keys_end, &env) != 0)
            return FM_EINVAL;
        if (env)
            return fail(w, &u->keys_at,
                        "a value of these keys comes from the environment (${...}): rotate "
                        "cannot rewrite it; write the values in the file");
        return FM_OK;
    }
    return skip(w);
}

/* One key of a keys: list being written. */
struct item {
    char hex[2 * FM_KEY_HASH_BYTES + 1];
    int64_t expires; /* 0 = none */
    const char *label;
};

static void rfc3339(int64_t t, char out[FM_RFC3339_MAX])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, FM_RFC3339_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        (void)snprintf(out, FM_RFC3339_MAX, "1970-01-01T00:00:00Z");
}

/* A YAML double-quoted scalar (labels have no control characters: only " and \ are escaped). */
static void quoted(struct buf *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            put(b, "\\", 1);
        put(b, s, 1);
    }
    put(b, "\"", 1);
}

/* One field after the first: ", " before it in flow style, a new line at col in block style. */
static void field(struct buf *b, const char *name, const char *value, bool flow, size_t col)
{
    if (flow) {
        puts_(b, ", ");
    } else {
        puts_(b, "\n");
        spaces(b, col);
    }
    puts_(b, name);
    quoted(b, value);
}

static void item_fields(struct buf *b, const struct item *it, bool flow, size_t col)
{
    char when[FM_RFC3339_MAX];

    puts_(b, "hash: ");
    quoted(b, it->hex);
    if (it->expires != 0) {
        rfc3339(it->expires, when);
        field(b, "expires: ", when, flow, col);
    }
    if (it->label != NULL && it->label[0] != '\0')
        field(b, "label: ", it->label, flow, col);
}

/* A flow list: [] or [{...}, {...}]. */
static void flow_list(struct buf *b, const struct item *items, size_t n)
{
    puts_(b, "[");
    for (size_t i = 0; i < n; i++) {
        puts_(b, i > 0 ? ", {" : "{");
        item_fields(b, &items[i], true, 0);
        puts_(b, "}");
    }
    puts_(b, "]");
}

/* Block list items, the first one at the current position, the others at col. */
static void block_items(struct buf *b, const struct item *items, size_t n, size_t col)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            puts_(b, "\n");
            spaces(b, col);
        }
        puts_(b, "- ");
        item_fields(b, &items[i], false, col + 2);
    }
}

static fm_err add_edit(struct rw *w, size_t start, size_t end, struct buf *b)
{
    struct edit *e;

    if (b->oom) {
        free(b->s);
        return oom(w);
    }
    if (w->nedits == w->capedits) {
        size_t cap = w->capedits == 0 ? 16 : w->capedits * 2;

        if ((e = realloc(w->edits, cap * sizeof(*e))) == NULL) {
            free(b->s);
            return oom(w);
        }
        w->edits = e;
        w->capedits = cap;
    }
    /* An empty buffer has no string yet: an edit that removes text still needs one. */
    if (b->s == NULL && (b->s = strdup("")) == NULL)
        return oom(w);
    w->edits[w->nedits++] = (struct edit){start, end, b->s};
    return FM_OK;
}

/*
 * The column of the node at byte index at, counted in bytes from its line's
 * start: the text before it on the line must be spaces only (block
 * indentation), else the layout is refused.
 */
static fm_err indent_of(struct rw *w, const yaml_mark_t *at, size_t *col)
{
    size_t i = at->index;

    while (i > 0 && w->text[i - 1] == ' ')
        i--;
    if (i > 0 && w->text[i - 1] != '\n')
        return fail(w, at,
                    "this block is not indented with spaces only: rotate cannot rewrite it in "
                    "place");
    *col = at->index - i;
    return FM_OK;
}

/* The old keys of user that stay, with their new expires (none when grace is 0). */
static size_t old_items(const struct rw *w, const fm_user *user, struct item *items)
{
    int64_t until = w->o->now + w->o->grace;
    size_t n = 0;

    if (w->o->grace == 0)
        return 0;
    for (size_t i = 0; i < user->nkeys; i++) {
        const fm_key *k = &user->keys[i];

        if (k->expires != 0 && k->expires <= w->o->now)
            continue; /* already dead: left out */
        sodium_bin2hex(items[n].hex, sizeof(items[n].hex), k->hash, sizeof(k->hash));
        items[n].expires = k->expires != 0 && k->expires < until ? k->expires : until;
        items[n].label = k->label;
        n++;
    }
    return n;
}

/* The keys: value written in place of the old one (or [] in place of ": ..." when none stay). */
static fm_err replace_keys(struct rw *w, const struct user_at *u, const struct item *items,
                           size_t n)
{
    struct buf b = {0};
    size_t col = 0;

    if (u->keys_flow) {
        flow_list(&b, items, n);
        return add_edit(w, u->keys_at.index, u->keys_end, &b);
    }
    if (n == 0) {
        /* An indentless block list starts at the key's column: [] can only follow the colon. */
        puts_(&b, ": []");
        return add_edit(w, u->keys_key_end, u->keys_end, &b);
    }
    if (indent_of(w, &u->keys_at, &col) != 0)
        return FM_EINVAL;
    block_items(&b, items, n, col);
    return add_edit(w, u->keys_at.index, u->keys_end, &b);
}

/* A keys: entry after the hash: entry, for a user that had none. */
static fm_err insert_keys(struct rw *w, const struct user_at *u, const struct item *items, size_t n)
{
    struct buf b = {0};
    size_t col = 0, at = u->hash_end;

    if (u->flow) {
        puts_(&b, ", keys: ");
        flow_list(&b, items, n);
        return add_edit(w, at, at, &b);
    }
    if (indent_of(w, &u->hash_key, &col) != 0)
        return FM_EINVAL;
    /* After the rest of the hash's line, so that a comment on it stays with it. */
    while (at < w->len && w->text[at] != '\n')
        at++;
    puts_(&b, "\n");
    spaces(&b, col);
    puts_(&b, "keys:\n");
    spaces(&b, col + 2);
    block_items(&b, items, n, col + 2);
    return add_edit(w, at, at, &b);
}

static fm_err rotate_user(struct rw *w, const struct user_at *u, const fm_user *user)
{
    unsigned char hash[FM_KEY_HASH_BYTES];
    char day[FM_RFC3339_MAX], label[FM_NAME_MAX];
    struct item *items;
    size_t n;
    fm_err rc;

    if ((rc = w->o->new_hash(w->o->arg, user->name, hash)) != FM_OK) {
        (void)fail(w, NULL, "no new key for user \"%s\"", user->name);
        return rc;
    }
    /* The new key, then each old one that stays. */
    if ((items = calloc(user->nkeys + 1, sizeof(*items))) == NULL)
        return oom(w);
    sodium_bin2hex(items[0].hex, sizeof(items[0].hex), hash, sizeof(hash));
    rfc3339(w->o->now, day);
    (void)snprintf(label, sizeof(label), "rotated %.10s", day);
    items[0].label = label;
    n = old_items(w, user, items + 1);
    if (u->has_hash) {
        struct buf b = {0};

        quoted(&b, items[0].hex);
        rc = add_edit(w, u->hash_start, u->hash_end, &b);
        if (rc == 0 && u->has_keys)
            rc = replace_keys(w, u, items + 1, n);
        else if (rc == 0 && n > 0)
            rc = insert_keys(w, u, items + 1, n);
    } else {
        rc = replace_keys(w, u, items, n + 1);
    }
    sodium_memzero(hash, sizeof(hash));
    free(items);
    if (rc == 0)
        w->rotated++;
    return rc;
}

static fm_err user_entry(struct rw *w, const yaml_event_t *key, void *arg)
{
    const fm_config *cfg = w->cfg;
    const char *name = (const char *)key->data.scalar.value;
    struct user_at u;
    const fm_user *user;

    (void)arg;
    if (w->next_user >= cfg->auth.nusers || strcmp(cfg->auth.users[w->next_user].name, name) != 0)
        return fail(w, &key->start_mark, "the file changed since it was loaded (user order)");
    user = &cfg->auth.users[w->next_user++];
    if (w->ev.type != YAML_MAPPING_START_EVENT)
        return fail(w, &key->start_mark, "user \"%s\" is not a mapping", user->name);
    if (w->o->user != NULL && strcmp(w->o->user, name) != 0)
        return skip(w);
    memset(&u, 0, sizeof(u));
    u.flow = w->ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
    if (each_entry(w, user_field, &u) != 0)
        return FM_EINVAL;
    if (!u.has_hash && !u.has_keys)
        return fail(w, &key->start_mark, "user \"%s\" has no hash: or keys: list", user->name);
    return rotate_user(w, &u, user);
}

static fm_err auth_entry(struct rw *w, const yaml_event_t *key, void *arg)
{
    (void)arg;
    if ((key_is(key, "api_keys") || key_is(key, "apikeys")) &&
        w->ev.type == YAML_MAPPING_START_EVENT)
        return each_entry(w, user_entry, NULL);
    return skip(w);
}

static fm_err root_entry(struct rw *w, const yaml_event_t *key, void *arg)
{
    (void)arg;
    if (key_is(key, "auth") && w->ev.type == YAML_MAPPING_START_EVENT)
        return each_entry(w, auth_entry, NULL);
    return skip(w);
}

static int by_start(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* The original text with the edits applied, in order of position. */
static fm_err apply(struct rw *w, char **out, size_t *outlen)
{
    struct buf b = {0};
    size_t at = 0;

    qsort(w->edits, w->nedits, sizeof(*w->edits), by_start);
    for (size_t i = 0; i < w->nedits; i++) {
        const struct edit *e = &w->edits[i];

        if (e->start < at || e->end < e->start || e->end > w->len)
            return fail(w, NULL, "internal error: overlapping rewrites");
        put(&b, w->text + at, e->start - at);
        puts_(&b, e->text);
        at = e->end;
    }
    put(&b, w->text + at, w->len - at);
    if (b.oom || b.s == NULL) {
        free(b.s);
        return oom(w);
    }
    *out = b.s;
    *outlen = b.len;
    return FM_OK;
}

static fm_err walk(struct rw *w)
{
    /* The stream's and the document's starts, then the root mapping. */
    if (next(w) != 0 || next(w) != 0 || next(w) != 0)
        return FM_EINVAL;
    if (w->ev.type != YAML_MAPPING_START_EVENT)
        return fail(w, &w->ev.start_mark, "the top level is not a mapping");
    return each_entry(w, root_entry, NULL);
}

fm_err fm_keyrotate_text(const fm_config *cfg, const char *file, const char *text, size_t len,
                         const fm_keyrotate_opts *o, char **out, size_t *outlen, char *err,
                         size_t errlen)
{
    struct rw w;
    fm_err rc;

    memset(&w, 0, sizeof(w));
    w.cfg = cfg;
    w.o = o;
    w.file = file;
    w.text = text;
    w.len = len;
    w.err = err;
    w.errlen = errlen;
    *out = NULL;
    *outlen = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (o->grace < 0 || o->grace > GRACE_MAX || o->new_hash == NULL)
        return fail(&w, NULL, "grace must be 0 to 365 days");
    if (!yaml_parser_initialize(&w.parser))
        return oom(&w);
    yaml_parser_set_input_string(&w.parser, (const unsigned char *)text, len);
    rc = walk(&w);
    if (rc == 0 && o->user != NULL && w.rotated == 0)
        rc = fail(&w, NULL, "no user \"%s\" in auth.api_keys", o->user);
    if (rc == 0 && w.next_user != cfg->auth.nusers)
        rc = fail(&w, NULL, "the file changed since it was loaded (users)");
    if (rc == 0)
        rc = apply(&w, out, outlen);
    if (w.ev_live)
        yaml_event_delete(&w.ev);
    yaml_parser_delete(&w.parser);
    for (size_t i = 0; i < w.nedits; i++)
        free(w.edits[i].text);
    free(w.edits);
    return rc;
}
