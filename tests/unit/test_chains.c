/*
 * test_chains.c - the master's audit chain state per audit file: a reload
 * onto another file continues that file's own chain (not the previous
 * file's), a generation writing a file that live workers already write
 * shares their state, and state no live worker can hold is released.
 */
#include <check.h>

#include "chains.h"
#include "helpers.h"

static char dir[TH_PATH_MAX], path_a[TH_PATH_MAX], path_b[TH_PATH_MAX];

static void setup(void)
{
    th_mkdtemp(dir, "chains");
    th_path(path_a, dir, "a.log");
    th_path(path_b, dir, "b.log");
}

static void teardown(void)
{
    th_rmtree(dir);
}

/* Appends n records to path through the chain state shared. */
static void append(const char *path, fm_audit_shared *shared, int n)
{
    fm_audit_record rec = {.trace_id = "t",
                           .action = "GET /x",
                           .resource = "/x",
                           .source_ip = "127.0.0.1",
                           .status = 200};
    fm_audit *a = fm_audit_open(path, shared);

    ck_assert_ptr_nonnull(a);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(fm_audit_write(a, &rec), 0);
    fm_audit_close(a);
}

/* The whole file is one chain from seq 1 (as audit-verify checks it); returns its last seq. */
static long long verify(const char *path)
{
    char *text = th_read_file(path), *line, *save = NULL, prev[65], err[256];
    long long seq = 0;

    ck_assert_ptr_nonnull(text);
    memset(prev, '0', 64);
    prev[64] = '\0';
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        ck_assert_msg(fm_audit_verify_line(line, strlen(line), prev, &seq, err, sizeof(err)) == 0,
                      "%s, after seq %lld: %s", path, seq, err);
    free(text);
    return seq;
}

START_TEST(reload_onto_another_file_continues_that_files_chain)
{
    fm_chains chains = {0};
    fm_audit_shared *own_b, *ra, *rb;

    /* b.log already holds a chain of its own, written before this master started. */
    own_b = fm_audit_shared_create(path_b);
    ck_assert_ptr_nonnull(own_b);
    append(path_b, own_b, 2);
    fm_audit_shared_free(own_b);

    ra = fm_chains_use(&chains, path_a, 0);
    ck_assert_ptr_nonnull(ra);
    append(path_a, ra, 5);
    rb = fm_chains_use(&chains, path_b, 1); /* reload: logging.file is now b.log */
    ck_assert_ptr_nonnull(rb);
    ck_assert_ptr_ne(ra, rb);
    append(path_b, rb, 3);
    ck_assert_int_eq(verify(path_b), 5);
    ck_assert_int_eq(verify(path_a), 5);
    fm_chains_clear(&chains);
}
END_TEST

START_TEST(shared_while_in_use_released_after)
{
    fm_chains chains = {0};
    fm_audit_shared *ra, *rb;

    ra = fm_chains_use(&chains, path_a, 0);
    ck_assert_ptr_nonnull(ra);
    append(path_a, ra, 2);
    rb = fm_chains_use(&chains, path_b, 1);
    ck_assert_ptr_nonnull(rb);
    append(path_b, rb, 2);
    /* Back to a.log while generation 0 still writes it: one state for one file. */
    ck_assert_ptr_eq(fm_chains_use(&chains, path_a, 2), ra);
    ck_assert_uint_eq(fm_chains_count(&chains), 2);
    fm_chains_release(&chains, 0); /* generation 0 is still alive */
    ck_assert_uint_eq(fm_chains_count(&chains), 2);
    fm_chains_release(&chains, 2); /* only generation 2 is left */
    ck_assert_uint_eq(fm_chains_count(&chains), 1);
    ck_assert_ptr_eq(fm_chains_use(&chains, path_a, 2), ra);
    append(path_a, ra, 1);
    /* b.log again, after its state was released: read back from the file. */
    rb = fm_chains_use(&chains, path_b, 3);
    ck_assert_ptr_nonnull(rb);
    append(path_b, rb, 2);
    ck_assert_int_eq(verify(path_a), 3);
    ck_assert_int_eq(verify(path_b), 4);
    fm_chains_release(&chains, 3);
    ck_assert_uint_eq(fm_chains_count(&chains), 1);
    fm_chains_clear(&chains);
}
END_TEST

START_TEST(a_file_that_ends_in_no_record_is_refused)
{
    fm_chains chains = {0};

    th_write_file(path_b, "not an audit record\n");
    errno = 0;
    ck_assert_ptr_null(fm_chains_use(&chains, path_b, 1));
    ck_assert_int_eq(errno, EBADMSG);
    ck_assert_uint_eq(fm_chains_count(&chains), 0);
    fm_chains_clear(&chains);
}
END_TEST

static Suite *chains_suite(void)
{
    Suite *s = suite_create("chains");

    TH_TCASE(s, "chains", setup, teardown, reload_onto_another_file_continues_that_files_chain,
             shared_while_in_use_released_after, a_file_that_ends_in_no_record_is_refused);
    return s;
}

TH_MAIN(chains_suite)
