/* A compact in-memory extent list: 16 bytes an extent, so millions of
 * changed areas fit easily. Never passed through argv or the manifest. */
#ifndef V2K_EXTENTS_H
#define V2K_EXTENTS_H

#include <stdint.h>
#include "../util/vector.h"

struct v2k_extent {
  int64_t start;
  int64_t length;
};

DEFINE_VECTOR_TYPE (v2k_extents, struct v2k_extent)

/* Appends [START, START+LENGTH), merging with the last extent when they touch. */
static inline int
v2k_extents_add (v2k_extents *v, int64_t start, int64_t length)
{
  if (v->len > 0) {
    struct v2k_extent *last = &v->ptr[v->len - 1];
    if (last->start + last->length == start) {
      last->length += length;
      return 0;
    }
  }
  return v2k_extents_append (v, (struct v2k_extent) { start, length });
}

static inline int64_t
v2k_extents_bytes (const v2k_extents *v)
{
  int64_t n = 0;
  for (size_t i = 0; i < v->len; i++)
    n += v->ptr[i].length;
  return n;
}

#endif
