#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "completions.h"

int
v2k_completions_init (struct v2k_completions *q, struct v2k_error *err)
{
  q->head = NULL;
  pthread_mutex_init (&q->lock, NULL);
  if ((q->efd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
    v2k_error_errno (err, V2K_EXIT_INTERNAL, "eventfd");
    return -1;
  }
  return 0;
}

static void
free_list (struct v2k_completion *c)
{
  while (c) {
    struct v2k_completion *next = c->next;
    free (c);
    c = next;
  }
}

void
v2k_completions_destroy (struct v2k_completions *q)
{
  free_list (q->head);
  q->head = NULL;
  if (q->efd >= 0)
    close (q->efd);
  q->efd = -1;
  pthread_mutex_destroy (&q->lock);
}

void
v2k_completions_push (struct v2k_completions *q, struct v2k_completion *c)
{
  pthread_mutex_lock (&q->lock);
  c->next = q->head;
  q->head = c;
  pthread_mutex_unlock (&q->lock);
  uint64_t one = 1;
  if (write (q->efd, &one, sizeof one) < 0) { /* the counter cannot overflow here */ }
}

size_t
v2k_completions_pollfds (struct v2k_completions *q, struct pollfd *fds, size_t max)
{
  if (max < 1)
    return 0;
  fds[0] = (struct pollfd) { .fd = q->efd, .events = POLLIN };
  return 1;
}

void
v2k_completions_run (struct v2k_completions *q, struct v2k_endpoint *ep,
                     const struct pollfd *fds, size_t n)
{
  if (n < 1 || !(fds[0].revents & POLLIN))
    return;
  uint64_t count;
  if (read (q->efd, &count, sizeof count) < 0 && errno != EAGAIN)
    return;
  pthread_mutex_lock (&q->lock);
  struct v2k_completion *c = q->head;
  q->head = NULL;
  pthread_mutex_unlock (&q->lock);
  while (c) {
    struct v2k_completion *next = c->next;
    if (c->errnum)
      snprintf (ep->last_error, sizeof ep->last_error, "%s%s%s", c->what ? c->what : "",
                c->what ? ": " : "", strerror (c->errnum));
    c->io->done (c->io, c->errnum);
    free (c);
    c = next;
  }
}

size_t
v2k_completions_ep_pollfds (struct v2k_endpoint *ep, struct pollfd *fds, size_t max)
{
  return v2k_completions_pollfds (ep->priv, fds, max);
}

int
v2k_completions_ep_dispatch (struct v2k_endpoint *ep, const struct pollfd *fds, size_t n)
{
  v2k_completions_run (ep->priv, ep, fds, n);
  return 0;
}
