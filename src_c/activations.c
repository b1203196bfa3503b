/* Fused bias-add + activation forward, and activation backward through the stored output (or
 * the stored pre-activation, for the activations whose derivative the output does not give). */
#include <string.h>
#include <tgmath.h>

#include "fastbp_core.h"

#define FB_ACTIVATION_NAME(CODE, name) #name,
static const char *const fb_activation_names[FB_N_ACTIVATIONS] = {
    FB_ACTIVATION_LIST(FB_ACTIVATION_NAME)
};
#undef FB_ACTIVATION_NAME

const char *fb_activation_name(fb_activation act)
{
    return (unsigned)act < FB_N_ACTIVATIONS ? fb_activation_names[act] : NULL;
}

#define FB_TEMPLATE "activations_tpl.h"
#include "fb_instantiate.h"
