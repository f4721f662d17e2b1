#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source.h"
#include "../util/cleanup.h"
#include "../util/strbuf.h"
#include "../vsphere/inventory.h"

char *
v2k_source_local_path (const struct v2k_manifest *m, const char *file_name,
                       struct v2k_error *err)
{
  char *ds, *path;
  if (v2k_datastore_path_parse (file_name, &ds, &path) == -1) {
    v2k_error_set (err, V2K_EXIT_TRANSFER, "'%s' is not a datastore path", file_name);
    return NULL;
  }
  const char *dir = NULL;
  for (size_t i = 0; i < m->transport.n_datastore_map; i++)
    if (strcmp (m->transport.datastore_map[i].key, ds) == 0)
      dir = m->transport.datastore_map[i].value;
  char *out = NULL;
  if (!dir)
    v2k_error_set (err, V2K_EXIT_TRANSFER, "datastore '%s' of %s has no --datastore-map entry", ds,
                   file_name);
  else if (strstr (path, "../") || path[0] == '/')
    v2k_error_set (err, V2K_EXIT_TRANSFER, "refusing datastore path %s: it leaves the datastore",
                   file_name);
  else if (asprintf (&out, "%s/%s", dir, path) < 0)
    out = NULL;
  free (ds);
  free (path);
  return out;
}

/* The length of the host part of "host", "host:port" or "[v6]:port". */
static size_t
host_length (const char *hostport)
{
  if (hostport[0] == '[') {
    const char *close = strchr (hostport, ']');
    return close ? (size_t) (close - hostport + 1) : strlen (hostport);
  }
  return strcspn (hostport, ":");
}

