/* Declares the functions of the header named by FB_DECLARATIONS for float (_f32) and double
 * (_f64), as fb_instantiate.h defines them. Usage in a public header:
 *     #define FB_DECLARATIONS "fastbp_core_tpl.h"
 *     #include "fb_declare.h"
 * No include guard: it is meant to be included once per header. */
#define real float
#define FB(name) FB_CONCAT(name, f32)
#include FB_DECLARATIONS
#undef real
#undef FB

#define real double
#define FB(name) FB_CONCAT(name, f64)
#include FB_DECLARATIONS
#undef real
#undef FB
#undef FB_DECLARATIONS
