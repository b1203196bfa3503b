/* The compiled training step: forward, loss, backward and update of a network in one call. */
#include <float.h>
#include <string.h>
#include <tgmath.h>

#include "fastbp_core.h"
#include "fb_plan.h"

#define FB_TEMPLATE "plan_tpl.h"
#include "fb_instantiate.h"
