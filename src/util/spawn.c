#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "spawn.h"
#include "strbuf.h"

/* What a child may see of our environment: locale, paths, nothing secret. */
static const char *const env_allow[] = {
  "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TMPDIR", "TZ",
  "LIBGUESTFS_BACKEND", "LIBGUESTFS_BACKEND_SETTINGS", NULL,
};

static char **
build_env (const char *const *extra)
{
  size_t n = 0, cap = 16;
  char **env = calloc (cap + 1, sizeof *env);
  if (!env)
    return NULL;
  for (size_t i = 0; env_allow[i]; i++) {
    const char *v = getenv (env_allow[i]);
    if (v && n < cap) {
      if (asprintf (&env[n], "%s=%s", env_allow[i], v) >= 0)
        n++;
    }
  }
  for (size_t i = 0; extra && extra[i]; i++) {
    if (n == cap) {
      char **p = realloc (env, (cap * 2 + 1) * sizeof *env);
      if (!p)
        break;
      env = p;
      cap *= 2;
    }
    env[n++] = strdup (extra[i]);
  }
  env[n] = NULL;
  return env;
}

static void
free_env (char **env)
{
  for (size_t i = 0; env && env[i]; i++)
    free (env[i]);
  free (env);
}

/* Finds NAME in PATH before the fork, so the child only calls execve. */
static char *
resolve (const char *name)
{
  if (strchr (name, '/'))
    return strdup (name);
  const char *path = getenv ("PATH");
  if (!path || !*path)
    path = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
  for (const char *p = path; *p; ) {
    size_t n = strcspn (p, ":");
    char *cand;
    if (asprintf (&cand, "%.*s/%s", (int) n, p, name) >= 0) {
      if (access (cand, X_OK) == 0)
        return cand;
      free (cand);
    }
    p += n;
    if (*p == ':')
      p++;
  }
  return NULL;
}

