/*
 * fuzz.h - what the libFuzzer targets in tests/fuzz/ share: reporting a
 * broken promise (abort, which libFuzzer turns into a finding with the input
 * saved), the input as a C string, and the checks on error messages.
 */
#ifndef FM_FUZZ_H
#define FM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reports what broke and aborts; libFuzzer prints the input and saves it. */
__attribute__((noreturn, format(printf, 1, 2))) static inline void fuzz_fail(const char *fmt, ...);

#include <stdarg.h>
static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
    (void)fputc('\n', stderr);
    abort();
}

/* The input as a NUL-terminated copy (caller frees); it ends at the first NUL, as C text does. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* An error message for a client or an operator: non-empty, one line, NUL-terminated in cap. */
static inline void fuzz_check_message(const char *who, const char *msg, size_t cap)
{
    size_t n = strnlen(msg, cap);

    if (n == cap)
        fuzz_fail("%s: error message not NUL-terminated", who);
    if (n == 0)
        fuzz_fail("%s: error without a message", who);
    if (strchr(msg, '\n') != NULL || strchr(msg, '\r') != NULL)
        fuzz_fail("%s: error message of more than one line: %s", who, msg);
}

#endif
