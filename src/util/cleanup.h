/* Cleanup attributes in the style of nbdkit's common/utils: a variable
 * declared with one of these is released on every path out of its scope. */
#ifndef V2K_CLEANUP_H
#define V2K_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void v2k_cleanup_free (void *ptr);
void v2k_cleanup_fclose (FILE **fp);
void v2k_cleanup_close (int *fd);

#define CLEANUP_FREE __attribute__ ((cleanup (v2k_cleanup_free)))
#define CLEANUP_FCLOSE __attribute__ ((cleanup (v2k_cleanup_fclose)))
#define CLEANUP_CLOSE __attribute__ ((cleanup (v2k_cleanup_close)))

/* Hands ownership out of a CLEANUP_ variable: returns it and clears it. */
#define STEAL(var) ({ __typeof__ (var) stolen_ = (var); (var) = 0; stolen_; })

#endif
