/* The sum of a residual connection. */
#include "fastbp_core.h"

#define FB_TEMPLATE "residual_tpl.h"
#include "fb_instantiate.h"