pid_t
v2k_spawn_start (const struct v2k_spawn *sp, struct v2k_error *err)
{
  CLEANUP_FREE char *exe = resolve (sp->argv[0]);
  if (!exe) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "cannot run %s: not found in PATH (is it installed?)",
                   sp->argv[0]);
    return -1;
  }
  char **env = build_env (sp->extra_env);
  if (!env) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  int logfd = open (sp->log_file ? sp->log_file : "/dev/null",
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (logfd < 0) {
    v2k_error_errno (err, V2K_EXIT_INTERNAL, "opening %s", sp->log_file);
    free_env (env);
    return -1;
  }
  pid_t parent = getpid ();
  int errpipe[2];
  if (pipe2 (errpipe, O_CLOEXEC) < 0) {
    v2k_error_errno (err, V2K_EXIT_INTERNAL, "pipe");
    close (logfd);
    free_env (env);
    return -1;
  }
  pid_t pid = fork ();
  if (pid < 0) {
    v2k_error_errno (err, V2K_EXIT_INTERNAL, "fork");
    close (logfd);
    close (errpipe[0]);
    close (errpipe[1]);
    free_env (env);
    return -1;
  }
  if (pid == 0) {
    /* In the child: only async-signal-safe calls from here on. */
    prctl (PR_SET_PDEATHSIG, SIGTERM);
    if (getppid () != parent)
      _exit (127);
    setpgid (0, 0);  /* our terminal's ^C is ours to handle, not the child's */
    int nullfd = open ("/dev/null", O_RDONLY);
    if (nullfd >= 0) {
      dup2 (nullfd, 0);
      close (nullfd);
    }
    dup2 (logfd, 1);
    dup2 (logfd, 2);
    for (size_t i = 0; i < sp->n_keep_fds; i++) {
      int fl = fcntl (sp->keep_fds[i], F_GETFD);
      if (fl >= 0)
        fcntl (sp->keep_fds[i], F_SETFD, fl & ~FD_CLOEXEC);
    }
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    signal (SIGPIPE, SIG_DFL);
    execve (exe, (char *const *) sp->argv, env);
    int e = errno;
    if (write (errpipe[1], &e, sizeof e) < 0) { /* nothing more to do */ }
    _exit (127);
  }
  close (errpipe[1]);
  close (logfd);
  free_env (env);
  int child_errno = 0;
  ssize_t n;
  do
    n = read (errpipe[0], &child_errno, sizeof child_errno);
  while (n < 0 && errno == EINTR);
  close (errpipe[0]);
  if (n == sizeof child_errno) {
    waitpid (pid, NULL, 0);
    errno = child_errno;
    v2k_error_errno (err, V2K_EXIT_INTERNAL, "cannot run %s", sp->argv[0]);
    return -1;
  }
  if (sp->pid_file) {
    FILE *fp = fopen (sp->pid_file, "we");
    if (fp) {
      fprintf (fp, "%ld\n", (long) pid);
      fclose (fp);
    }
  }
  if (v2k_debug_on ()) {
    /* The command line as given (no secret is ever in one), on one line:
     * a word with a space, quote or control character is quoted, control
     * characters as \xNN. */
    struct strbuf line = { 0 };
    for (size_t i = 0; sp->argv[i]; i++) {
      const char *a = sp->argv[i];
      bool quote = !*a || strpbrk (a, " '\"\\$") != NULL;
      for (const char *c = a; *c && !quote; c++)
        quote = (unsigned char) *c < 0x20 || *c == 0x7f;
      sb_add (&line, i ? " " : "");
      if (quote) {
        sb_add (&line, "'");
        for (const char *c = a; *c; c++) {
          if (*c == '\'')
            sb_add (&line, "'\\''");
          else if ((unsigned char) *c < 0x20 || *c == 0x7f)
            sb_addf (&line, "\\x%02x", (unsigned char) *c);
          else
            sb_addn (&line, c, 1);
        }
        sb_add (&line, "'");
      }
      else
        sb_add (&line, a);
    }
    v2k_debug ("spawned pid %ld: %s", (long) pid, line.s ? line.s : "");
    sb_free (&line);
  }
  return pid;
}

int
v2k_spawn_run (const struct v2k_spawn *sp, int *status, struct v2k_error *err)
{
  pid_t pid = v2k_spawn_start (sp, err);
  if (pid < 0)
    return -1;
  int st;
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR) {
      v2k_error_errno (err, V2K_EXIT_INTERNAL, "waiting for %s", sp->argv[0]);
      return -1;
    }
  if (sp->pid_file)
    unlink (sp->pid_file);
  *status = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
  return 0;
}

static bool
reaped (pid_t pid)
{
  int st;
  pid_t r = waitpid (pid, &st, WNOHANG);
  return r == pid || (r < 0 && errno == ECHILD && kill (pid, 0) < 0);
}

void
v2k_spawn_stop (pid_t pid, const char *pid_file, int grace_ms)
{
  if (pid > 0) {
    kill (pid, SIGTERM);
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    int waited = 0;
    while (!reaped (pid) && waited < grace_ms) {
      nanosleep (&ts, NULL);
      waited += 10;
    }
    if (waited >= grace_ms) {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
    }
  }
  if (pid_file)
    unlink (pid_file);
}

bool
v2k_pid_is (pid_t pid, const char *comm)
{
  char path[64], buf[512];
  snprintf (path, sizeof path, "/proc/%ld/stat", (long) pid);
  CLEANUP_CLOSE int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read (fd, buf, sizeof buf - 1);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  char *open_paren = strchr (buf, '('), *close_paren = strrchr (buf, ')');
  if (!open_paren || !close_paren || close_paren[1] != ' ')
    return false;
  char state = close_paren[2];
  if (state == 'Z' || state == 'X')
    return false;
  *close_paren = '\0';
  return strcmp (open_paren + 1, comm) == 0;
}
