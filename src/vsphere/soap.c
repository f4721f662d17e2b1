#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "soap.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"
#include "../util/strbuf.h"

#define MAX_RESPONSE (128u << 20)   /* no vim25 reply we ask for comes near this */
#define COOKIE_NAME "vmware_soap_session"

struct v2k_soap {
  CURL *curl;
  char *sdk_url;
  char *cookie;                   /* "vmware_soap_session=…" */
  char *soap_action;
  struct v2k_vsphere_opts opts;
  unsigned char pin[EVP_MAX_MD_SIZE];
  unsigned pin_len;               /* 0: no pin; 20: SHA-1; 32: SHA-256 */
  char seen_sha1[EVP_MAX_MD_SIZE * 3], seen_sha256[EVP_MAX_MD_SIZE * 3];
  char verify_error[128];         /* why OpenSSL refused the chain */
  char curl_error[CURL_ERROR_SIZE];
  bool pin_mismatch;
  struct v2k_service_content sc;
  struct v2k_fault last_fault;
  bool logged_in;
  unsigned generation;
  struct strbuf body;             /* the current reply */
  bool body_too_large;
  char *set_cookie;
};

char *
v2k_vsphere_sdk_url (const char *value, struct v2k_error *err)
{
  if (!value || !*value) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "no vCenter given: pass --vcenter HOST or set GOVC_URL");
    return NULL;
  }
  const char *p = value;
  if (strncmp (p, "http://", 7) == 0) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "--vcenter %s: plain http is not supported; use https", value);
    return NULL;
  }
  if (strncmp (p, "https://", 8) == 0)
    p += 8;
  /* Credentials in the URL (user:pass@host) would end up in argv. */
  const char *slash = strchr (p, '/');
  const char *at = strchr (p, '@');
  if (at && (!slash || at < slash)) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "--vcenter must not carry credentials; use --username and --password-file");
    return NULL;
  }
  size_t hostlen = slash ? (size_t) (slash - p) : strlen (p);
  if (hostlen == 0) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--vcenter %s: no host", value);
    return NULL;
  }
  for (size_t i = 0; i < hostlen; i++) {
    unsigned char c = (unsigned char) p[i];
    if (!(isalnum (c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_')) {
      v2k_error_set (err, V2K_EXIT_USAGE, "--vcenter %s: '%c' is not valid in a host name",
                     value, c);
      return NULL;
    }
  }
  const char *path = slash ? slash : "/sdk";
  if (strcmp (path, "/") == 0)
    path = "/sdk";
  char *url;
  if (asprintf (&url, "https://%.*s%s", (int) hostlen, p, path) < 0)
    return NULL;
  return url;
}

/* TLS: the verify callback records the leaf's thumbprints and, with a pin,
 * accepts exactly the pinned certificate whatever its chain. */

static void
hex_colon (char *out, const unsigned char *md, unsigned len)
{
  for (unsigned i = 0; i < len; i++)
    sprintf (out + i * 3, i + 1 < len ? "%02X:" : "%02X", md[i]);
}

static int
verify_cb (int preverify_ok, X509_STORE_CTX *ctx)
{
  SSL *ssl = X509_STORE_CTX_get_ex_data (ctx, SSL_get_ex_data_X509_STORE_CTX_idx ());
  struct v2k_soap *s = ssl ? SSL_CTX_get_app_data (SSL_get_SSL_CTX (ssl)) : NULL;
  if (!s)
    return preverify_ok;
  int depth = X509_STORE_CTX_get_error_depth (ctx);
  X509 *cert = X509_STORE_CTX_get_current_cert (ctx);
  if (depth == 0 && cert) {
    unsigned char md1[EVP_MAX_MD_SIZE], md2[EVP_MAX_MD_SIZE];
    unsigned n1 = 0, n2 = 0;
    X509_digest (cert, EVP_sha1 (), md1, &n1);
    X509_digest (cert, EVP_sha256 (), md2, &n2);
    hex_colon (s->seen_sha1, md1, n1);
    hex_colon (s->seen_sha256, md2, n2);
    if (s->pin_len) {
      const unsigned char *md = s->pin_len == 20 ? md1 : md2;
      if (memcmp (md, s->pin, s->pin_len) != 0) {
        s->pin_mismatch = true;
        return 0;
      }
    }
  }
  if (s->pin_len || s->opts.insecure) {
    X509_STORE_CTX_set_error (ctx, X509_V_OK);
    return 1;
  }
  if (!preverify_ok && !s->verify_error[0])
    snprintf (s->verify_error, sizeof s->verify_error, "%s",
              X509_verify_cert_error_string (X509_STORE_CTX_get_error (ctx)));
  return preverify_ok;
}

static CURLcode
ssl_ctx_cb (CURL *curl, void *sslctx, void *userdata)
{
  (void) curl;
  SSL_CTX_set_app_data ((SSL_CTX *) sslctx, userdata);
  SSL_CTX_set_verify ((SSL_CTX *) sslctx, SSL_VERIFY_PEER, verify_cb);
  return CURLE_OK;
}

static int
parse_thumbprint (const char *text, unsigned char *out, unsigned *len, struct v2k_error *err)
{
  unsigned n = 0;
  for (const char *p = text; *p; ) {
    if (*p == ':' || *p == ' ') {
      p++;
      continue;
    }
    if (!isxdigit ((unsigned char) p[0]) || !isxdigit ((unsigned char) p[1]) || n >= 32) {
      n = 0;
      break;
    }
    char hex[3] = { p[0], p[1], '\0' };
    out[n++] = (unsigned char) strtoul (hex, NULL, 16);
    p += 2;
  }
  if (n != 20 && n != 32) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "--thumbprint %s: want a SHA-1 (20 bytes) or SHA-256 (32 bytes) "
                   "thumbprint in hex, like AA:BB:…", text);
    return -1;
  }
  *len = n;
  return 0;
}

