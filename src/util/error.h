/* Errors carry a code from exitcodes.h and one line of text up the stack.
 * Functions that can fail return -1 (or NULL) and fill a struct v2k_error;
 * callers add context with v2k_error_prefix; only the command layer prints. */
#ifndef V2K_ERROR_H
#define V2K_ERROR_H

#include <stdbool.h>
#include "exitcodes.h"

struct v2k_error {
  int code;                 /* enum v2k_exit; 0 when no error is set */
  char message[2048];
};

void v2k_error_set (struct v2k_error *err, int code, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* As v2k_error_set, then ": " and strerror(errno). */
void v2k_error_errno (struct v2k_error *err, int code, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* Prepends "<context>: " to the message already set. */
void v2k_error_prefix (struct v2k_error *err, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
static inline bool v2k_error_isset (const struct v2k_error *err) { return err->code != 0; }

/* -v: debug lines (the helpers' command lines, each vCenter call and its
 * time). The command layer sets the sink (main.c: stderr); unset, nothing
 * is formatted. Never pass a secret. */
extern void (*v2k_debug_sink) (const char *line);
void v2k_debug (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static inline bool v2k_debug_on (void) { return v2k_debug_sink != NULL; }

#endif
