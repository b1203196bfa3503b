/* Deterministic reductions (bias gradient, sum of squares, active units) and whole-buffer
 * helpers (scaling, clipping, row gathering). */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "fastbp_core.h"

/* Columns handled together by one thread in bias_grad; each column is summed in row order. */
#define FB_COLUMN_BLOCK 64

#define FB_TEMPLATE "reductions_tpl.h"
#include "fb_instantiate.h"

/* out[i] = src[indices[i]] */
void gather_labels_i64(const int64_t *restrict src, const int64_t *restrict indices, ptrdiff_t n,
                   int64_t *restrict out)
{
    for (ptrdiff_t i = 0; i < n; ++i)
        out[i] = src[indices[i]];
}

ptrdiff_t fb_parallel_min = FB_PARALLEL_MIN_DEFAULT;

void fb_set_parallel_min(ptrdiff_t elements)
{
    fb_parallel_min = elements;
}

int fb_num_threads = 1;
int fb_threads_started = 0;
static int fb_forked_after_threads = 0;

int fb_set_num_threads(int n)
{
#ifdef _OPENMP
    if (fb_forked_after_threads && n > 1)
        return -1;
    fb_num_threads = n;
#else
    (void)n;
#endif
    return 0;
}

static void fb_after_fork_in_child(void)
{
    if (fb_threads_started) {
        fb_forked_after_threads = 1;
        fb_num_threads = 1;
    }
}

void fb_install_fork_handler(void)
{
    pthread_atfork(NULL, NULL, fb_after_fork_in_child);
}

int fb_get_num_threads(void)
{
    return fb_num_threads;
}

int fb_default_num_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int fb_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