static size_t
write_cb (char *data, size_t size, size_t nmemb, void *userdata)
{
  struct v2k_soap *s = userdata;
  size_t n = size * nmemb;
  if (s->body.len + n > MAX_RESPONSE) {
    s->body_too_large = true;
    return 0;
  }
  sb_addn (&s->body, data, n);
  return n;
}

static size_t
header_cb (char *data, size_t size, size_t nmemb, void *userdata)
{
  struct v2k_soap *s = userdata;
  size_t n = size * nmemb;
  static const char prefix[] = "set-cookie:";
  if (n > sizeof prefix && strncasecmp (data, prefix, sizeof prefix - 1) == 0) {
    const char *v = data + sizeof prefix - 1;
    while (*v == ' ')
      v++;
    if (strncmp (v, COOKIE_NAME "=", sizeof COOKIE_NAME) == 0) {
      size_t len = strcspn (v, ";\r\n");
      free (s->set_cookie);
      s->set_cookie = strndup (v, len);
    }
  }
  return n;
}

static void
free_content (struct v2k_service_content *c)
{
  char **fields[] = { &c->root_folder, &c->property_collector, &c->view_manager,
                      &c->session_manager, &c->search_index, &c->about_full_name,
                      &c->about_version, &c->about_api_version, &c->about_api_type,
                      &c->about_instance_uuid };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    free (*fields[i]);
    *fields[i] = NULL;
  }
}

static bool
transient (CURLcode rc)
{
  return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ||
    rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
    rc == CURLE_PARTIAL_FILE;
}

static void
tls_error (struct v2k_soap *s, CURLcode rc, struct v2k_error *err)
{
  if (s->pin_mismatch)
    v2k_error_set (err, V2K_EXIT_CONNECT,
                   "%s: the server certificate does not match --thumbprint; it has "
                   "SHA-1 %s and SHA-256 %s. Check them with the vCenter administrator, then pin one",
                   s->sdk_url, s->seen_sha1, s->seen_sha256);
  else if (s->seen_sha1[0])
    v2k_error_set (err, V2K_EXIT_CONNECT,
                   "%s: TLS certificate not trusted (%s). Its SHA-1 is %s and SHA-256 %s: "
                   "trust its CA with --ca-file, or pin it with --thumbprint",
                   s->sdk_url, s->verify_error[0] ? s->verify_error
                   : s->curl_error[0] ? s->curl_error : curl_easy_strerror (rc),
                   s->seen_sha1, s->seen_sha256);
  else
    v2k_error_set (err, V2K_EXIT_CONNECT, "%s: TLS failed: %s", s->sdk_url,
                   curl_easy_strerror (rc));
}

