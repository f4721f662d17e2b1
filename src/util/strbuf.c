#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static void
grow (struct strbuf *b, size_t extra)
{
  if (b->len + extra + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1)
    cap *= 2;
  char *p = realloc (b->s, cap);
  if (!p) {
    fputs ("ablestack_v2k: out of memory\n", stderr);
    abort ();
  }
  b->s = p;
  b->cap = cap;
}

void
sb_add (struct strbuf *b, const char *s)
{
  size_t n = strlen (s);
  grow (b, n);
  memcpy (b->s + b->len, s, n + 1);
  b->len += n;
}

void
sb_addn (struct strbuf *b, const char *s, size_t n)
{
  grow (b, n);
  memcpy (b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

void
sb_addf (struct strbuf *b, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (NULL, 0, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  grow (b, (size_t) n);
  va_start (ap, fmt);
  vsnprintf (b->s + b->len, (size_t) n + 1, fmt, ap);
  va_end (ap);
  b->len += (size_t) n;
}

void
sb_add_xml (struct strbuf *b, const char *s)
{
  for (; *s; s++) {
    switch (*s) {
    case '&': sb_add (b, "&amp;"); break;
    case '<': sb_add (b, "&lt;"); break;
    case '>': sb_add (b, "&gt;"); break;
    case '"': sb_add (b, "&quot;"); break;
    case '\'': sb_add (b, "&apos;"); break;
    default: {
      char c[2] = { *s, '\0' };
      sb_add (b, c);
    }
    }
  }
}

char *
sb_steal (struct strbuf *b)
{
  if (!b->s)
    grow (b, 0), b->s[0] = '\0';
  char *s = b->s;
  b->s = NULL;
  b->len = b->cap = 0;
  return s;
}

void
sb_free (struct strbuf *b)
{
  free (b->s);
  b->s = NULL;
  b->len = b->cap = 0;
}
