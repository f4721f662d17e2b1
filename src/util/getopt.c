#include <string.h>

#include "getopt.h"

int
v2k_getopt (int argc, char *const argv[], const char *shortopts, const struct option *longopts)
{
  int index = -1;
  int c = getopt_long (argc, argv, shortopts, longopts, &index);
  if (c == -1 || c == '?' || index < 0)
    return c;
  /* The token that named the option: the one before its separate value. */
  int at = optind - 1;
  if (longopts[index].has_arg != no_argument && optarg && at > 0 && optarg == argv[at])
    at--;
  const char *token = argv[at], *name = longopts[index].name;
  size_t n = strlen (name);
  if (strncmp (token, "--", 2) == 0 && strncmp (token + 2, name, n) == 0 &&
      (token[2 + n] == '\0' || token[2 + n] == '='))
    return c;
  optind = at + 1;
  return '?';
}