/* One HTTP POST. Returns the HTTP status, or -1 with ERR set. */
static long
http_post (struct v2k_soap *s, const char *envelope, bool mutating, struct v2k_error *err)
{
  static const int backoff[] = { 1, 2, 4 };
  for (unsigned attempt = 0; ; attempt++) {
    sb_free (&s->body);
    s->body_too_large = false;
    s->pin_mismatch = false;
    s->verify_error[0] = s->curl_error[0] = '\0';
    curl_easy_setopt (s->curl, CURLOPT_ERRORBUFFER, s->curl_error);
    /* libcurl re-sends a request whose reused connection died; a change must
     * go out once, so it gets a connection of its own. */
    curl_easy_setopt (s->curl, CURLOPT_FRESH_CONNECT, mutating ? 1L : 0L);
    curl_easy_setopt (s->curl, CURLOPT_FORBID_REUSE, mutating ? 1L : 0L);
    struct curl_slist *hdrs = NULL;
    CLEANUP_FREE char *action = NULL;
    if (asprintf (&action, "SOAPAction: \"%s\"", s->soap_action) < 0)
      action = NULL;
    hdrs = curl_slist_append (hdrs, "Content-Type: text/xml; charset=utf-8");
    if (action)
      hdrs = curl_slist_append (hdrs, action);
    curl_easy_setopt (s->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt (s->curl, CURLOPT_POSTFIELDS, envelope);
    curl_easy_setopt (s->curl, CURLOPT_COOKIE, s->cookie);
    CURLcode rc = curl_easy_perform (s->curl);
    curl_slist_free_all (hdrs);
    curl_easy_setopt (s->curl, CURLOPT_POSTFIELDS, NULL);
    if (rc == CURLE_OK) {
      long code = 0;
      curl_easy_getinfo (s->curl, CURLINFO_RESPONSE_CODE, &code);
      if ((code == 502 || code == 503 || code == 504) && !mutating && attempt < 3) {
        sleep ((unsigned) backoff[attempt]);
        continue;
      }
      return code;
    }
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
        rc == CURLE_SSL_CACERT_BADFILE || s->pin_mismatch) {
      if (rc == CURLE_SSL_CACERT_BADFILE)
        v2k_error_set (err, V2K_EXIT_CONNECT, "--ca-file %s: not a readable PEM bundle",
                       s->opts.ca_file);
      else
        tls_error (s, rc, err);
      return -1;
    }
    if (s->body_too_large) {
      v2k_error_set (err, V2K_EXIT_VSPHERE, "%s: reply larger than %u MiB; refused",
                     s->sdk_url, MAX_RESPONSE >> 20);
      return -1;
    }
    if (transient (rc) && !mutating && attempt < 3) {
      sleep ((unsigned) backoff[attempt]);
      continue;
    }
    if (mutating && transient (rc) && rc != CURLE_COULDNT_CONNECT)
      v2k_error_set (err, V2K_EXIT_CONNECT,
                     "%s: %s; the call changes state, so it was not repeated: check "
                     "vCenter's recent tasks, then re-run the command", s->sdk_url,
                     curl_easy_strerror (rc));
    else
      v2k_error_set (err, V2K_EXIT_CONNECT, "%s: %s", s->sdk_url, curl_easy_strerror (rc));
    return -1;
  }
}

void
v2k_fault_to_error (const struct v2k_fault *f, const char *method, struct v2k_error *err)
{
  int code = strcmp (f->name, "InvalidLogin") == 0 || strcmp (f->name, "NotAuthenticated") == 0
    ? V2K_EXIT_CONNECT : V2K_EXIT_VSPHERE;
  char extra[700] = "";
  if (f->invalid_property[0])
    snprintf (extra, sizeof extra, " (property %s)", f->invalid_property);
  else if (f->file[0])
    snprintf (extra, sizeof extra, " (file %s)", f->file);
  v2k_error_set (err, code, "%s: vSphere fault %s%s%s%s", method, f->name, extra,
                 f->message[0] ? ": " : "", f->message);
}

