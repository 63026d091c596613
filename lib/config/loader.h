/*
 * loader.h - the generic YAML loader of the config layer (not a public header:
 * only lib/config/ and its unit test include it).
 *
 * A section of the file is a table of rows (struct ld_row), as nginx's
 * ngx_command_t arrays and Redis's createIntConfig() lines are: each row names
 * a key, its kind, the offsetof of the field it fills in the object the table
 * reads (the fm_config for the root sections, a user, key or role inside
 * auth), the bounds and the default next to them, and an optional check hook.
 * The rows engine (ld_walk) matches each key of a mapping to its row, refuses
 * unknown and duplicate keys, and parses, checks and stores the value; only
 * settings with real logic (role inheritance, keys, permissions, secrets) have
 * a hand-written handler (LD_HANDLER). ld_defaults applies the defaults of a
 * table, ld_release frees what its string and CIDR rows own.
 *
 * Adding a setting is one row in its section's file; adding a section is one
 * file with its table (declared in sections.h) and one row in the root table
 * (config.c).
 *
 * Every error is "file:line:col: message", recorded once (the first error
 * wins, later calls are no-ops) in the loader's err buffer; functions that
 * can fail return FM_OK, or FM_EINVAL (FM_ESYS when out of memory) after
 * recording it (lib/base/err.h).
 */
#ifndef FM_CONFIG_LOADER_H
#define FM_CONFIG_LOADER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>
#include <yaml.h>

#include "config.h"

#define LD_KEY_TEXT_MAX 256 /* longest mapping key accepted; every valid one is far shorter */
#define LD_WHERE_MAX 384    /* dotted location of a value, for messages */
#define LD_ECHO_BUF FM_LOG_ECHO_BUF /* an offending name echoed back: fm_log_echo */
#define LD_ENV_NAME_MAX 128
#define LD_ROWS_MAX 64     /* rows in one table: sizes the duplicate-key bitmap */
#define LD_BUILTIN_ROLES 4 /* admin, researcher, analyst, worker: see roles.c */

/* A name that refers to a role, as read: where it was and what may be echoed of it. */
struct ld_ref {
    yaml_mark_t at;
    bool from_env;         /* the name came from ${VAR}: echo raw, not the name */
    char raw[LD_ECHO_BUF]; /* the scalar as written, echoed */
};

/* What the file says about a role, kept beside cfg->auth.roles until roles are resolved. */
struct ld_role_src {
    fm_perms grants, denies;
    char (*inherits)[FM_NAME_MAX]; /* auth.roles.<r>.inherits, ninherits of them */
    struct ld_ref *inherit_refs;
    size_t ninherits;
    int state;       /* search state, see roles.c */
    unsigned height; /* longest inherits chain below the role, once resolved */
};

/* ---- names.c: name sets ------------------------------------------------------- */

struct ld_name_slot {
    uint64_t hash;  /* SipHash of the name under the set's key */
    uint32_t gen;   /* the slot is in the set while this is the set's gen (0: never used) */
    uint32_t index; /* the entry's index in the caller's array */
};

/*
 * A set of names, each mapped to the index of its entry in an array the
 * caller owns (names.c explains the table). All zero is the empty set.
 */
struct ld_names {
    struct ld_name_slot *slots;
    size_t size; /* power of two, or 0 */
    size_t n;    /* live slots */
    uint32_t gen;
    unsigned char key[crypto_shorthash_KEYBYTES]; /* drawn with the first table */
};

struct loader;
/*
 * ld_names_find - the index that s maps name to, in *index: true when name is
 * in s. base is the caller's array of entries, stride bytes apart, each
 * starting with its NUL-terminated name (name i is at base + i * stride).
 */
bool ld_names_find(const struct ld_names *s, const char *name, const char *base, size_t stride,
                   size_t *index);
/* ld_names_add - maps name, which must not be in s, to index (< UINT32_MAX). */
fm_err ld_names_add(struct loader *l, struct ld_names *s, const char *name, size_t index);
/* ld_names_clear - empties s in O(1), keeping its table for the next names. */
void ld_names_clear(struct ld_names *s);
/* ld_names_free - frees the table of s and leaves s the empty set. */
void ld_names_free(struct ld_names *s);

