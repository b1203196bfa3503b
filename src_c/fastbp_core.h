/* Public header of the fastbp C core: every kernel, for float (_f32) and double (_f64). */
#ifndef FASTBP_CORE_H
#define FASTBP_CORE_H

#include "fb_common.h"

#define FB_DECLARATIONS "fastbp_core_tpl.h"
#include "fb_declare.h"

/* Integer labels need no float variant. */
void gather_labels_i64(const int64_t *restrict src, const int64_t *restrict indices, ptrdiff_t n,
                   int64_t *restrict out);

#endif
