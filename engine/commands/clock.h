/*
 * engine/commands/clock.h - the one clock every measurement of the engine reads.
 */
#ifndef ENGINE_CLOCK_H
#define ENGINE_CLOCK_H

#include <time.h>

/* Seconds on the monotonic clock (immune to changes of the wall clock): only differences
 * mean anything. */
static inline double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
