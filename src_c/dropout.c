/* Inverted dropout with masks from a counter-based generator (no generator state to share). */
#include <math.h>

#include "fastbp_core.h"

/* The splitmix64 output function: a bijective mix of 64 bits (Steele, Lea & Flood 2014). */
static inline uint64_t fb_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

#define FB_GOLDEN_GAMMA 0x9E3779B97F4A7C15u

#define FB_TEMPLATE "dropout_tpl.h"
#include "fb_instantiate.h"
