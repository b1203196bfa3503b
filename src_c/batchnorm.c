/* Batch normalization over the rows of a (batch, features) matrix. */
#include <math.h>

#include "fastbp_core.h"

/* Columns handled together by one thread in the column statistics; each column is summed in row
 * order in double, so the statistics do not depend on the thread count. */
#define FB_BN_COLUMN_BLOCK 32

#define FB_TEMPLATE "batchnorm_tpl.h"
#include "fb_instantiate.h"
