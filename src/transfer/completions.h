/* Completions that other threads report and the engine's thread runs: the
 * RBD endpoint's librbd callbacks and the file endpoint's workers push them,
 * an eventfd wakes the engine's poll(), and dispatch() runs them there, so
 * the engine itself never needs a lock. */
#ifndef V2K_COMPLETIONS_H
#define V2K_COMPLETIONS_H

#include <poll.h>
#include <pthread.h>
#include <stddef.h>

#include "endpoint.h"

/* Embed it first in a malloc'ed request: running it frees the request. */
struct v2k_completion {
  struct v2k_completion *next;
  struct v2k_io *io;
  int errnum;
  const char *what;         /* the call that failed, or NULL */
};

struct v2k_completions {
  int efd;
  pthread_mutex_t lock;
  struct v2k_completion *head;
};

int v2k_completions_init (struct v2k_completions *q, struct v2k_error *err);
/* Frees what is still queued, without running it. */
void v2k_completions_destroy (struct v2k_completions *q);
/* Any thread: queues C and wakes the engine. */
void v2k_completions_push (struct v2k_completions *q, struct v2k_completion *c);
size_t v2k_completions_pollfds (struct v2k_completions *q, struct pollfd *fds, size_t max);
/* The engine's thread, after poll(): runs and frees every queued completion,
 * naming a failure in EP's last_error. */
void v2k_completions_run (struct v2k_completions *q, struct v2k_endpoint *ep,
                          const struct pollfd *fds, size_t n);

/* pollfds and dispatch for an endpoint whose priv begins with its queue. */
size_t v2k_completions_ep_pollfds (struct v2k_endpoint *ep, struct pollfd *fds, size_t max);
int v2k_completions_ep_dispatch (struct v2k_endpoint *ep, const struct pollfd *fds, size_t n);

#endif
