/* Where the cloud API credentials come from, in order: flags; a credential
 * file (--cloud-cred-file: ini or KEY=VALUE, parsed and never sourced, and
 * refused when group or others can read it); the environment
 * (ABLESTACK_V2K_CLOUD_*, then V2K_CLOUD_*, ABLESTACK_CLOUD_*, CLOUDSTACK_*,
 * each _ENDPOINT, _API_KEY, _SECRET_KEY); a CloudMonkey profile
 * (~/.cmk/config, --cmk-profile). The secret key never comes from argv. */
#ifndef V2K_CLOUD_CREDS_H
#define V2K_CLOUD_CREDS_H

#include "../util/error.h"

struct v2k_cloud_creds_args {
  const char *endpoint;       /* --cloud-endpoint */
  const char *apikey;         /* --cloud-api-key */
  const char *secret_file;    /* --cloud-secret-key-file */
  const char *cred_file;      /* --cloud-cred-file */
  const char *cmk_profile;    /* --cmk-profile */
  const char *cmk_config;     /* --cmk-config (default ~/.cmk/config) */
};

struct v2k_cloud_creds {
  char *endpoint, *apikey, *secretkey;
  int alg;                    /* from a cmk profile's signaturealgorithm, or -1 */
};

int v2k_cloud_creds_resolve (const struct v2k_cloud_creds_args *a, struct v2k_cloud_creds *c,
                             struct v2k_error *err);
void v2k_cloud_creds_free (struct v2k_cloud_creds *c);

#endif
