/*
 * loader.c - the generic part of the YAML loader: errors, the event stream,
 * the structure check, collections and the rows engine.
 *
 * The file is read into memory and walked once with libyaml's event parser
 * (a second walk for the structure alone cost as much as the whole load).
 *
 * Every event passes the structure rules as it arrives (ld_next): YAML
 * syntax, exactly one document, no anchors, aliases or tags, and nesting of
 * at most FM_CONFIG_MAX_DEPTH collections. The first offending event stops
 * the load, so a hostile file never makes libyaml build deep state. These
 * errors are reported the same wherever they are: when the schema refuses
 * something first, the rest of the stream is still read for a structure
 * error, which then takes the schema error's place.
 *
 * The schema is a recursive descent over the events of the one document. Each
 * mapping of the schema has a table of rows; a bitmap with a bit per row
 * (LD_ROWS_MAX, checked when the table is compiled) catches duplicates, names
 * missing from the table are unknown keys. Values are type-checked as they
 * arrive and written straight into the object the table fills, which is
 * always in a state its owner can release.
 */
#include "loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (16u * 1024u * 1024u)

fm_err ld_fail(struct loader *l, const yaml_mark_t *at, const char *fmt, ...)
{
    char msg[FM_CONFIG_ERR_MAX];
    va_list ap;

    if (l->failed)
        return FM_EINVAL;
    l->failed = true;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (l->err == NULL || l->errlen == 0)
        return FM_EINVAL;
    if (at != NULL)
        (void)snprintf(l->err, l->errlen, "%s:%zu:%zu: %s", l->file, at->line + 1, at->column + 1,
                       msg);
    else
        (void)snprintf(l->err, l->errlen, "%s:0:0: %s", l->file, msg);
    return FM_EINVAL;
}

fm_err ld_oom(struct loader *l)
{
    (void)ld_fail(l, NULL, "out of memory");
    errno = ENOMEM;
    return FM_ESYS;
}

void ld_echo_value(const struct loader *l, const char *value, char out[LD_ECHO_BUF])
{
    fm_log_echo(l->from_env ? (const char *)l->ev.data.scalar.value : value, out);
}

void ld_make_ref(const struct loader *l, struct ld_ref *ref)
{
    ref->at = l->ev.start_mark;
    ref->from_env = l->from_env;
    /* Only a name from the environment is echoed as written: the others are valid names. */
    if (l->from_env)
        fm_log_echo((const char *)l->ev.data.scalar.value, ref->raw);
    else
        ref->raw[0] = '\0';
}

/*
 * The capacity is the next power of two >= n (1 for n = 0), so it need not be
 * stored; most arrays of a user (keys, roles) hold one element, and a larger
 * first step would multiply the memory of a config with many users.
 */
void *ld_grow(void *arr, size_t n, size_t size)
{
    size_t cap;

    if (arr != NULL && (n == 0 || (n & (n - 1)) != 0))
        return arr;
    if (n > SIZE_MAX / 2)
        return NULL;
    cap = n == 0 ? 1 : n * 2;
    if (cap > SIZE_MAX / size)
        return NULL;
    return realloc(arr, cap * size);
}

fm_err ld_push_mark(struct loader *l, yaml_mark_t **arr, size_t *n, const yaml_mark_t *m)
{
    yaml_mark_t *p = ld_grow(*arr, *n, sizeof(*p));

    if (p == NULL)
        return ld_oom(l);
    *arr = p;
    p[(*n)++] = *m;
    return FM_OK;
}

__attribute__((format(printf, 2, 3))) static int add_warning(struct loader *l, const char *fmt, ...)
{
    fm_config *cfg = l->cfg;
    char msg[FM_CONFIG_ERR_MAX];
    char **warnings = ld_grow(cfg->warnings, cfg->nwarnings, sizeof(*warnings));
    va_list ap;

    if (warnings == NULL)
        return ld_oom(l);
    cfg->warnings = warnings;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    warnings[cfg->nwarnings] = strdup(msg);
    if (warnings[cfg->nwarnings] == NULL)
        return ld_oom(l);
    cfg->nwarnings++;
    return 0;
}

fm_err ld_set_string(struct loader *l, char **slot, const char *value)
{
    char *copy = strdup(value);

    if (copy == NULL)
        return ld_oom(l);
    free(*slot);
    *slot = copy;
    return FM_OK;
}

/*
 * a, then sep (unless it is '\0') and b into out, truncated to outlen - 1
 * bytes as snprintf would; without snprintf's cost, since the loader names
 * every key and list item of the file so.
 */
