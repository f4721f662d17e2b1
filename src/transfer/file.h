/* The file endpoint: a raw file or block device read and written directly
 * with pread/pwrite, with no NBD server in between. */
#ifndef V2K_FILE_H
#define V2K_FILE_H

#include <stdbool.h>
#include "endpoint.h"

struct v2k_endpoint *v2k_file_open (const char *path, const char *name, bool writable,
                                    struct v2k_error *err);

#endif
