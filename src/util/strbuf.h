/* A growable string, for building SOAP bodies and messages. Allocation
 * failure aborts: these strings are small and the tool cannot go on without
 * memory anyway. */
#ifndef V2K_STRBUF_H
#define V2K_STRBUF_H

#include <stddef.h>

struct strbuf { char *s; size_t len, cap; };

void sb_add (struct strbuf *b, const char *s);
void sb_addn (struct strbuf *b, const char *s, size_t n);
void sb_addf (struct strbuf *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Appends S with &, <, >, " and ' escaped for XML text and attributes. */
void sb_add_xml (struct strbuf *b, const char *s);
/* Returns the string (never NULL) and leaves B empty. */
char *sb_steal (struct strbuf *b);
void sb_free (struct strbuf *b);

#endif
