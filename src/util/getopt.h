/* getopt_long without abbreviations. */
#ifndef V2K_GETOPT_H
#define V2K_GETOPT_H

#include <getopt.h>

/* getopt_long, except that a long option must be spelled out: glibc takes
 * any unique prefix, so "--password SECRET" was read as "--password-file
 * SECRET" (and the secret echoed in the error). An abbreviation is returned
 * as '?' with optind just past the option itself, so that argv[optind - 1]
 * names the option, never its value. */
int v2k_getopt (int argc, char *const argv[], const char *shortopts,
                const struct option *longopts);

#endif
