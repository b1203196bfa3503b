/* Instantiates the template named by FB_TEMPLATE for float (_f32) and double (_f64).
 * Usage in a kernel family's .c file:
 *     #define FB_TEMPLATE "activations_tpl.h"
 *     #include "fb_instantiate.h"
 * No include guard: it is meant to be included once per family. */
#define real float
#define FB(name) FB_CONCAT(name, f32)
#define FB_IS_FLOAT 1
#include FB_TEMPLATE
#undef real
#undef FB
#undef FB_IS_FLOAT

#define real double
#define FB(name) FB_CONCAT(name, f64)
#define FB_IS_FLOAT 0
#include FB_TEMPLATE
#undef real
#undef FB
#undef FB_IS_FLOAT
#undef FB_TEMPLATE
