#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sign.h"
#include "../util/strbuf.h"

const char *const v2k_cloud_alg_names[] = { "sha1", "sha256", "sha512", NULL };

char *
v2k_cloud_encode (const char *value)
{
  static const char hex[] = "0123456789ABCDEF";
  struct strbuf b = { 0 };
  sb_add (&b, "");
  for (const unsigned char *p = (const unsigned char *) value; *p; p++) {
    unsigned char c = *p;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        c == '.' || c == '-' || c == '_' || c == '*')
      sb_addf (&b, "%c", c);
    else if (c == ' ')
      sb_add (&b, "%20");        /* URLEncoder's '+', which the server turns into %20 */
    else
      sb_addf (&b, "%%%c%c", hex[c >> 4], hex[c & 15]);
  }
  return b.s;
}

static int
by_name (const void *a, const void *b)
{
  const struct v2k_cloud_param *x = a, *y = b;
  return strcmp (x->name, y->name);   /* byte order = Java's order for ASCII names */
}

char *
v2k_cloud_signed_string (const struct v2k_cloud_param *p, size_t n)
{
  struct v2k_cloud_param *sorted = malloc ((n ? n : 1) * sizeof *sorted);
  if (!sorted)
    return NULL;
  memcpy (sorted, p, n * sizeof *sorted);
  qsort (sorted, n, sizeof *sorted, by_name);
  struct strbuf b = { 0 };
  sb_add (&b, "");
  for (size_t i = 0; i < n; i++) {
    char *v = v2k_cloud_encode (sorted[i].value);
    sb_addf (&b, "%s%s=%s", i ? "&" : "", sorted[i].name, v ? v : "");
    free (v);
  }
  free (sorted);
  for (char *c = b.s; c && *c; c++)
    if (*c >= 'A' && *c <= 'Z')
      *c = (char) (*c - 'A' + 'a');
  return b.s;
}

char *
v2k_cloud_sign (const struct v2k_cloud_param *p, size_t n, const char *secret, int alg)
{
  char *s = v2k_cloud_signed_string (p, n);
  if (!s)
    return NULL;
  const EVP_MD *md = alg == CLOUD_ALG_SHA1 ? EVP_sha1 () : alg == CLOUD_ALG_SHA512 ? EVP_sha512 ()
    : EVP_sha256 ();
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  unsigned char *r = HMAC (md, secret, (int) strlen (secret), (unsigned char *) s, strlen (s), mac, &len);
  free (s);
  if (!r)
    return NULL;
  char *out = malloc (4 * ((len + 2) / 3) + 1);
  if (out)
    EVP_EncodeBlock ((unsigned char *) out, mac, (int) len);
  return out;
}
