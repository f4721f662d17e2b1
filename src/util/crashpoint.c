#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crashpoint.h"

void
v2k_crashpoint (const char *name)
{
  static unsigned hits;
  const char *want = getenv ("V2K_CRASHPOINT");
  if (!want || !*want)
    return;
  size_t len = strlen (name);
  if (strncmp (want, name, len) != 0)
    return;
  if (want[len] == '@') {
    unsigned nth = (unsigned) strtoul (want + len + 1, NULL, 10);
    if (++hits != nth)
      return;
  }
  else if (want[len] != '\0')
    return;
  kill (getpid (), SIGKILL);
}
