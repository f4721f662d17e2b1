#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "connopts.h"
#include "../util/cleanup.h"

static int
seconds (const char *opt, const char *arg, long *out, struct v2k_error *err)
{
  char *end;
  long v = strtol (arg, &end, 10);
  if (!*arg || *end || v <= 0 || v > 86400 * 7) {
    v2k_error_set (err, V2K_EXIT_USAGE, "%s: '%s' is not a number of seconds (1 to 604800)",
                   opt, arg);
    return -1;
  }
  *out = v;
  return 0;
}

int
v2k_conn_getopt (int c, const char *arg, struct v2k_conn_args *a, struct v2k_error *err)
{
  switch (c) {
  case OPT_VCENTER: a->vcenter = arg; return 1;
  case OPT_USERNAME: a->username = arg; return 1;
  case OPT_PASSWORD_FILE: a->password_file = arg; return 1;
  case OPT_CA_FILE: a->ca_file = arg; return 1;
  case OPT_THUMBPRINT: a->thumbprint = arg; return 1;
  case OPT_INSECURE: a->insecure = true; return 1;
  case OPT_CONNECT_TIMEOUT: return seconds ("--connect-timeout", arg, &a->connect_timeout, err) ? -1 : 1;
  case OPT_CALL_TIMEOUT: return seconds ("--call-timeout", arg, &a->call_timeout, err) ? -1 : 1;
  case OPT_TASK_TIMEOUT: return seconds ("--task-timeout", arg, &a->task_timeout, err) ? -1 : 1;
  }
  return 0;
}

static char *
prompt_password (const char *user, struct v2k_error *err)
{
  int fd = open ("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "no vSphere password: use --password-file FILE or GOVC_PASSWORD "
                   "(no terminal to prompt on)");
    return NULL;
  }
  struct termios old, quiet;
  bool restore = tcgetattr (fd, &old) == 0;
  if (restore) {
    quiet = old;
    quiet.c_lflag &= (tcflag_t) ~ECHO;
    tcsetattr (fd, TCSAFLUSH, &quiet);
  }
  dprintf (fd, "vSphere password for %s: ", user ? user : "?");
  char buf[1024];
  ssize_t n = read (fd, buf, sizeof buf - 1);
  if (restore)
    tcsetattr (fd, TCSAFLUSH, &old);
  dprintf (fd, "\n");
  close (fd);
  if (n <= 0) {
    v2k_error_set (err, V2K_EXIT_USAGE, "no password entered");
    return NULL;
  }
  buf[n] = '\0';
  buf[strcspn (buf, "\r\n")] = '\0';
  char *p = strdup (buf);
  explicit_bzero (buf, sizeof buf);
  return p;
}

/* The first line of FILE. Unlike workdir files it may be a symlink or a
 * pipe (--password-file <(pass show …)). */
static char *
read_password_file (const char *file, struct v2k_error *err)
{
  int fd = open (file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    v2k_error_errno (err, V2K_EXIT_USAGE, "--password-file %s", file);
    return NULL;
  }
  char buf[4097];
  size_t len = 0;
  ssize_t n;
  while (len < sizeof buf - 1 && (n = read (fd, buf + len, sizeof buf - 1 - len)) != 0) {
    if (n < 0) {
      if (errno == EINTR)
        continue;
      v2k_error_errno (err, V2K_EXIT_USAGE, "--password-file %s", file);
      close (fd);
      explicit_bzero (buf, sizeof buf);
      return NULL;
    }
    len += (size_t) n;
  }
  close (fd);
  buf[len] = '\0';
  buf[strcspn (buf, "\r\n")] = '\0';
  char *p = strdup (buf);
  explicit_bzero (buf, sizeof buf);
  return p;
}

int
v2k_conn_finish (struct v2k_conn_args *a, struct v2k_vsphere_opts *o, struct v2k_error *err)
{
  if (!a->vcenter)
    a->vcenter = getenv ("GOVC_URL");
  if (!a->username)
    a->username = getenv ("GOVC_USERNAME");
  if (!a->ca_file) {
    const char *ca = getenv ("GOVC_TLS_CA_CERTS");
    if (ca && *ca)
      a->ca_file = ca;
  }
  const char *ins = getenv ("GOVC_INSECURE");
  if (!a->insecure && ins && (strcmp (ins, "1") == 0 || strcasecmp (ins, "true") == 0))
    a->insecure = true;
  if (a->insecure && a->thumbprint) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--insecure and --thumbprint conflict: pin or skip, not both");
    return -1;
  }
  if (!a->vcenter || !*a->vcenter) {
    v2k_error_set (err, V2K_EXIT_USAGE, "no vCenter given: pass --vcenter HOST or set GOVC_URL");
    return -1;
  }
  if (!a->username || !*a->username) {
    v2k_error_set (err, V2K_EXIT_USAGE, "no vSphere user: pass --username or set GOVC_USERNAME");
    return -1;
  }
  if (!a->password) {
    if (a->password_file) {
      if (!(a->password = read_password_file (a->password_file, err)))
        return -1;
      if (!*a->password) {
        v2k_error_set (err, V2K_EXIT_USAGE, "--password-file %s is empty", a->password_file);
        return -1;
      }
    }
    else if (getenv ("GOVC_PASSWORD") && *getenv ("GOVC_PASSWORD"))
      a->password = strdup (getenv ("GOVC_PASSWORD"));
    else if (!(a->password = prompt_password (a->username, err)))
      return -1;
  }
  memset (o, 0, sizeof *o);
  o->url = a->vcenter;
  o->username = a->username;
  o->password = a->password;
  o->ca_file = a->ca_file;
  o->thumbprint = a->thumbprint;
  o->insecure = a->insecure;
  o->connect_timeout = a->connect_timeout;
  o->call_timeout = a->call_timeout;
  return 0;
}

void
v2k_conn_args_free (struct v2k_conn_args *a)
{
  if (a->password) {
    explicit_bzero (a->password, strlen (a->password));
    free (a->password);
    a->password = NULL;
  }
}
