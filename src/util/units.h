/* Parsing sizes on the command line: 4096, 64K, 2M, 1G (binary units). */
#ifndef V2K_UNITS_H
#define V2K_UNITS_H

#include <stdint.h>
#include "error.h"

/* Parses VALUE for OPTION; it must lie in [MIN, MAX]. Usage error otherwise. */
int v2k_parse_size (const char *option, const char *value, int64_t min, int64_t max,
                    int64_t *out, struct v2k_error *err);

#endif
