/*
 * tests/simde/lanes.h - what x86.h and arm.h share: the lanes of a vector as an array and
 * back, for the intrinsics they write lane by lane.
 */
#ifndef TESTS_SIMDE_LANES_H
#define TESTS_SIMDE_LANES_H

#include <string.h>

#define GAP_LANES(type, name, v, count) \
    type name[count];                  \
    memcpy(name, &(v), sizeof name)
#define GAP_VEC(vtype, lanes)          \
    ({                                 \
        vtype v_;                      \
        memcpy(&v_, lanes, sizeof v_); \
        v_;                            \
    })

#endif