static struct v2k_endpoint *
open_vddk (const struct v2k_source_args *a, const char *name, struct v2k_server *srv,
           struct v2k_error *err)
{
  const struct v2k_manifest *m = a->m;
  /* The password reaches nbdkit through a pipe it inherits: never argv,
   * never a file left on disk. */
  int pfd[2];
  if (pipe2 (pfd, O_CLOEXEC) < 0) {
    v2k_error_errno (err, V2K_EXIT_INTERNAL, "pipe");
    return NULL;
  }
  size_t plen = strlen (a->password ? a->password : "");
  if (plen >= 65536 || write (pfd[1], a->password ? a->password : "", plen) != (ssize_t) plen) {
    v2k_error_errno (err, V2K_EXIT_INTERNAL, "passing the password to nbdkit");
    close (pfd[0]);
    close (pfd[1]);
    return NULL;
  }
  close (pfd[1]);
  CLEANUP_FREE char *config = NULL, *libdir = NULL, *server = NULL, *user = NULL, *password = NULL,
    *thumb = NULL, *vm = NULL, *snap = NULL, *file = NULL, *transports = NULL;
  if (asprintf (&config, "%s/vddk.conf", a->workdir) < 0)
    config = NULL;
  int cf = config ? open (config, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
  if (cf >= 0)
    close (cf);   /* empty on purpose: no host-wide VDDK configuration leaks in */
  /* V2K_NBDKIT_VDDK_PLUGIN: a plugin name or .so path, optionally followed
   * by a script for a scripting plugin ("sh /path/script"). */
  const char *override = getenv ("V2K_NBDKIT_VDDK_PLUGIN");
  CLEANUP_FREE char *plugin_buf = strdup (override && *override ? override : "vddk");
  if (!plugin_buf) {
    close (pfd[0]);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  char *plugin = plugin_buf, *script = strchr (plugin_buf, ' ');
  if (script) {
    *script++ = '\0';
    while (*script == ' ')
      script++;
  }
  if (asprintf (&libdir, "libdir=%s", m->transport.vddk_libdir ? m->transport.vddk_libdir : "") < 0 ||
      asprintf (&server, "server=%.*s", (int) host_length (a->vcenter_host), a->vcenter_host) < 0 ||
      asprintf (&user, "user=%s", a->username ? a->username : "") < 0 ||
      asprintf (&password, "password=-%d", pfd[0]) < 0 ||
      asprintf (&thumb, "thumbprint=%s", m->transport.vddk_thumbprint ? m->transport.vddk_thumbprint : "") < 0 ||
      asprintf (&vm, "vm=moref=%s", m->source.vm.moref) < 0 ||
      (a->snapshot && asprintf (&snap, "snapshot=%s", a->snapshot) < 0) ||
      asprintf (&file, "file=%s", a->file_name) < 0 ||
      asprintf (&transports, "transports=%s", m->transport.vddk_transports ? m->transport.vddk_transports : "nbdssl:nbd") < 0) {
    close (pfd[0]);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  CLEANUP_FREE char *cfgarg = NULL, *port = NULL;
  const char *colon = a->vcenter_host + host_length (a->vcenter_host);
  if (*colon == ':' && strcmp (colon + 1, "443") != 0 && asprintf (&port, "port=%s", colon + 1) < 0)
    port = NULL;
  if (asprintf (&cfgarg, "config=%s", config ? config : "/dev/null") < 0)
    cfgarg = NULL;
  /* retry: transient NFC errors (3 tries, 1 s then 2 s apart: a persistent
   * error surfaces within seconds, not minutes); blocksize maxdata=2M:
   * larger VDDK requests fail with NFC allocation errors. Filters wrap the
   * plugin in this order. */
  const char *args[20];
  size_t n = 0;
  args[n++] = "--readonly";
  args[n++] = "--filter=retry";
  args[n++] = "--filter=blocksize";
  args[n++] = plugin;
  if (script && *script)
    args[n++] = script;
  const char *params[] = { libdir, server, user, password, thumb, vm, snap, file, transports,
                           cfgarg, "maxdata=2M", "retries=3", "retry-delay=1" };
  /* Without a snapshot (verify after cutover), VDDK opens the VM's own disk. */
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
    if (params[i])
      args[n++] = params[i];
  if (port)
    args[n++] = port;
  args[n] = NULL;
  int keep[] = { pfd[0] };
  int r = v2k_server_nbdkit (a->rundir, name, args, keep, 1, NULL, srv, err);
  close (pfd[0]);
  if (r == -1) {
    v2k_error_prefix (err, "VDDK source for %s", a->disk->id);
    return NULL;
  }
  return v2k_nbd_open (srv->uri, name, false, (size_t) a->connections, err);
}

struct v2k_endpoint *
v2k_source_open (const struct v2k_source_args *a, struct v2k_server *srv, struct v2k_error *err)
{
  char name[128];
  snprintf (name, sizeof name, "source-%lld", (long long) a->disk->key);
  switch (a->m->transport.kind) {
  case TRANSPORT_FILE: {
    CLEANUP_FREE char *path = v2k_source_local_path (a->m, a->file_name, err);
    if (!path)
      return NULL;
    if (access (path, R_OK) < 0) {
      v2k_error_errno (err, V2K_EXIT_TRANSFER, "disk %s: snapshot backing %s (%s)", a->disk->id,
                       path, a->file_name);
      return NULL;
    }
    if (v2k_server_qemu_nbd (a->rundir, name, path, "vmdk", true, a->connections, srv, err) == -1)
      return NULL;
    return v2k_nbd_open (srv->uri, name, false, (size_t) a->connections, err);
  }
  case TRANSPORT_VDDK:
    return open_vddk (a, name, srv, err);
  case TRANSPORT_NBD: {
    /* "{key}" in the URI becomes the disk's device key. */
    struct strbuf u = { 0 };
    const char *t = a->m->transport.source_nbd, *p;
    while ((p = strstr (t, "{key}"))) {
      sb_addn (&u, t, (size_t) (p - t));
      sb_addf (&u, "%lld", (long long) a->disk->key);
      t = p + 5;
    }
    sb_add (&u, t);
    if (a->m->n_disks > 1 && !strstr (a->m->transport.source_nbd, "{key}")) {
      sb_free (&u);
      v2k_error_set (err, V2K_EXIT_USAGE,
                     "--source-nbd must contain {key} (the disk's device key) for a VM with several disks");
      return NULL;
    }
    struct v2k_endpoint *ep = v2k_nbd_open (u.s, name, false, (size_t) a->connections, err);
    sb_free (&u);
    return ep;
  }
  }
  v2k_error_set (err, V2K_EXIT_INTERNAL, "unknown transport");
  return NULL;
}