static int soap_login (struct v2k_soap *s, struct v2k_error *err);

static int
call_once (struct v2k_soap *s, const char *method, const char *this_type,
           const char *this_moref, const char *params, bool mutating, xmlDoc **doc,
           xmlNode **resp, struct v2k_error *err)
{
  struct strbuf env = { 0 };
  sb_add (&env, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
          "<soapenv:Envelope xmlns:soapenv=\"" SOAPENV_NS "\" "
          "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"" XSI_NS "\">"
          "<soapenv:Body>");
  sb_addf (&env, "<%s xmlns=\"" VIM25_NS "\"><_this type=\"%s\">", method, this_type);
  sb_add_xml (&env, this_moref);
  sb_add (&env, "</_this>");
  sb_add (&env, params ? params : "");
  sb_addf (&env, "</%s></soapenv:Body></soapenv:Envelope>", method);
  double t0 = v2k_debug_on () ? v2k_monotonic_seconds () : 0;
  long code = http_post (s, env.s, mutating, err);
  /* Names only: the envelope and the reply may hold secrets. */
  if (v2k_debug_on ())
    v2k_debug ("vCenter %s on %s: HTTP %ld in %.3f s", method, this_moref, code,
               v2k_monotonic_seconds () - t0);
  /* The envelope may hold the password (Login): wipe it before freeing. */
  explicit_bzero (env.s, env.len);
  sb_free (&env);
  if (code < 0) {
    v2k_error_prefix (err, "%s", method);
    return -1;
  }
  memset (&s->last_fault, 0, sizeof s->last_fault);
  if (code != 200 && code != 500) {
    v2k_error_set (err, code == 401 || code == 403 ? V2K_EXIT_CONNECT : V2K_EXIT_VSPHERE,
                   "%s: %s answered HTTP %ld", method, s->sdk_url, code);
    return -1;
  }
  xmlDoc *d = v2k_xml_parse (s->body.s ? s->body.s : "", s->body.len, err);
  if (!d) {
    v2k_error_prefix (err, "%s", method);
    return -1;
  }
  xmlNode *body = v2k_soap_body (d);
  if (body && v2k_soap_fault_parse (body, &s->last_fault)) {
    xmlFreeDoc (d);
    v2k_fault_to_error (&s->last_fault, method, err);
    return -1;
  }
  char want[128];
  snprintf (want, sizeof want, "%sResponse", method);
  if (code != 200 || !body || !body->ns || strcmp ((const char *) body->ns->href, VIM25_NS) != 0 ||
      strcmp ((const char *) body->name, want) != 0) {
    xmlFreeDoc (d);
    v2k_error_set (err, V2K_EXIT_VSPHERE, "%s: unexpected reply (HTTP %ld, no %s element)",
                   method, code, want);
    return -1;
  }
  *doc = d;
  *resp = body;
  return 0;
}

int
v2k_soap_call (struct v2k_soap *s, const char *method, const char *this_type,
               const char *this_moref, const char *params, bool mutating,
               xmlDoc **doc, xmlNode **resp, struct v2k_error *err)
{
  if (call_once (s, method, this_type, this_moref, params, mutating, doc, resp, err) == 0)
    return 0;
  if (!s->logged_in || strcmp (s->last_fault.name, "NotAuthenticated") != 0)
    return -1;
  /* The session expired: the call was not run, so logging in again and
   * repeating it is safe even for a call that changes state. */
  s->logged_in = false;
  free (s->cookie);
  s->cookie = NULL;
  struct v2k_error lerr = { 0 };
  if (soap_login (s, &lerr) == -1) {
    *err = lerr;
    v2k_error_prefix (err, "%s: session expired and logging in again failed", method);
    return -1;
  }
  return call_once (s, method, this_type, this_moref, params, mutating, doc, resp, err);
}

