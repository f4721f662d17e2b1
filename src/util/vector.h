/* A generic typed vector, after nbdkit's common/utils/vector.h (not copied):
 * DEFINE_VECTOR_TYPE (string_vector, char *) declares a struct with ptr, len
 * and cap, plus _append, _reserve and _reset functions for it. */
#ifndef V2K_VECTOR_H
#define V2K_VECTOR_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFINE_VECTOR_TYPE(name, type)                                     \
  typedef struct { type *ptr; size_t len; size_t cap; } name;               \
  static inline __attribute__ ((unused)) int                                \
  name##_reserve (name *v, size_t extra)                                    \
  {                                                                         \
    if (v->len + extra <= v->cap)                                           \
      return 0;                                                             \
    size_t want = v->cap ? v->cap : 8;                                      \
    while (want < v->len + extra) {                                         \
      if (want > ((size_t) -1) / 2 / sizeof (type)) { errno = ENOMEM; return -1; } \
      want *= 2;                                                            \
    }                                                                       \
    type *p = realloc (v->ptr, want * sizeof (type));                       \
    if (!p)                                                                 \
      return -1;                                                            \
    v->ptr = p;                                                             \
    v->cap = want;                                                          \
    return 0;                                                               \
  }                                                                         \
  static inline __attribute__ ((unused)) int                                \
  name##_append (name *v, type elem)                                        \
  {                                                                         \
    if (name##_reserve (v, 1) == -1)                                        \
      return -1;                                                            \
    v->ptr[v->len++] = elem;                                                \
    return 0;                                                               \
  }                                                                         \
  static inline __attribute__ ((unused)) void                               \
  name##_reset (name *v)                                                    \
  {                                                                         \
    free (v->ptr);                                                          \
    v->ptr = NULL;                                                          \
    v->len = v->cap = 0;                                                    \
  }

#define empty_vector { .ptr = NULL, .len = 0, .cap = 0 }

#endif
