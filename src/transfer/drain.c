#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

#include "drain.h"
#include "../util/fsutil.h"

bool
v2k_drain (struct v2k_endpoint *a, struct v2k_endpoint *b, v2k_waiting_fn waiting,
           void *opaque, double timeout)
{
  bool alive[2] = { true, true };
  struct v2k_endpoint *ep[2] = { a, b };
  double deadline = v2k_monotonic_seconds () + timeout;
  for (;;) {
    bool busy = false;
    for (int k = 0; k < 2; k++)
      busy |= alive[k] && waiting (opaque, k);
    if (!busy)
      return true;
    if (v2k_monotonic_seconds () >= deadline)
      return false;
    struct pollfd fds[64];
    size_t n[2] = { 0, 0 };
    for (int k = 0; k < 2; k++)
      if (alive[k])
        n[k] = ep[k]->ops->pollfds (ep[k], fds + (k ? n[0] : 0), 32);
    if (poll (fds, n[0] + n[1], 100) < 0 && errno != EINTR)
      return false;
    for (int k = 0; k < 2; k++)
      if (alive[k] && ep[k]->ops->dispatch (ep[k], fds + (k ? n[0] : 0), n[k]) == -1)
        alive[k] = false;
  }
}

struct abandoned {
  struct abandoned *next;
  void *ptr;
};

static struct abandoned *graveyard;
static pthread_mutex_t graveyard_lock = PTHREAD_MUTEX_INITIALIZER;

void
v2k_buffers_abandon (void *ptr)
{
  struct abandoned *a = malloc (sizeof *a);
  if (!a)
    return;   /* then it simply leaks, which is still safe */
  a->ptr = ptr;
  pthread_mutex_lock (&graveyard_lock);
  a->next = graveyard;
  graveyard = a;
  pthread_mutex_unlock (&graveyard_lock);
}
