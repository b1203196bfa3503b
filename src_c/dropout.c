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

/* u_i of the mask stream (see dropout_tpl.h), for one element i. */
static inline uint64_t fb_mask_word(uint64_t stream, uint64_t i)
{
    const uint64_t h = fb_mix64(stream + (i / 2 + 1) * FB_GOLDEN_GAMMA);
    return i % 2 ? h >> 32 : h & 0xFFFFFFFFu;
}

#define FB_TEMPLATE "dropout_tpl.h"
#include "fb_instantiate.h"