static void concat(char *out, size_t outlen, const char *a, char sep, const char *b)
{
    size_t alen = strlen(a), blen = strlen(b), used;

    if (outlen == 0)
        return;
    used = alen < outlen - 1 ? alen : outlen - 1;
    memcpy(out, a, used);
    if (sep != '\0' && used < outlen - 1)
        out[used++] = sep;
    if (blen > outlen - 1 - used)
        blen = outlen - 1 - used;
    memcpy(out + used, b, blen);
    out[used + blen] = '\0';
}

void ld_join(char *out, size_t outlen, const char *where, const char *key)
{
    concat(out, outlen, where, where[0] != '\0' ? '.' : '\0', key);
}

bool ld_valid_name(const char *s)
{
    size_t len;

    /* Not strspn: this runs for every user and role name, and the loop is several times faster. */
    for (len = 0; s[len] != '\0' && len < FM_NAME_MAX; len++) {
        char c = s[len];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    if (len == 0 || len >= FM_NAME_MAX)
        return false;
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* ---- events ---------------------------------------------------------------- */

/*
 * Where byte offset of the text is, as libyaml counts marks (line and column
 * from 0, a column per character): libyaml gives its reader's errors (bytes
 * that are not UTF-8, control characters such as NUL) as a byte offset only.
 * A UTF-8 byte order mark at the start is no character; in a UTF-16 file
 * (libyaml's other encoding) the column counts bytes.
 */
static yaml_mark_t mark_at(const struct loader *l, size_t offset)
{
    yaml_mark_t m = {.index = offset};
    size_t i = l->len >= 3 && memcmp(l->text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;

    for (; i < offset && i < l->len; i++) {
        if (l->text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if ((l->text[i] & 0xc0) != 0x80) {
            m.column++; /* not a UTF-8 continuation byte: a character starts here */
        }
    }
    return m;
}

static fm_err syntax_error(struct loader *l)
{
    const yaml_parser_t *p = &l->parser;
    const char *problem = p->problem != NULL ? p->problem : "invalid YAML";

    l->structure_failed = true;
    if (p->error == YAML_MEMORY_ERROR)
        return ld_oom(l);
    if (p->error == YAML_READER_ERROR) {
        yaml_mark_t at = mark_at(l, p->problem_offset);

        return ld_fail(l, &at, "YAML syntax error: %s at byte %zu", problem, p->problem_offset);
    }
    if (p->context != NULL)
        return ld_fail(l, &p->problem_mark, "YAML syntax error: %s (%s at line %zu)", problem,
                       p->context, p->context_mark.line + 1);
    return ld_fail(l, &p->problem_mark, "YAML syntax error: %s", problem);
}

static fm_err structure_error(struct loader *l, const char *msg)
{
    l->structure_failed = true;
    return ld_fail(l, &l->ev.start_mark, "%s", msg);
}

static fm_err check_node(struct loader *l, const yaml_char_t *anchor, const yaml_char_t *tag)
{
    if (anchor != NULL)
        return structure_error(l, "YAML anchors and aliases are not allowed");
    if (tag != NULL)
        return structure_error(l, "YAML tags are not allowed");
    return FM_OK;
}

static fm_err enter(struct loader *l)
{
    char msg[64];

    if (++l->depth <= FM_CONFIG_MAX_DEPTH)
        return FM_OK;
    (void)snprintf(msg, sizeof(msg), "nesting deeper than %d levels", FM_CONFIG_MAX_DEPTH);
    return structure_error(l, msg);
}

/* The structure rules, on each event as it arrives (see the top of this file). */
static fm_err check_event(struct loader *l)
{
    const yaml_event_t *e = &l->ev;

    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        return ++l->docs > 1 ? structure_error(l, "more than one YAML document") : 0;
    case YAML_ALIAS_EVENT:
        return structure_error(l, "YAML anchors and aliases are not allowed");
    case YAML_SCALAR_EVENT:
        return check_node(l, e->data.scalar.anchor, e->data.scalar.tag);
    case YAML_SEQUENCE_START_EVENT:
        if (check_node(l, e->data.sequence_start.anchor, e->data.sequence_start.tag) != 0)
            return FM_EINVAL;
        return enter(l);
    case YAML_MAPPING_START_EVENT:
        if (check_node(l, e->data.mapping_start.anchor, e->data.mapping_start.tag) != 0)
            return FM_EINVAL;
        return enter(l);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        l->depth--;
        return FM_OK;
    default:
        return FM_OK;
    }
}

fm_err ld_next(struct loader *l)
{
    if (l->ev_live) {
        yaml_event_delete(&l->ev);
        l->ev_live = false;
    }
    if (!yaml_parser_parse(&l->parser, &l->ev))
        return syntax_error(l);
    l->ev_live = true;
    return check_event(l);
}

void ld_stop_parser(struct loader *l)
{
    if (l->ev_live) {
        yaml_event_delete(&l->ev);
        l->ev_live = false;
    }
    if (l->parser_live) {
        yaml_parser_delete(&l->parser);
        l->parser_live = false;
    }
}

/* Reads the rest of the stream through ld_next, so that its structure is checked too. */
static fm_err read_to_end(struct loader *l)
{
    while (l->ev.type != YAML_STREAM_END_EVENT) {
        if (ld_next(l) != 0)
            return FM_EINVAL;
    }
    return FM_OK;
}

/*
 * The schema reports its first error as soon as it sees it; a structure error
 * further on must still win, as if the whole file had been checked first, so
 * the rest of the stream is read for one. The schema's message is kept when
 * there is none.
 */
static fm_err structure_first(struct loader *l, fm_err rc)
{
    char *schema_err;

    if (rc == FM_ESYS || l->structure_failed || l->err == NULL || l->errlen == 0)
        return rc;
    /* Out of memory here, the schema's error stands. */
    schema_err = strdup(l->err);
    if (schema_err == NULL)
        return rc;
    l->failed = false;
    if (read_to_end(l) == 0) {
        l->failed = true;
        (void)snprintf(l->err, l->errlen, "%s", schema_err);
    }
    free(schema_err);
    return FM_EINVAL;
}

fm_err ld_read_document(struct loader *l, const unsigned char *text, size_t len,
                        const struct ld_table *t, void *obj)
{
    fm_err rc;

    ld_stop_parser(l);
    if (!yaml_parser_initialize(&l->parser))
        return ld_oom(l);
    l->parser_live = true;
    yaml_parser_set_input_string(&l->parser, text, len);
    l->text = text;
    l->len = len;
    l->depth = 0;
    l->docs = 0;
    /* The stream's start, then the first document's start and its root node. */
    if (ld_next(l) != 0 || ld_next(l) != 0)
        return FM_EINVAL;
    if (l->ev.type == YAML_STREAM_END_EVENT)
        return ld_fail(l, NULL, "configuration file is empty");
    if (ld_next(l) != 0)
        return FM_EINVAL;
    rc = ld_walk(l, "", t, obj);
    if (rc != 0)
        return structure_first(l, rc);
    return read_to_end(l);
}

/* ---- collections ------------------------------------------------------------ */

bool ld_is_null(const yaml_event_t *e)
{
    const char *v = (const char *)e->data.scalar.value;

    if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Completes "... %s%s" with "in <where>", or "at top level" for the root mapping. */
static const char *in(const char *where)
{
    return where[0] != '\0' ? "in " : "at top level";
}

fm_err ld_each_entry(struct loader *l, const char *where, const char *what, ld_entry_fn fn,
                     void *obj)
{
    char key[LD_KEY_TEXT_MAX];

    if (l->ev.type != YAML_MAPPING_START_EVENT)
        return ld_fail(l, &l->ev.start_mark, "%s must be %s", where[0] ? where : "the top level",
                       what);
    for (;;) {
        const yaml_event_t *e = &l->ev;

        if (ld_next(l) != 0)
            return FM_EINVAL;
        if (e->type == YAML_MAPPING_END_EVENT)
            return FM_OK;
        if (e->type != YAML_SCALAR_EVENT || ld_is_null(e) ||
            strlen((const char *)e->data.scalar.value) != e->data.scalar.length)
            return ld_fail(l, &e->start_mark, "keys %s%s must be strings", in(where), where);
        if (e->data.scalar.length >= sizeof(key))
            return ld_fail(l, &e->start_mark, "key too long %s%s", in(where), where);
        memcpy(key, e->data.scalar.value, e->data.scalar.length + 1);
        l->key_at = e->start_mark;
        if (ld_next(l) != 0 || fn(l, where, key, obj) != 0)
            return FM_EINVAL;
    }
}

fm_err ld_list_start(struct loader *l, const char *where, const char *what)
{
    if (l->ev.type != YAML_SEQUENCE_START_EVENT)
        return ld_fail(l, &l->ev.start_mark, "%s must be %s", where, what);
    return FM_OK;
}

/* "<where>[i]" into item. */
static void list_item_name(char *item, size_t itemlen, const char *where, size_t i)
{
    char index[24], *p = index + sizeof(index);

    *--p = '\0';
    *--p = ']';
    do
        *--p = (char)('0' + i % 10);
    while ((i /= 10) != 0);
    *--p = '[';
    concat(item, itemlen, where, '\0', p);
}

fm_err ld_list_next(struct loader *l, const char *where, size_t i, char *item, size_t itemlen,
                    bool *end)
{
    *end = false;
    if (ld_next(l) != 0)
        return FM_EINVAL;
    if (l->ev.type == YAML_SEQUENCE_END_EVENT) {
        *end = true;
        return FM_OK;
    }
    list_item_name(item, itemlen, where, i);
    return FM_OK;
}

/* ---- rows ------------------------------------------------------------------- */

struct walk {
    const struct ld_table *t;
    unsigned char seen[(LD_ROWS_MAX + CHAR_BIT - 1) / CHAR_BIT]; /* bit i: rows[i] given */
    void *obj;
};

static fm_err row_entry(struct loader *l, const char *where, const char *key, void *arg)
{
    struct walk *w = arg;
    char sub[LD_WHERE_MAX], shown[LD_ECHO_BUF];
    const struct ld_row *row;
    unsigned char bit;
    size_t i;

    for (i = 0; i < w->t->n && strcmp(w->t->rows[i].name, key) != 0; i++)
        ;
    bit = (unsigned char)(1u << (i % CHAR_BIT));
    if (i == w->t->n || (w->seen[i / CHAR_BIT] & bit)) {
        fm_log_echo(key, shown);
        return ld_fail(l, &l->key_at, "%s key \"%s\" %s%s", i == w->t->n ? "unknown" : "duplicate",
                       shown, in(where), where);
    }
    w->seen[i / CHAR_BIT] |= bit;
    ld_join(sub, sizeof(sub), where, key);
    row = &w->t->rows[i];
    if (row->kind == LD_SECTION) {
        yaml_mark_t at = l->ev.start_mark;

        if (ld_walk(l, sub, row->sub, w->obj) != 0)
            return FM_EINVAL;
        return row->after != NULL ? row->after(l, sub, &at, w->obj) : 0;
    }
    if (row->kind == LD_HANDLER)
        return row->parse(l, sub, w->obj);
    return ld_row_value(l, sub, row, w->obj);
}

fm_err ld_walk(struct loader *l, const char *where, const struct ld_table *t, void *obj)
{
    struct walk w;

    /* LD_TABLE refuses this at compile time; a table assembled otherwise is refused here. */
    if (t->n > LD_ROWS_MAX)
        return ld_fail(l, &l->ev.start_mark, "%s: more than %d settings in one table",
                       where[0] ? where : "top level", LD_ROWS_MAX);
    memset(&w, 0, sizeof(w));
    w.t = t;
    w.obj = obj;
    return ld_each_entry(l, where, "a mapping", row_entry, &w);
}

/* ---- file --------------------------------------------------------------------- */

static fm_err find_basedir(struct loader *l)
{
    char *slash;

    l->basedir = realpath(l->file, NULL);
    if (l->basedir == NULL)
        return ld_fail(l, NULL, "cannot resolve path: %s", strerror(errno));
    slash = strrchr(l->basedir, '/');
    if (slash != NULL)
        slash[slash == l->basedir ? 1 : 0] = '\0';
    return FM_OK;
}

fm_err ld_read_file(struct loader *l, unsigned char **text, size_t *len)
{
    struct stat st;
    size_t got = 0;
    /* O_NONBLOCK: opening a FIFO at the path must not hang; it is refused below. */
    int fd = open(l->file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    fm_err rc = FM_EINVAL;

    if (fd < 0)
        return ld_fail(l, NULL, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) != 0) {
        (void)ld_fail(l, NULL, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        (void)ld_fail(l, NULL, "not a regular file");
        goto out;
    }
    if ((uintmax_t)st.st_size > CONFIG_FILE_MAX) {
        (void)ld_fail(l, NULL, "larger than %u bytes", CONFIG_FILE_MAX);
        goto out;
    }
    if ((st.st_mode & S_IROTH) != 0 &&
        add_warning(l,
                    "%s: warning: configuration file is readable by other users (mode %04o); it "
                    "names key hashes and roles",
                    l->file, (unsigned)(st.st_mode & 07777)) != 0)
        goto out;
    *text = malloc((size_t)st.st_size + 1);
    if (*text == NULL) {
        (void)ld_oom(l);
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, *text + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            (void)ld_fail(l, NULL, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *len = got;
    rc = find_basedir(l);
out:
    (void)close(fd);
    return rc;
}

fm_err ld_load_text(const char *file, const char *text, size_t len, const struct ld_table *t,
                    void *obj, char *err, size_t errlen)
{
    struct loader l;
    fm_err rc = FM_EINVAL;

    memset(&l, 0, sizeof(l));
    l.file = file;
    l.err = err;
    l.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    l.basedir = strdup("/");
    if (l.basedir == NULL)
        (void)ld_oom(&l);
    else
        rc = ld_read_document(&l, (const unsigned char *)text, len, t, obj);
    ld_stop_parser(&l);
    ld_forget_value(&l);
    free(l.basedir);
    return rc;
}
