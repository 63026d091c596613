/*
 * beneath.c - client-chosen names and the kernel-checked lookup (see beneath.h).
 *
 * The rule: a name is checked as text first (so that nothing the kernel
 * would read specially, "." or "..", and nothing a log reader or a terminal
 * would misread, gets that far), then every lookup goes through one openat2
 * call whose RESOLVE_* flags make the kernel itself refuse to follow a link
 * or leave the starting directory. The text check alone could not stop a
 * symbolic link planted with shell access; the kernel check alone would let
 * names through that break the listing's JSON or the audit line.
 */
#include "beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jsonstr.h"

#define EAGAIN_RETRIES 4

bool fm_beneath_name_valid(const char *s, size_t n)
{
    static const char reserved[] = FM_BENEATH_RESERVED;

    if (n == 0 || n > FM_BENEATH_NAME_MAX)
        return false;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    if (n >= sizeof(reserved) - 1 && memcmp(s, reserved, sizeof(reserved) - 1) == 0)
        return false;
    for (size_t i = 0; i < n;) {
        bool unsafe;
        uint32_t cp;
        size_t len = fm_jsonstr_char(s + i, n - i, &unsafe, &cp);

        if (len == 0 || unsafe || cp == '/')
            return false;
        i += len;
    }
    return true;
}

bool fm_beneath_path_valid(const char *path, size_t *depth)
{
    size_t n = strnlen(path, FM_BENEATH_PATH_MAX + 1), names = 0;

    if (n == 0 || n > FM_BENEATH_PATH_MAX)
        return false;
    for (size_t start = 0; start <= n;) {
        const char *slash = memchr(path + start, '/', n - start);
        size_t end = slash != NULL ? (size_t)(slash - path) : n;

        if (++names > FM_BENEATH_DEPTH_MAX || !fm_beneath_name_valid(path + start, end - start))
            return false;
        start = end + 1;
    }
    if (depth != NULL)
        *depth = names;
    return true;
}

int fm_beneath_open(int dirfd, const char *path, int flags, mode_t mode)
{
    struct open_how how = {
        /* openat2 refuses O_PATH with any flag but these three. */
        .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW | ((flags & O_PATH) ? 0 : O_NONBLOCK)),
        .mode = (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE ? mode : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
    };

    for (int i = 0;; i++) {
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN || i >= EAGAIN_RETRIES)
            return -1;
    }
}

bool fm_beneath_regular(const struct stat *st)
{
    return S_ISREG(st->st_mode) && st->st_nlink == 1;
}
