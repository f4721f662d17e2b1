/* The connection options shared by every command that talks to vSphere,
 * with the GOVC_* variables of the v1 workflow as fallbacks. The password
 * comes from --password-file, GOVC_PASSWORD or a no-echo terminal prompt,
 * never from argv. */
#ifndef V2K_VSPHERE_CONNOPTS_H
#define V2K_VSPHERE_CONNOPTS_H

#include <getopt.h>
#include <stdbool.h>
#include "soap.h"

enum {
  OPT_VCENTER = 1000, OPT_USERNAME, OPT_PASSWORD_FILE, OPT_CA_FILE, OPT_THUMBPRINT,
  OPT_INSECURE, OPT_CONNECT_TIMEOUT, OPT_CALL_TIMEOUT, OPT_TASK_TIMEOUT,
  OPT_CONN_LAST,
};

#define V2K_CONN_OPTIONS \
  { "vcenter", required_argument, NULL, OPT_VCENTER }, \
  { "username", required_argument, NULL, OPT_USERNAME }, \
  { "password-file", required_argument, NULL, OPT_PASSWORD_FILE }, \
  { "ca-file", required_argument, NULL, OPT_CA_FILE }, \
  { "thumbprint", required_argument, NULL, OPT_THUMBPRINT }, \
  { "insecure", no_argument, NULL, OPT_INSECURE }, \
  { "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT }, \
  { "call-timeout", required_argument, NULL, OPT_CALL_TIMEOUT }, \
  { "task-timeout", required_argument, NULL, OPT_TASK_TIMEOUT }

#define V2K_CONN_HELP \
  "Connection (flags, else the GOVC_* variables of examples/govc.env.example):\n" \
  "  --vcenter URL          host, host:port or https://host/sdk (GOVC_URL)\n" \
  "  --username USER        (GOVC_USERNAME)\n" \
  "  --password-file FILE   read the password from FILE; else GOVC_PASSWORD, else\n" \
  "                         a prompt on the terminal\n" \
  "  --ca-file PEM          trust this CA instead of the system store (GOVC_TLS_CA_CERTS)\n" \
  "  --thumbprint TP        pin the server certificate (SHA-1 or SHA-256, AA:BB:…)\n" \
  "  --insecure             do not verify TLS at all (GOVC_INSECURE=1); recorded as a warning\n" \
  "  --connect-timeout SEC  (default 30)   --call-timeout SEC  (default 300)\n" \
  "  --task-timeout SEC     how long to wait for a vSphere task (default 3600)\n"

struct v2k_conn_args {
  const char *vcenter, *username, *password_file, *ca_file, *thumbprint;
  bool insecure;
  long connect_timeout, call_timeout, task_timeout;
  char *password;             /* owned, wiped by v2k_conn_args_free */
};

/* Handles option C; returns 1 if it was a connection option, 0 if not, -1
 * on a bad value. */
int v2k_conn_getopt (int c, const char *arg, struct v2k_conn_args *a, struct v2k_error *err);
/* Applies the environment fallbacks, reads the password and fills OPTS
 * (which points into A). */
int v2k_conn_finish (struct v2k_conn_args *a, struct v2k_vsphere_opts *opts, struct v2k_error *err);
void v2k_conn_args_free (struct v2k_conn_args *a);

#endif
