/* The one table of exit codes. docs/exit-codes.md documents each of them;
 * keep the two in step. */
#ifndef V2K_EXITCODES_H
#define V2K_EXITCODES_H

enum v2k_exit {
  V2K_EXIT_OK = 0,
  V2K_EXIT_INTERNAL = 1,    /* a bug or an unexpected system failure */
  V2K_EXIT_USAGE = 2,       /* bad command line */
  V2K_EXIT_WORKDIR = 3,     /* workdir or manifest missing, unreadable or invalid */
  V2K_EXIT_LOCKED = 4,      /* another command holds the workdir lock */
  V2K_EXIT_CONNECT = 5,     /* vSphere connection, authentication or TLS */
  V2K_EXIT_VSPHERE = 6,     /* a vSphere fault or failed task */
  V2K_EXIT_CBT = 7,         /* CBT integrity: reset epoch, bad changed areas */
  V2K_EXIT_TRANSFER = 8,    /* reading the source or copying failed */
  V2K_EXIT_TARGET = 9,      /* the target disk or storage refused or failed */
  V2K_EXIT_LIBVIRT = 10,    /* libvirt define/start failed */
  V2K_EXIT_VERIFY = 11,     /* verify found a target that differs from its source */
  V2K_EXIT_CLOUD = 12,      /* the ABLESTACK cloud API refused, failed or could not be reached */
  V2K_EXIT_INTERRUPTED = 130, /* stopped by SIGINT/SIGTERM at a safe point */
};

/* The stable name of a code, as printed in JSON errors ("usage", "locked"…). */
const char *v2k_exit_name (int code);

#endif
