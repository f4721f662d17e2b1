#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "creds.h"
#include "sign.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"

static void
set_once (char **dst, const char *v)
{
  if (!*dst && v && *v)
    *dst = strdup (v);
}

static char *
trim (char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  char *e = s + strlen (s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
    *--e = '\0';
  size_t n = strlen (s);
  if (n >= 2 && ((s[0] == '"' && s[n - 1] == '"') || (s[0] == '\'' && s[n - 1] == '\''))) {
    s[n - 1] = '\0';
    s++;
  }
  return s;
}

/* The three keys under their many names (cmk, the incumbent, env style). */
static int
key_kind (const char *k)
{
  static const char *const endpoint[] = { "url", "endpoint", "api_url", NULL };
  static const char *const apikey[] = { "apikey", "api_key", NULL };
  static const char *const secret[] = { "secretkey", "secret_key", NULL };
  const char *const *sets[] = { endpoint, apikey, secret };
  const char *base = k;
  static const char *const prefixes[] = { "ABLESTACK_V2K_CLOUD_", "V2K_CLOUD_", "ABLESTACK_CLOUD_",
                                          "CLOUDSTACK_", NULL };
  for (size_t i = 0; prefixes[i]; i++)
    if (strncasecmp (k, prefixes[i], strlen (prefixes[i])) == 0)
      base = k + strlen (prefixes[i]);
  for (int s = 0; s < 3; s++)
    for (size_t i = 0; sets[s][i]; i++)
      if (strcasecmp (base, sets[s][i]) == 0)
        return s;
  return -1;
}

static int
alg_from (const char *v)
{
  if (!v)
    return -1;
  if (strcasecmp (v, "HmacSHA1") == 0 || strcasecmp (v, "sha1") == 0)
    return CLOUD_ALG_SHA1;
  if (strcasecmp (v, "HmacSHA256") == 0 || strcasecmp (v, "sha256") == 0)
    return CLOUD_ALG_SHA256;
  if (strcasecmp (v, "HmacSHA512") == 0 || strcasecmp (v, "sha512") == 0)
    return CLOUD_ALG_SHA512;
  return -1;
}

/* Reads KEY=VALUE or "key = value" lines; in SECTION only (NULL: every
 * line outside sections and, when ANY_SECTION, inside them too). */
static int
parse_file (const char *path, const char *section, bool any_section, struct v2k_cloud_creds *c,
            char **profile_out, struct v2k_error *err)
{
  size_t len;
  CLEANUP_FREE char *text = v2k_read_file (path, 1 << 20, &len, V2K_EXIT_USAGE, err);
  if (!text)
    return -1;
  char *vals[3] = { NULL, NULL, NULL };
  char *save = NULL, *cur_section = NULL;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
    char *l = trim (line);
    if (!*l || *l == '#' || *l == ';')
      continue;
    if (*l == '[') {
      char *e = strchr (l, ']');
      if (e)
        *e = '\0';
      cur_section = l + 1;
      continue;
    }
    char *eq = strchr (l, '=');
    if (!eq)
      continue;
    *eq = '\0';
    char *k = trim (l), *v = trim (eq + 1);
    if (strncasecmp (k, "export ", 7) == 0)
      k = trim (k + 7);
    bool in_scope = section ? (cur_section && strcmp (cur_section, section) == 0)
      : (!cur_section || any_section);
    if (!section && !cur_section && profile_out && strcasecmp (k, "profile") == 0 && !*profile_out)
      *profile_out = strdup (v);
    if (!in_scope)
      continue;
    if (strcasecmp (k, "signaturealgorithm") == 0 || strcasecmp (k, "signature") == 0) {
      if (c->alg < 0)
        c->alg = alg_from (v);
      continue;
    }
    int kind = key_kind (k);
    if (kind >= 0 && !vals[kind])
      vals[kind] = strdup (v);
  }
  set_once (&c->endpoint, vals[0]);
  set_once (&c->apikey, vals[1]);
  set_once (&c->secretkey, vals[2]);
  for (int i = 0; i < 3; i++)
    free (vals[i]);
  return 0;
}

