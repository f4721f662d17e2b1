/* The areas JSON of `copy --areas`: [{"start": N, "length": N}, …], sorted,
 * not overlapping, each inside the disk. */
#ifndef V2K_AREAS_H
#define V2K_AREAS_H

#include <stddef.h>
#include "extents.h"
#include "../util/error.h"

/* Parses TEXT (LEN bytes) from SOURCE (a name for messages); CAPACITY < 0
 * skips the bounds check. */
int v2k_areas_parse (const char *text, size_t len, const char *source, int64_t capacity,
                     v2k_extents *out, struct v2k_error *err);

#endif
