/* Text helpers the unit tests share (webhook/tests may include it too). */
#pragma once

#include <stddef.h>
#include <string.h>

/* How many times needle occurs in hay (overlapping ones counted). */
static inline size_t count_of(const char *hay, const char *needle)
{
        size_t n = 0;

        for (const char *p = hay; (p = strstr(p, needle)); p++)
                n++;
        return n;
}
