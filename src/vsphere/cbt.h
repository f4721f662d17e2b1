/* Changed Block Tracking: turning it on and off, and the changed areas of a
 * disk, paged to the end of the disk and checked page by page. */
#ifndef V2K_VSPHERE_CBT_H
#define V2K_VSPHERE_CBT_H

#include <stdbool.h>
#include <stdint.h>
#include "soap.h"
#include "../transfer/extents.h"

/* Sets config.changeTrackingEnabled with ReconfigVM_Task and reads it back. */
int v2k_cbt_set (struct v2k_soap *s, const char *vm, bool on, int timeout,
                 struct v2k_error *err);

/* QueryChangedDiskAreas for SNAPSHOT (NULL: the powered-off VM itself),
 * device KEY and CHANGE_ID ("*" for the allocated areas), paged from 0 until
 * the replies cover exactly [0, CAPACITY). Any deviation (a reply that does
 * not start where asked, a zero or overlong length, an area outside its page,
 * unsorted or overlapping areas) fails closed with the page and offset in the
 * error, code V2K_EXIT_CBT. A rejected changeId is a CBT integrity error
 * with the recovery steps. PAGES (may be NULL) gets the number of calls. */
int v2k_changed_areas_query (struct v2k_soap *s, const char *vm, const char *snapshot,
                             int64_t key, int64_t capacity, const char *change_id,
                             v2k_extents *out, int *pages, struct v2k_error *err);

/* Checks one reply: it must start at OFFSET, stay inside CAPACITY, and hold
 * sorted areas inside its range that start at or after *PREV_END. Appends
 * the areas and sets *NEXT to the end of the range. */
int v2k_changed_areas_page (xmlNode *resp, int64_t offset, int64_t capacity, int page,
                            int64_t *prev_end, v2k_extents *out, int64_t *next,
                            struct v2k_error *err);

/* The tracking epoch of a changeId: the UUID half before the '/'. Two
 * changeIds of one disk with different epochs mean that CBT was reset. */
bool v2k_change_id_same_epoch (const char *a, const char *b);

#endif
