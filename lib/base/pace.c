/*
 * pace.c - a minimum transfer rate with bounded credit (the rule: pace.h).
 */
#include "pace.h"

void fm_pace_start(fm_pace *p, uint64_t rate, int64_t grace_ms, int64_t now_ms)
{
    p->rate = rate > 0 ? rate : 1;
    p->grace_ms = grace_ms;
    p->deadline_ms = now_ms + grace_ms;
    p->carry = 0;
}

void fm_pace_add(fm_pace *p, uint64_t n, int64_t now_ms)
{
    int64_t cap = now_ms + p->grace_ms;
    /* n is at most a file's size (2^40 bytes) and carry < rate <= 2^30: the sum fits. */
    uint64_t moved = n * 1000 + p->carry;
    int64_t earned = (int64_t)(moved / p->rate);

    p->carry = moved % p->rate;

    p->deadline_ms = earned >= cap - p->deadline_ms ? cap : p->deadline_ms + earned;
}

int64_t fm_pace_left_ms(const fm_pace *p, int64_t now_ms)
{
    return p->deadline_ms - now_ms;
}
