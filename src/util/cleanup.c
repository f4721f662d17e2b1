#include "cleanup.h"

void
v2k_cleanup_free (void *ptr)
{
  free (*(void **) ptr);
}

void
v2k_cleanup_fclose (FILE **fp)
{
  if (*fp)
    fclose (*fp);
}

void
v2k_cleanup_close (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}