static int
private_file (const char *path, const char *what, struct v2k_error *err)
{
  struct stat st;
  if (stat (path, &st) < 0) {
    v2k_error_errno (err, V2K_EXIT_USAGE, "%s %s", what, path);
    return -1;
  }
  if (st.st_mode & 077) {
    v2k_error_set (err, V2K_EXIT_USAGE, "%s %s can be read by others (mode %03o): it holds a "
                   "secret key; chmod 600 it", what, path, (unsigned) (st.st_mode & 0777));
    return -1;
  }
  return 0;
}

int
v2k_cloud_creds_resolve (const struct v2k_cloud_creds_args *a, struct v2k_cloud_creds *c,
                         struct v2k_error *err)
{
  memset (c, 0, sizeof *c);
  c->alg = -1;
  set_once (&c->endpoint, a->endpoint);
  set_once (&c->apikey, a->apikey);
  if (a->secret_file) {
    if (private_file (a->secret_file, "--cloud-secret-key-file", err) == -1)
      return -1;
    size_t len;
    CLEANUP_FREE char *s = v2k_read_file (a->secret_file, 4096, &len, V2K_EXIT_USAGE, err);
    if (!s)
      return -1;
    set_once (&c->secretkey, trim (s));
  }
  if (a->cred_file) {
    if (private_file (a->cred_file, "--cloud-cred-file", err) == -1 ||
        parse_file (a->cred_file, NULL, true, c, NULL, err) == -1)
      return -1;
  }
  static const char *const prefixes[] = { "ABLESTACK_V2K_CLOUD_", "V2K_CLOUD_", "ABLESTACK_CLOUD_",
                                          "CLOUDSTACK_", NULL };
  for (size_t i = 0; prefixes[i]; i++) {
    char n[64];
    snprintf (n, sizeof n, "%sENDPOINT", prefixes[i]);
    set_once (&c->endpoint, getenv (n));
    snprintf (n, sizeof n, "%sAPI_KEY", prefixes[i]);
    set_once (&c->apikey, getenv (n));
    snprintf (n, sizeof n, "%sSECRET_KEY", prefixes[i]);
    set_once (&c->secretkey, getenv (n));
  }
  if (!c->endpoint || !c->apikey || !c->secretkey) {
    CLEANUP_FREE char *cfg = NULL, *profile = NULL;
    const char *home = getenv ("HOME");
    if (a->cmk_config)
      cfg = strdup (a->cmk_config);
    else if (home && asprintf (&cfg, "%s/.cmk/config", home) < 0)
      cfg = NULL;
    if (cfg && access (cfg, R_OK) == 0) {
      struct v2k_cloud_creds top = { .alg = -1 };
      if (parse_file (cfg, NULL, false, &top, &profile, err) == -1)
        return -1;
      v2k_cloud_creds_free (&top);
      const char *want = a->cmk_profile ? a->cmk_profile : profile ? profile : "localcloud";
      if (parse_file (cfg, want, false, c, NULL, err) == -1)
        return -1;
    }
    else if (a->cmk_config || a->cmk_profile) {
      v2k_error_set (err, V2K_EXIT_USAGE, "CloudMonkey configuration %s cannot be read",
                     cfg ? cfg : "~/.cmk/config");
      return -1;
    }
  }
  if (!c->endpoint || !c->apikey || !c->secretkey) {
    v2k_error_set (err, V2K_EXIT_USAGE, "the cloud API credentials are incomplete (missing %s): give "
                   "--cloud-endpoint, --cloud-api-key and --cloud-secret-key-file, or "
                   "--cloud-cred-file, or ABLESTACK_V2K_CLOUD_ENDPOINT/_API_KEY/_SECRET_KEY, or a "
                   "cmk profile with url, apikey and secretkey",
                   !c->endpoint ? "the endpoint" : !c->apikey ? "the API key" : "the secret key");
    return -1;
  }
  return 0;
}

void
v2k_cloud_creds_free (struct v2k_cloud_creds *c)
{
  free (c->endpoint);
  free (c->apikey);
  if (c->secretkey) {
    explicit_bzero (c->secretkey, strlen (c->secretkey));
    free (c->secretkey);
  }
  memset (c, 0, sizeof *c);
  c->alg = -1;
}
