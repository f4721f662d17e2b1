#include <jansson.h>

#include "areas.h"

int
v2k_areas_parse (const char *text, size_t len, const char *source, int64_t capacity,
                 v2k_extents *out, struct v2k_error *err)
{
  json_error_t jerr;
  json_t *root = json_loadb (text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    v2k_error_set (err, V2K_EXIT_USAGE, "%s: not valid JSON at line %d column %d: %s", source,
                   jerr.line, jerr.column, jerr.text);
    return -1;
  }
  int rc = -1;
  if (!json_is_array (root)) {
    v2k_error_set (err, V2K_EXIT_USAGE, "%s: want a JSON array of {\"start\":…,\"length\":…}", source);
    goto out;
  }
  int64_t prev_end = 0;
  size_t i;
  json_t *a;
  json_array_foreach (root, i, a) {
    json_t *s = json_object_get (a, "start"), *l = json_object_get (a, "length");
    if (!json_is_object (a) || json_object_size (a) != 2 || !json_is_integer (s) ||
        !json_is_integer (l)) {
      v2k_error_set (err, V2K_EXIT_USAGE, "%s: area %zu: want exactly integer start and length",
                     source, i);
      goto out;
    }
    int64_t start = json_integer_value (s), length = json_integer_value (l);
    if (start < 0 || length <= 0 || start > INT64_MAX - length) {
      v2k_error_set (err, V2K_EXIT_USAGE, "%s: area %zu: start %lld, length %lld is not a valid range",
                     source, i, (long long) start, (long long) length);
      goto out;
    }
    if (start < prev_end) {
      v2k_error_set (err, V2K_EXIT_USAGE,
                     "%s: area %zu at %lld overlaps or precedes the previous one (ending at %lld); "
                     "areas must be sorted and apart", source, i, (long long) start, (long long) prev_end);
      goto out;
    }
    if (capacity >= 0 && start + length > capacity) {
      v2k_error_set (err, V2K_EXIT_USAGE, "%s: area %zu ends at %lld, past the end of the disk (%lld)",
                     source, i, (long long) (start + length), (long long) capacity);
      goto out;
    }
    if (v2k_extents_add (out, start, length) == -1) {
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      goto out;
    }
    prev_end = start + length;
  }
  rc = 0;
 out:
  json_decref (root);
  return rc;
}
