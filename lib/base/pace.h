/*
 * pace.h - a minimum transfer rate with bounded credit (SPEC section 10): a
 * streamed upload's body, or a download, that moves slower than rate bytes a
 * second holds a pool worker for nothing, and is cut off.
 *
 * The rule is a deadline for the next bytes: it starts grace after the
 * transfer starts, and every n bytes moved push it n / rate seconds later,
 * but never more than grace past now (the credit a fast start earns is
 * bounded: a client cannot send most of a body quickly, then trickle the
 * rest for hours). A transfer at rate r below the minimum m is therefore cut
 * after about grace / (1 - r / m) seconds; one that stops moving, after at
 * most grace. Times are milliseconds of one monotonic clock, chosen by the
 * caller.
 */
#ifndef FM_PACE_H
#define FM_PACE_H

#include <stdint.h>

typedef struct fm_pace {
    int64_t deadline_ms;
    int64_t grace_ms;
    uint64_t rate;  /* bytes a second, at least 1 */
    uint64_t carry; /* bytes x 1000 moved but not yet earned as a whole ms (< rate) */
} fm_pace;

/* fm_pace_start - a transfer starting at now_ms: rate bytes a second (0 is taken as 1), grace ms.
 */
void fm_pace_start(fm_pace *p, uint64_t rate, int64_t grace_ms, int64_t now_ms);

/*
 * fm_pace_add - n bytes moved, seen at now_ms: the deadline moves as
 * described above. What n / rate leaves under a millisecond is carried to
 * the next call, so that many small amounts earn what their sum does (64 KiB
 * at 64 MiB/s is under 1 ms each).
 */
void fm_pace_add(fm_pace *p, uint64_t n, int64_t now_ms);

/* fm_pace_left_ms - milliseconds until the deadline at now_ms; 0 or less: too slow, cut it off. */
int64_t fm_pace_left_ms(const fm_pace *p, int64_t now_ms);

#endif
