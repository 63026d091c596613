/*
 * fuzz_syslog.c - libFuzzer target for fetchml-logrelay's datagram parser
 * and line renderer (lib/base/syslogmsg.c): what arrives on the relay's
 * socket from nginx, or from anyone who can write to it.
 *
 * Input: one datagram. Checks:
 *   - an accepted datagram has PRI 0..191, a tag of 1..32 of [A-Za-z0-9_]
 *     followed by ": ", and the message is the rest of the datagram;
 *   - the line made of the message (or of the whole datagram when it does
 *     not parse, which the relay drops, to give the renderer any bytes) is
 *     1..FM_SYSLOGMSG_LINE_MAX bytes, ends
 *     in its only newline, holds no other control byte, and no registered
 *     secret, even one planted inside the message or percent-encoded.
 */
#include "fuzz.h"
#include "redact.h"
#include "syslogmsg.h"

#include <ctype.h>

static const char secret[] = "Zq7-canary-Xv2";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (fm_redact_add_secret(secret) != 0)
        abort();
    return 0;
}

static void check_line(const char *msg, size_t len)
{
    static char line[FM_SYSLOGMSG_LINE_MAX];
    size_t n = fm_syslogmsg_line(msg, len, line);

    if (n < 1 || n > FM_SYSLOGMSG_LINE_MAX || line[n - 1] != '\n')
        fuzz_fail("syslog: line of %zu bytes without its newline", n);
    for (size_t i = 0; i + 1 < n; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            fuzz_fail("syslog: control byte 0x%02x at %zu of the line", (unsigned char)line[i], i);
    if (memmem(line, n, secret, sizeof(secret) - 1) != NULL)
        fuzz_fail("syslog: the registered secret reached the line");
}

static void check_parsed(const char *buf, size_t len, const fm_syslogmsg *m)
{
    if (m->pri < 0 || m->pri > 191)
        fuzz_fail("syslog: PRI %d accepted", m->pri);
    if (m->tag < buf || m->tag_len < 1 || m->tag_len > FM_SYSLOGMSG_TAG_MAX ||
        m->tag + m->tag_len + 2 > buf + len)
        fuzz_fail("syslog: tag outside the datagram or of length %zu", m->tag_len);
    for (size_t i = 0; i < m->tag_len; i++)
        if (!isalnum((unsigned char)m->tag[i]) && m->tag[i] != '_')
            fuzz_fail("syslog: tag byte 0x%02x accepted", (unsigned char)m->tag[i]);
    if (memcmp(m->tag + m->tag_len, ": ", 2) != 0 || m->msg != m->tag + m->tag_len + 2 ||
        m->msg + m->msg_len != buf + len)
        fuzz_fail("syslog: the message is not the rest of the datagram after \"TAG: \"");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    fm_syslogmsg m;
    char *planted;

    if (fm_syslogmsg_parse(buf, size, &m) != FM_OK) {
        check_line(buf, size);
        return 0;
    }
    check_parsed(buf, size, &m);
    check_line(m.msg, m.msg_len);

    /* The secret written into the middle of the message, as a request line may carry it. */
    planted = malloc(m.msg_len + sizeof(secret));
    if (planted == NULL)
        abort();
    memcpy(planted, m.msg, m.msg_len / 2);
    memcpy(planted + m.msg_len / 2, secret, sizeof(secret) - 1);
    memcpy(planted + m.msg_len / 2 + sizeof(secret) - 1, m.msg + m.msg_len / 2,
           m.msg_len - m.msg_len / 2);
    check_line(planted, m.msg_len + sizeof(secret) - 1);
    free(planted);
    return 0;
}