/* ---- the loader --------------------------------------------------------------- */

struct loader {
    const char *file;
    char *err;
    size_t errlen;
    bool failed;
    yaml_parser_t parser;
    bool parser_live;
    const unsigned char *text; /* what the parser reads, len bytes (ld_read_document) */
    size_t len;
    yaml_event_t ev;
    bool ev_live;
    fm_config *cfg;
    char *basedir;         /* absolute directory of the file, for relative paths */
    yaml_mark_t key_at;    /* mark of the key whose value is being read */
    char *value;           /* the current string scalar after expansion, or NULL */
    bool from_env;         /* the current string scalar took text from the environment */
    int depth, docs;       /* open collections and documents seen, for the structure rules */
    bool structure_failed; /* the error recorded is a YAML syntax or structure error */

    /* State of the auth and redis sections, kept for the checks after the document. */
    struct ld_role_src *role_src; /* parallel to cfg->auth.roles */
    size_t nrole_src;
    bool password_seen;                       /* redis.password_env or redis.password_file */
    bool sentinel_password_seen;              /* redis.sentinel_password_env or _file */
    bool builtin_redefined[LD_BUILTIN_ROLES]; /* built-in role i already given in auth.roles */
    bool api_keys_seen;                       /* auth.api_keys or auth.apikeys */
    yaml_mark_t *key_marks;                   /* one per key, users and keys in snapshot order */
    size_t nkey_marks;
    struct ld_ref *role_refs; /* one per role reference, users in snapshot order */
    size_t nrole_refs;
    yaml_mark_t *user_key_marks; /* keys of the user being read, in user->keys order */
    size_t nuser_key_marks;
    yaml_mark_t log_path_at[2]; /* logging.file, logging.api_file keys, if log_path_seen */
    bool log_path_seen[2];
    struct ld_names user_names; /* cfg->auth.users by name */
    struct ld_names role_names; /* cfg->auth.roles by name */
    struct ld_names list_names; /* the names of the role list being read */
};

/* ---- rows ------------------------------------------------------------------ */

enum ld_kind {
    LD_INT,      /* plain decimal in [min, max] (0 <= min, max fits the field), by its width */
    LD_BOOL,     /* plain true or false, into a bool */
    LD_ENUM,     /* one of names[], its index stored by the field's width */
    LD_MODE,     /* octal file mode "0660" (plain or quoted), nothing for other users */
    LD_STRING,   /* string (after ${VAR}) into a char *, checked by the hook */
    LD_PATH,     /* path, relative ones resolved against the file's directory */
    LD_ENDPOINT, /* "unix:<path>" or "host:port" / "[v6]:port", into a char * */
    LD_CIDRS,    /* non-empty list of CIDR blocks, into an fm_ipacl */
    LD_SECTION,  /* mapping read with the table sub, into the same object */
    LD_HANDLER   /* hand-written: parse reads the value */
};

struct ld_row;
struct ld_table {
    const struct ld_row *rows;
    size_t n; /* at most LD_ROWS_MAX; LD_TABLE checks it at compile time */
};

/* Reads the value of the current key (event l->ev) into obj; where is its dotted name. */
typedef fm_err (*ld_value_fn)(struct loader *l, const char *where, void *obj);
/* Refuses a stored value (field points into obj) with ld_fail, or returns 0. */
typedef fm_err (*ld_check_fn)(struct loader *l, const char *where, const void *field);
/* Runs after a section was read (at: where the section's value starts), for cross-checks. */
typedef fm_err (*ld_after_fn)(struct loader *l, const char *where, const yaml_mark_t *at,
                              const void *obj);

struct ld_row {
    const char *name;
    enum ld_kind kind;
    size_t offset, size;      /* the field in obj: offsetof and sizeof */
    long long min, max, def;  /* LD_INT bounds; def of LD_INT, LD_BOOL, LD_ENUM, LD_MODE */
    const char *sdef;         /* default of LD_STRING, LD_PATH, LD_ENDPOINT; NULL = unset */
    bool nullable;            /* string kinds: YAML null unsets the setting */
    const char *what;         /* LD_STRING, LD_ENUM: "<where> must be <what>" */
    const char *const *names; /* LD_ENUM: the accepted words, nnames of them */
    size_t nnames;
    ld_check_fn check;          /* optional, after a (non-null) value is stored */
    ld_value_fn parse;          /* LD_HANDLER */
    const struct ld_table *sub; /* LD_SECTION */
    ld_after_fn after;          /* LD_SECTION, optional */
};

