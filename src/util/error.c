#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static const char *const exit_names[] = {
  [V2K_EXIT_OK] = "ok",
  [V2K_EXIT_INTERNAL] = "internal",
  [V2K_EXIT_USAGE] = "usage",
  [V2K_EXIT_WORKDIR] = "workdir",
  [V2K_EXIT_LOCKED] = "locked",
  [V2K_EXIT_CONNECT] = "connection",
  [V2K_EXIT_VSPHERE] = "vsphere_fault",
  [V2K_EXIT_CBT] = "cbt_integrity",
  [V2K_EXIT_TRANSFER] = "transfer",
  [V2K_EXIT_TARGET] = "target",
  [V2K_EXIT_LIBVIRT] = "libvirt",
  [V2K_EXIT_VERIFY] = "verify_mismatch",
  [V2K_EXIT_CLOUD] = "cloud",
};

const char *
v2k_exit_name (int code)
{
  if (code == V2K_EXIT_INTERRUPTED)
    return "interrupted";
  if (code >= 0 && (size_t) code < sizeof exit_names / sizeof exit_names[0] && exit_names[code])
    return exit_names[code];
  return "internal";
}

void
v2k_error_set (struct v2k_error *err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (err->message, sizeof err->message, fmt, ap);
  va_end (ap);
  err->code = code;
}

void
v2k_error_errno (struct v2k_error *err, int code, const char *fmt, ...)
{
  int saved = errno;
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (err->message, sizeof err->message, fmt, ap);
  va_end (ap);
  size_t len = strlen (err->message);
  snprintf (err->message + len, sizeof err->message - len, ": %s", strerror (saved));
  err->code = code;
}

void
v2k_error_prefix (struct v2k_error *err, const char *fmt, ...)
{
  char prefix[512];
  char old[sizeof err->message];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (prefix, sizeof prefix, fmt, ap);
  va_end (ap);
  memcpy (old, err->message, sizeof old);
  snprintf (err->message, sizeof err->message, "%s: %s", prefix, old);
}

void (*v2k_debug_sink) (const char *line);

void
v2k_debug (const char *fmt, ...)
{
  if (!v2k_debug_sink)
    return;
  char line[2048];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (line, sizeof line, fmt, ap);
  va_end (ap);
  /* One line, whatever a name from vCenter holds. */
  for (char *c = line; *c; c++)
    if ((unsigned char) *c < 0x20 || *c == 0x7f)
      *c = '?';
  v2k_debug_sink (line);
}
