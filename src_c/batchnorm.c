/* Batch normalization over the rows of a (batch, features) matrix. */
#include <math.h>

#include "fastbp_core.h"

/* Columns handled together by one thread in the column statistics; each column is summed in row
 * order in double, so the statistics do not depend on the thread count. */
#define FB_BN_COLUMN_BLOCK 32
/* The columns j0 .. j0 + width of column block b, in a loop over blocks. */
#define FB_BN_BLOCK(b)                                                                        \
    const ptrdiff_t j0 = (b) * FB_BN_COLUMN_BLOCK;                                            \
    const ptrdiff_t width = cols - j0 < FB_BN_COLUMN_BLOCK ? cols - j0 : FB_BN_COLUMN_BLOCK;

#define FB_TEMPLATE "batchnorm_tpl.h"
#include "fb_instantiate.h"
