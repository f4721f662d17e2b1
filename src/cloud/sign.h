/* Request signing for the ABLESTACK cloud (Mold) and CloudStack API, exactly
 * as the server recomputes it: parameters sorted by name, values encoded as
 * Java's URLEncoder does (only A-Z a-z 0-9 . - _ * kept, space as %20), the
 * whole string lowercased, HMAC with the secret key, Base64. */
#ifndef V2K_CLOUD_SIGN_H
#define V2K_CLOUD_SIGN_H

#include <stddef.h>

enum v2k_cloud_alg { CLOUD_ALG_SHA1, CLOUD_ALG_SHA256, CLOUD_ALG_SHA512 };
extern const char *const v2k_cloud_alg_names[];   /* "sha1", "sha256", "sha512" */

struct v2k_cloud_param {
  const char *name;
  const char *value;
};

/* VALUE encoded as the server encodes it before signing (upper-case hex),
 * which is also a correct wire form. */
char *v2k_cloud_encode (const char *value);
/* The string the server signs: sorted, encoded, joined and lowercased. */
char *v2k_cloud_signed_string (const struct v2k_cloud_param *p, size_t n);
/* The Base64 signature of P with SECRET. */
char *v2k_cloud_sign (const struct v2k_cloud_param *p, size_t n, const char *secret, int alg);

#endif
