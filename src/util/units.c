#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "units.h"

int
v2k_parse_size (const char *option, const char *value, int64_t min, int64_t max,
                int64_t *out, struct v2k_error *err)
{
  char *end;
  if (!isdigit ((unsigned char) value[0]))
    goto bad;
  errno = 0;
  long long v = strtoll (value, &end, 10);
  if (errno)
    goto bad;
  int shift = 0;
  switch (*end) {
  case '\0': break;
  case 'k': case 'K': shift = 10; end++; break;
  case 'm': case 'M': shift = 20; end++; break;
  case 'g': case 'G': shift = 30; end++; break;
  case 't': case 'T': shift = 40; end++; break;
  default: goto bad;
  }
  if (*end == 'i' && shift)
    end++;
  if ((*end == 'B' || *end == 'b') && shift)
    end++;
  if (*end != '\0' || v > (INT64_MAX >> shift))
    goto bad;
  v <<= shift;
  if (v < min || v > max) {
    v2k_error_set (err, V2K_EXIT_USAGE, "%s: %s is out of range (%lld to %lld bytes)", option,
                   value, (long long) min, (long long) max);
    return -1;
  }
  *out = v;
  return 0;
 bad:
  v2k_error_set (err, V2K_EXIT_USAGE, "%s: '%s' is not a size (like 65536, 64K, 2M or 1G)",
                 option, value);
  return -1;
}