/* The vim25 versions: the oldest this tool supports (every call it makes
 * exists there) and the newest it has been checked against. */
#define VIM_OLDEST "5.5"
#define VIM_NEWEST "8.0.3.0"

/* Compares dotted version numbers ("6.7" < "6.7.1" < "7.0"). */
static int
version_cmp (const char *a, const char *b)
{
  for (;;) {
    char *ea, *eb;
    unsigned long x = strtoul (a, &ea, 10), y = strtoul (b, &eb, 10);
    if (x != y)
      return x < y ? -1 : 1;
    bool more_a = *ea == '.', more_b = *eb == '.';
    if (!more_a && !more_b)
      return 0;
    a = more_a ? ea + 1 : ea;   /* an ended version reads as .0 */
    b = more_b ? eb + 1 : eb;
  }
}

static bool
version_valid (const char *v)
{
  if (!v || !*v || strlen (v) > 16)
    return false;
  for (const char *c = v; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (*c == '.' && c != v && c[1] && c[1] != '.')))
      return false;
  return true;
}

/* The version to speak with a server whose newest is SERVER: its own,
 * capped at ours. */
static int
set_version (struct v2k_soap *s, const char *server, struct v2k_error *err)
{
  if (version_cmp (server, VIM_OLDEST) < 0) {
    v2k_error_set (err, V2K_EXIT_VSPHERE, "%s speaks vSphere API %s; this tool needs %s or newer",
                   s->sdk_url, server, VIM_OLDEST);
    return -1;
  }
  const char *use = version_cmp (server, VIM_NEWEST) > 0 ? VIM_NEWEST : server;
  free (s->soap_action);
  if (asprintf (&s->soap_action, "urn:vim25/%s", use) < 0) {
    s->soap_action = NULL;
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  return 0;
}

/* The newest urn:vim25 version in a vimServiceVersions.xml, or NULL. */
static char *
served_version (xmlDoc *doc)
{
  xmlNode *root = xmlDocGetRootElement (doc);
  if (!root || strcmp ((const char *) root->name, "namespaces") != 0)
    return NULL;
  for (xmlNode *ns = root->children; ns; ns = ns->next) {
    if (ns->type != XML_ELEMENT_NODE || strcmp ((const char *) ns->name, "namespace") != 0)
      continue;
    char *name = NULL, *version = NULL;
    for (xmlNode *c = ns->children; c; c = c->next) {
      if (c->type != XML_ELEMENT_NODE)
        continue;
      if (strcmp ((const char *) c->name, "name") == 0 && !name)
        name = (char *) xmlNodeGetContent (c);
      else if (strcmp ((const char *) c->name, "version") == 0 && !version)
        version = (char *) xmlNodeGetContent (c);
    }
    bool vim = name && strcmp (name, "urn:vim25") == 0;
    xmlFree (name);
    if (vim && version_valid (version)) {
      char *v = strdup (version);
      xmlFree (version);
      return v;
    }
    xmlFree (version);
  }
  return NULL;
}

/* Before the first versioned call, as pyVmomi does: the server lists what
 * it speaks in /sdk/vimServiceVersions.xml, and an ESXi or vCenter refuses
 * a SOAPAction newer than its own. Without that file the oldest supported
 * version goes out, which every supported server accepts; the
 * ServiceContent's apiVersion then decides. */
static int
negotiate_version (struct v2k_soap *s, struct v2k_error *err)
{
  CLEANUP_FREE char *url = NULL;
  if (asprintf (&url, "%s/vimServiceVersions.xml", s->sdk_url) < 0) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  sb_free (&s->body);
  s->body_too_large = false;
  curl_easy_setopt (s->curl, CURLOPT_URL, url);
  curl_easy_setopt (s->curl, CURLOPT_HTTPGET, 1L);
  CURLcode rc = curl_easy_perform (s->curl);
  curl_easy_setopt (s->curl, CURLOPT_URL, s->sdk_url);
  long code = 0;
  if (rc == CURLE_OK)
    curl_easy_getinfo (s->curl, CURLINFO_RESPONSE_CODE, &code);
  CLEANUP_FREE char *served = NULL;
  if (code == 200 && s->body.len > 0) {
    struct v2k_error ignored = { 0 };
    xmlDoc *doc = v2k_xml_parse (s->body.s, s->body.len, &ignored);
    if (doc) {
      served = served_version (doc);
      xmlFreeDoc (doc);
    }
  }
  sb_free (&s->body);
  if (v2k_debug_on ())
    v2k_debug ("vSphere: %s/vimServiceVersions.xml: %s", s->sdk_url,
               served ? served : "not served; starting with " VIM_OLDEST);
  return set_version (s, served ? served : VIM_OLDEST, err);
}

static int
read_service_content (struct v2k_soap *s, struct v2k_error *err)
{
  xmlDoc *doc;
  xmlNode *resp;
  if (v2k_soap_call (s, "RetrieveServiceContent", "ServiceInstance", "ServiceInstance", NULL,
                     false, &doc, &resp, err) == -1)
    return -1;
  xmlNode *rv = v2k_xml_child (resp, "returnval");
  xmlNode *about = v2k_xml_child (rv, "about");
  struct v2k_service_content *c = &s->sc;
  c->root_folder = v2k_xml_child_text (rv, "rootFolder");
  c->property_collector = v2k_xml_child_text (rv, "propertyCollector");
  c->view_manager = v2k_xml_child_text (rv, "viewManager");
  c->session_manager = v2k_xml_child_text (rv, "sessionManager");
  c->search_index = v2k_xml_child_text (rv, "searchIndex");
  c->about_full_name = v2k_xml_child_text (about, "fullName");
  c->about_version = v2k_xml_child_text (about, "version");
  c->about_api_version = v2k_xml_child_text (about, "apiVersion");
  c->about_api_type = v2k_xml_child_text (about, "apiType");
  c->about_instance_uuid = v2k_xml_child_text (about, "instanceUuid");
  xmlFreeDoc (doc);
  if (!c->root_folder || !c->property_collector || !c->session_manager || !c->about_api_version) {
    v2k_error_set (err, V2K_EXIT_VSPHERE,
                   "%s: the ServiceContent lacks rootFolder, propertyCollector, sessionManager "
                   "or about.apiVersion; is this a vSphere SDK endpoint?", s->sdk_url);
    return -1;
  }
  if (!version_valid (c->about_api_version)) {
    v2k_error_set (err, V2K_EXIT_VSPHERE, "%s: about.apiVersion is not a version", s->sdk_url);
    return -1;
  }
  return set_version (s, c->about_api_version, err);
}

static int
soap_login (struct v2k_soap *s, struct v2k_error *err)
{
  struct strbuf p = { 0 };
  sb_add (&p, "<userName>");
  sb_add_xml (&p, s->opts.username);
  sb_add (&p, "</userName><password>");
  sb_add_xml (&p, s->opts.password);
  sb_add (&p, "</password>");
  free (s->set_cookie);
  s->set_cookie = NULL;
  xmlDoc *doc;
  xmlNode *resp;
  int r = call_once (s, "Login", "SessionManager", s->sc.session_manager, p.s, false,
                     &doc, &resp, err);
  explicit_bzero (p.s, p.len);
  sb_free (&p);
  if (r == -1) {
    if (strcmp (s->last_fault.name, "InvalidLogin") == 0)
      v2k_error_set (err, V2K_EXIT_CONNECT,
                     "%s: login failed for user '%s': wrong user name or password", s->sdk_url,
                     s->opts.username);
    return -1;
  }
  xmlFreeDoc (doc);
  if (!s->set_cookie) {
    v2k_error_set (err, V2K_EXIT_CONNECT, "%s: Login succeeded but set no %s cookie",
                   s->sdk_url, COOKIE_NAME);
    return -1;
  }
  free (s->cookie);
  s->cookie = s->set_cookie;
  s->set_cookie = NULL;
  s->logged_in = true;
  s->generation++;
  return 0;
}

struct v2k_soap *
v2k_soap_connect (const struct v2k_vsphere_opts *opts, struct v2k_error *err)
{
  static bool global_init;
  if (!global_init) {
    curl_global_init (CURL_GLOBAL_DEFAULT);
    xmlInitParser ();
    global_init = true;
  }
  if (!opts->username || !*opts->username) {
    v2k_error_set (err, V2K_EXIT_USAGE, "no vSphere user: pass --username or set GOVC_USERNAME");
    return NULL;
  }
  if (!opts->password || !*opts->password) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "no vSphere password: use --password-file FILE, GOVC_PASSWORD, or a terminal prompt");
    return NULL;
  }
  struct v2k_soap *s = calloc (1, sizeof *s);
  if (!s) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  s->opts = *opts;
  s->soap_action = strdup ("urn:vim25/" VIM_OLDEST);
  if (!(s->sdk_url = v2k_vsphere_sdk_url (opts->url, err)))
    goto fail;
  if (opts->thumbprint && *opts->thumbprint &&
      parse_thumbprint (opts->thumbprint, s->pin, &s->pin_len, err) == -1)
    goto fail;
  if (!(s->curl = curl_easy_init ())) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "cannot initialise libcurl");
    goto fail;
  }
  CURL *c = s->curl;
  curl_easy_setopt (c, CURLOPT_URL, s->sdk_url);
  curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt (c, CURLOPT_WRITEDATA, s);
  curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt (c, CURLOPT_HEADERDATA, s);
  curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT, opts->connect_timeout > 0 ? opts->connect_timeout : 30L);
  curl_easy_setopt (c, CURLOPT_TIMEOUT, opts->call_timeout > 0 ? opts->call_timeout : 300L);
  curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 0L);
  /* Also with --insecure: the callback records the certificate's
   * thumbprints, which VDDK needs (v2k_soap_thumbprint_sha1), and accepts. */
  curl_easy_setopt (c, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
  curl_easy_setopt (c, CURLOPT_SSL_CTX_DATA, s);
  if (opts->insecure) {
    curl_easy_setopt (c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt (c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  else {
    curl_easy_setopt (c, CURLOPT_SSL_VERIFYPEER, 1L);
    /* A pinned certificate is trusted by its hash, not by its names. */
    curl_easy_setopt (c, CURLOPT_SSL_VERIFYHOST, s->pin_len ? 0L : 2L);
    if (opts->ca_file && *opts->ca_file) {
      if (access (opts->ca_file, R_OK) < 0) {
        v2k_error_errno (err, V2K_EXIT_USAGE, "--ca-file %s", opts->ca_file);
        goto fail;
      }
      curl_easy_setopt (c, CURLOPT_CAINFO, opts->ca_file);
    }
  }
  if (negotiate_version (s, err) == -1 || read_service_content (s, err) == -1 ||
      soap_login (s, err) == -1)
    goto fail;
  return s;

 fail:
  v2k_soap_close (s);
  return NULL;
}

void
v2k_soap_close (struct v2k_soap *s)
{
  if (!s)
    return;
  if (s->logged_in) {
    struct v2k_error ignored = { 0 };
    xmlDoc *doc;
    xmlNode *resp;
    s->logged_in = false;  /* no re-login for the logout itself */
    if (call_once (s, "Logout", "SessionManager", s->sc.session_manager, NULL, false,
                   &doc, &resp, &ignored) == 0)
      xmlFreeDoc (doc);
  }
  if (s->curl)
    curl_easy_cleanup (s->curl);
  free_content (&s->sc);
  free (s->sdk_url);
  free (s->cookie);
  free (s->set_cookie);
  free (s->soap_action);
  sb_free (&s->body);
  free (s);
}

const struct v2k_service_content *
v2k_soap_content (const struct v2k_soap *s)
{
  return &s->sc;
}

const char *
v2k_soap_url (const struct v2k_soap *s)
{
  return s->sdk_url;
}

const char *
v2k_soap_thumbprint_sha1 (const struct v2k_soap *s)
{
  return s->seen_sha1;
}

const struct v2k_fault *
v2k_soap_last_fault (const struct v2k_soap *s)
{
  return &s->last_fault;
}

unsigned
v2k_soap_session_generation (const struct v2k_soap *s)
{
  return s->generation;
}