#define LD_FIELD(type, member) .offset = offsetof(type, member), .size = sizeof(((type *)0)->member)

#define LD_INT_ROW(key, type, member, lo, hi, dflt)                                                \
    {                                                                                              \
        .name = (key), .kind = LD_INT, LD_FIELD(type, member), .min = (lo), .max = (hi),           \
        .def = (dflt)                                                                              \
    }
#define LD_BOOL_ROW(key, type, member, dflt, hook)                                                 \
    {                                                                                              \
        .name = (key), .kind = LD_BOOL, LD_FIELD(type, member), .def = (dflt), .check = (hook)     \
    }
#define LD_ENUM_ROW(key, type, member, words, text, dflt)                                          \
    {                                                                                              \
        .name = (key), .kind = LD_ENUM, LD_FIELD(type, member), .names = (words),                  \
        .nnames = sizeof(words) / sizeof((words)[0]), .what = (text), .def = (dflt)                \
    }
#define LD_MODE_ROW(key, type, member, dflt)                                                       \
    {                                                                                              \
        .name = (key), .kind = LD_MODE, LD_FIELD(type, member), .def = (dflt)                      \
    }
/* kind is LD_STRING, LD_PATH or LD_ENDPOINT; null: whether YAML null unsets it. */
#define LD_STR_ROW(key, k, type, member, text, dflt, null, hook)                                   \
    {                                                                                              \
        .name = (key), .kind = (k), LD_FIELD(type, member), .what = (text), .sdef = (dflt),        \
        .nullable = (null), .check = (hook)                                                        \
    }
#define LD_CIDRS_ROW(key, type, member)                                                            \
    {                                                                                              \
        .name = (key), .kind = LD_CIDRS, LD_FIELD(type, member)                                    \
    }
#define LD_SECTION_ROW(key, table, hook)                                                           \
    {                                                                                              \
        .name = (key), .kind = LD_SECTION, .sub = &(table), .after = (hook)                        \
    }
#define LD_HANDLER_ROW(key, fn)                                                                    \
    {                                                                                              \
        .name = (key), .kind = LD_HANDLER, .parse = (fn)                                           \
    }

/*
 * LD_TABLE(storage, name, rows...) - defines `storage const struct ld_table
 * name` over the rows (storage: static, or empty for a section table that the
 * root table names). A table with more rows than the duplicate-key bitmap
 * holds does not compile.
 */
