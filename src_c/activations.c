/* Fused bias-add + activation forward, and activation backward through the stored output (or
 * the stored pre-activation, for the activations whose derivative the output does not give). */
#include <string.h>
#include <tgmath.h>

#include "fastbp_core.h"

#define FB_TEMPLATE "activations_tpl.h"
#include "fb_instantiate.h"
