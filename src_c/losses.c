/* Fused losses: one pass gives the mean loss and its gradient (or, for the weighted ones, the
 * weighted mean of the rows' losses). */
#include <tgmath.h>

#include "fastbp_core.h"

#define FB_TEMPLATE "losses_tpl.h"
#include "fb_instantiate.h"