#define LD_TABLE(storage, name, ...)                                                               \
    static const struct ld_row name##_rows[] = {__VA_ARGS__};                                      \
    _Static_assert(sizeof(name##_rows) / sizeof(name##_rows[0]) <= LD_ROWS_MAX,                    \
                   "table " #name " has more rows than LD_ROWS_MAX");                              \
    storage const struct ld_table name = {name##_rows, sizeof(name##_rows) / sizeof(name##_rows[0])}

/*
 * ld_walk - the current event must start a mapping; reads it with table t
 * into obj: unknown key, duplicate key, then the row's parse. A table larger
 * than LD_ROWS_MAX (only possible when built at run time) is refused.
 */
fm_err ld_walk(struct loader *l, const char *where, const struct ld_table *t, void *obj);

/* ld_defaults - every default of t (and of its sections) into obj. 0, or -1 out of memory. */
fm_err ld_defaults(struct loader *l, const struct ld_table *t, void *obj);

/* ld_release - frees what the string and CIDR rows of t (and its sections) own in obj. */
void ld_release(const struct ld_table *t, void *obj);

/*
 * ld_load_text - the whole loader over text (len bytes) named file in messages:
 * ld_read_document with t into obj. Relative paths resolve against "/". For tests of the rows
 * engine; returns 0, or -1 with "file:line:col: message" in err.
 */
fm_err ld_load_text(const char *file, const char *text, size_t len, const struct ld_table *t,
                    void *obj, char *err, size_t errlen);

/* ---- loader.c: errors, events, collections, file ---------------------------- */

__attribute__((format(printf, 3, 4))) fm_err ld_fail(struct loader *l, const yaml_mark_t *at,
                                                     const char *fmt, ...);
fm_err ld_oom(struct loader *l);
/* What may be echoed of the current scalar: never text that the environment supplied. */
void ld_echo_value(const struct loader *l, const char *value, char out[LD_ECHO_BUF]);
void ld_make_ref(const struct loader *l, struct ld_ref *ref);
/* Room for element n of an array whose capacity is implied by n; the array or NULL. */
void *ld_grow(void *arr, size_t n, size_t size);
fm_err ld_push_mark(struct loader *l, yaml_mark_t **arr, size_t *n, const yaml_mark_t *m);
fm_err ld_set_string(struct loader *l, char **slot, const char *value);
/* where.key, or key at the top level. */
void ld_join(char *out, size_t outlen, const char *where, const char *key);
/* "[A-Za-z0-9_.-]{1,63}", and never "." or "..", since user names become directories. */
bool ld_valid_name(const char *s);

/*
 * ld_account - name, the value of the setting where (server.user,
 * logging.audit_user), as an account of this host other than root: its uid
 * and primary group in *uid and *gid. FM_OK, or ld_fail's error (a name
 * that is not [A-Za-z0-9_.-]{1,63}, no such user, uid 0) at the scalar.
 */
fm_err ld_account(struct loader *l, const char *where, const char *name, uid_t *uid, gid_t *gid);
fm_err ld_next(struct loader *l);
/* A plain scalar that YAML reads as null: empty, ~, null, Null, NULL. */
bool ld_is_null(const yaml_event_t *e);
void ld_stop_parser(struct loader *l);
/* Reads the file at l->file into *text (*len bytes, caller frees) and finds l->basedir. */
fm_err ld_read_file(struct loader *l, unsigned char **text, size_t *len);
/*
 * ld_read_document - reads the one document of text (len bytes) with table t
 * into obj, checking the structure of every event (loader.c) and reading the
 * stream to its end. A structure error anywhere in the file wins over a
 * schema error before it.
 */
fm_err ld_read_document(struct loader *l, const unsigned char *text, size_t len,
                        const struct ld_table *t, void *obj);

typedef fm_err (*ld_entry_fn)(struct loader *l, const char *where, const char *key, void *obj);
/* The current event must start a mapping ("<where> must be <what>"); fn gets each key. */
fm_err ld_each_entry(struct loader *l, const char *where, const char *what, ld_entry_fn fn,
                     void *obj);
/* The current event must start a sequence ("<where> must be <what>"). */
fm_err ld_list_start(struct loader *l, const char *where, const char *what);
/* Reads the next list item, naming it "<where>[i]" in item; 1 at the end of the list. */
fm_err ld_list_next(struct loader *l, const char *where, size_t i, char *item, size_t itemlen,
                    bool *end);

/* ---- scalars.c: typed values ------------------------------------------------ */

/*
 * The current event as a non-null scalar, or NULL after "<where> must be <what>".
 * plain (integers, booleans): unquoted and not expanded; strings are expanded.
 */
const char *ld_scalar(struct loader *l, const char *where, const char *what, bool plain);
/* Sets *isnull for YAML null (a setting that may be switched off), else as ld_scalar. */
const char *ld_nullable(struct loader *l, const char *where, const char *what, bool *isnull);
fm_err ld_int(struct loader *l, const char *where, long long min, long long max, long long *out);
fm_err ld_bool(struct loader *l, const char *where, bool *out);
/* text absolute as given, or relative to the file's directory, after prefix, into *out. */
fm_err ld_resolve_path(struct loader *l, const char *where, const char *text, const char *prefix,
                       char **out);
fm_err ld_cidrs(struct loader *l, const char *where, fm_ipacl *acl);
/* The current value as "host:port" or "[v6]:port" (TCP only), into *out. */
fm_err ld_host_port(struct loader *l, const char *where, char **out);
/* Parses the current value for a row of a scalar or list kind into its field in obj. */
fm_err ld_row_value(struct loader *l, const char *where, const struct ld_row *row, void *obj);
/* An expanded value may hold a secret: wipes and frees l->value. */
void ld_forget_value(struct loader *l);

#endif
