/* Single-pass fused optimizer updates over the flat parameter buffer. */
#include <tgmath.h>

#include "fastbp_core.h"

#define FB_TEMPLATE "optim_tpl.h"
#include "fb_instantiate.h"
