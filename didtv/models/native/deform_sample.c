/* Fused bilinear sampling for DIDNet's deformable convolution (CPU inference).
 *
 * Writes the column matrix that deform_conv2d_torch (didtv/models/align.py) builds from
 * grid_sample, a mask multiply and a dtype cast, in one pass: for every offset group, tap and
 * output pixel it computes the bilinear weights once, folds the mask into them, reads the group's
 * channels at the four corners and writes the products straight into the columns, in float32 or
 * bfloat16 (round to nearest even, like torch's cast). The matmul with the weights stays in torch.
 *
 * Layouts follow align.py (torchvision's), except the input:
 *   x      (b, g, h, w, cp) float32: each offset group's c/g channels side by side per pixel,
 *          zero-padded to cp = a multiple of 4 (one 16-byte load reads a corner's channels;
 *          per-channel gathers were 2x slower on an AVX-512 EPYC)
 *   offset (b, 2*g*taps, h_out, w_out): channel 2*(g*taps+k) is y, the next x, in pixels; any
 *          batch, channel and pixel strides (NCHW, or the channels-last output of the offset
 *          U-Net's last convolution read as it lies)
 *   mask   (b, g*taps, h_out, w_out) or NULL (all ones); strides as for offset
 *   out    (b, col_rows, n_rows*w_out): row c*taps + k, output rows row0 .. row0+n_rows-1;
 *          col_rows >= c*taps, rows from c*taps on are left as they are (the caller's bias row)
 * Corners outside the image read zero (DCN's zero padding, grid_sample's "zeros").
 * Built and loaded by didtv/models/native.py; no Python or torch headers needed.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__) && !defined(DIDTV_GENERIC)
#include <immintrin.h>
#define DIDTV_AVX512 1 /* gathers and in-register transposes where plain C leaves scalar loops */
#endif

enum { F32 = 0, BF16 = 1 };

static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

typedef struct {
    const float *x;
    const void *offset;
    const void *mask;
    void *out;
    int off_dtype, mask_dtype, out_dtype;
    int raw;            /* offsets and mask are pre-activation: see didtv_deform_columns */
    float scale, inner; /* offset = scale * tanh(inner * raw offset) */
    /* elements between batch items, channels and pixels (pixels in row-major order: NCHW has
     * pixel stride 1 and channel stride h_out * w_out, NHWC channel stride 1) */
    int64_t off_bstride, off_cstride, off_pstride, mask_bstride, mask_cstride, mask_pstride;
    int64_t b, c, h, w, groups, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, row0, n_rows, col_rows;
    int64_t first, last; /* items [first, last): one item = (batch, row, block of BLOCK pixels) */
} job_t;

typedef float v4f __attribute__((vector_size(16)));

enum { BLOCK = 256 }; /* output pixels per inner pass: the per-pixel arrays stay in L1 */

/* exp for the activations, vectorisable (no libm call): Cody-Waite reduction to |r| <= ln2/2 and
 * a degree-6 Taylor polynomial, about 2 ulp; inputs clamped to [-87, 88] (no inf, no denormals). */
static inline float exp_approx(float x) {
    x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);
    const float n = rintf(x * 1.44269504f);
    const float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
    const float p = 1.f + r * (1.f + r * (0.5f + r * (1.6666667e-1f + r * (4.1666668e-2f +
                    r * (8.3333338e-3f + r * 1.3888889e-3f)))));
    const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

static inline float tanh_approx(float y) {
    const float t = exp_approx(-2.f * fabsf(y)), v = (1.f - t) / (1.f + t);
    return y < 0.f ? -v : v;
}

static inline float sigmoid_approx(float y) { return 1.f / (1.f + exp_approx(-y)); }

static inline float load_one(const void *src, int dtype, int64_t at) {
    if (dtype == BF16) {
        const uint32_t u = (uint32_t)((const uint16_t *)src)[at] << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    return ((const float *)src)[at];
}

/* dst[ch * BLOCK + i] = src[start + ch * cstride + i * pstride] for ch < n_ch, i < n, as float32:
 * one block of pixels of every offset (or mask) channel, channel-major, so that the per-(group,
 * tap) loops read contiguous rows whatever the tensor's layout. Channels-last (pstride > 1) is
 * transposed in tiles of 16 pixels: 16 read streams, one 64-byte line written per channel. */
#ifdef DIDTV_AVX512
/* load_block's channels-last case with AVX-512 gathers, 16 pixels at a time. bfloat16 with
 * adjacent channels: one 32-bit gather reads the (ch, ch + 1) pair of 16 pixels and splits into
 * two float rows (an odd last channel reads the pair before it). 10x faster than the strided
 * scalar loop on an AMX Xeon. 0: not applicable (the caller falls back). */
static int load_block_gather(float *dst, const void *src, int dtype, int64_t start, int64_t n_ch,
                             int64_t cstride, int64_t n, int64_t pstride) {
    if (pstride * 16 >= INT32_MAX || (dtype == BF16 && (cstride != 1 || n_ch < 2))) return 0;
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int32_t)pstride));
    const __m512i high = _mm512_set1_epi32((int32_t)0xffff0000u);
    for (int64_t i0 = 0; i0 < n; i0 += 16) {
        const __mmask16 k = n - i0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i0)) - 1u);
        const int64_t at = start + i0 * pstride;
        if (dtype == BF16) {
            const uint16_t *base = (const uint16_t *)src + at;
            int64_t ch = 0;
            for (; ch + 1 < n_ch; ch += 2) {
                const __m512i pair = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, idx, base + ch, 2);
                _mm512_mask_storeu_epi32(dst + ch * BLOCK + i0, k, _mm512_slli_epi32(pair, 16));
                _mm512_mask_storeu_epi32(dst + (ch + 1) * BLOCK + i0, k, _mm512_and_si512(pair, high));
            }
            if (ch < n_ch) {
                const __m512i pair = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, idx, base + ch - 1, 2);
                _mm512_mask_storeu_epi32(dst + ch * BLOCK + i0, k, _mm512_and_si512(pair, high));
            }
        } else {
            const float *base = (const float *)src + at;
            for (int64_t ch = 0; ch < n_ch; ++ch)
                _mm512_mask_storeu_ps(dst + ch * BLOCK + i0, k,
                                      _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, idx, base + ch * cstride, 4));
        }
    }
    return 1;
}

/* to_bf16 on 16 floats at once (round to nearest even, NaN kept quiet): the same bits. */
static inline __m256i to_bf16_x16(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(r);
}

/* v[0..16) (4 channels per pixel) -> channel `lane` of the 16 pixels, by two two-source permutes
 * and one 128-bit lane shuffle: the scalar per-lane store loop was a third of the sampling. */
static inline __m512 lane_of_16(const v4f *v, int lane) {
    const float *f = (const float *)v;
    const __m512i sel = _mm512_add_epi32(
        _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28), _mm512_set1_epi32(lane));
    const __m512 lo = _mm512_permutex2var_ps(_mm512_loadu_ps(f), sel, _mm512_loadu_ps(f + 16));
    const __m512 hi = _mm512_permutex2var_ps(_mm512_loadu_ps(f + 32), sel, _mm512_loadu_ps(f + 48));
    return _mm512_shuffle_f32x4(lo, hi, 0x44); /* lo's pixels 0-7, then hi's 8-15 */
}
#endif

static void load_block(float *dst, const void *src, int dtype, int64_t start, int64_t n_ch,
                       int64_t cstride, int64_t n, int64_t pstride) {
#ifdef DIDTV_AVX512
    if (pstride != 1 && load_block_gather(dst, src, dtype, start, n_ch, cstride, n, pstride)) return;
#endif
    if (pstride == 1) {
        for (int64_t ch = 0; ch < n_ch; ++ch) {
            float *d = dst + ch * BLOCK;
            const int64_t at = start + ch * cstride;
            if (dtype == BF16) {
                const uint16_t *p = (const uint16_t *)src + at;
                uint32_t *du = (uint32_t *)d;
                for (int64_t i = 0; i < n; ++i) du[i] = (uint32_t)p[i] << 16;
            } else {
                memcpy(d, (const float *)src + at, (size_t)n * sizeof(float));
            }
        }
        return;
    }
    for (int64_t i0 = 0; i0 < n; i0 += 16) {
        const int64_t m = n - i0 < 16 ? n - i0 : 16;
        for (int64_t ch = 0; ch < n_ch; ++ch) {
            float *d = dst + ch * BLOCK + i0;
            const int64_t at = start + ch * cstride + i0 * pstride;
            for (int64_t i = 0; i < m; ++i) d[i] = load_one(src, dtype, at + i * pstride);
        }
    }
}

static int run(const job_t *j) {
    const int64_t taps = j->kh * j->kw, cg = j->c / j->groups, plane = j->h * j->w;
    const int64_t out_plane = j->n_rows * j->w_out;
    const int64_t n_off = 2 * j->groups * taps, n_mask = j->groups * taps;
    const int64_t blocks = (j->w_out + BLOCK - 1) / BLOCK;
    const float fh = (float)j->h, fw = (float)j->w;
    const int32_t W = (int32_t)j->w, hmax = (int32_t)j->h - 1, wmax = (int32_t)j->w - 1;
    float w00[BLOCK], w01[BLOCK], w10[BLOCK], w11[BLOCK], ones[BLOCK];
    v4f v[BLOCK];
    const int64_t cp = (cg + 3) / 4 * 4;
    const int32_t CP = (int32_t)cp;
    int32_t i00[BLOCK], i01[BLOCK], i10[BLOCK], i11[BLOCK];
    /* this block's offsets and masks, channel-major (load_block): ~190 KB for DIDNet, in L2 */
    float *obuf = malloc(sizeof(float) * BLOCK * (size_t)(n_off + (j->mask ? n_mask : 0)));
    if (!obuf) return -1;
    float *mbuf = obuf + BLOCK * n_off;
    for (int i = 0; i < BLOCK; ++i) ones[i] = 1.f;
    /* one item = (batch, row, block of pixels): every (group, tap) of the block reads the same
     * offsets, loaded once, and the same neighbourhood of the frames */
    for (int64_t item = j->first; item < j->last; ++item) {
        const int64_t x0 = (item % blocks) * BLOCK;
        const int64_t r = (item / blocks) % j->n_rows, bi = item / blocks / j->n_rows;
        const int64_t y = j->row0 + r;
        const int64_t n = j->w_out - x0 < BLOCK ? j->w_out - x0 : BLOCK;
        const int64_t pix = y * j->w_out + x0;
        load_block(obuf, j->offset, j->off_dtype, bi * j->off_bstride + pix * j->off_pstride, n_off,
                   j->off_cstride, n, j->off_pstride);
        if (j->mask)
            load_block(mbuf, j->mask, j->mask_dtype, bi * j->mask_bstride + pix * j->mask_pstride, n_mask,
                       j->mask_cstride, n, j->mask_pstride);
        if (j->raw) {
            for (int64_t ch = 0; ch < n_off; ++ch) {
                float *o = obuf + ch * BLOCK;
                for (int i = 0; i < (int)n; ++i) o[i] = j->scale * tanh_approx(j->inner * o[i]);
            }
            if (j->mask)
                for (int64_t ch = 0; ch < n_mask; ++ch) {
                    float *o = mbuf + ch * BLOCK;
                    for (int i = 0; i < (int)n; ++i) o[i] = sigmoid_approx(o[i]);
                }
        }
        for (int64_t g = 0; g < j->groups; ++g) {
            /* x is packed (b, groups, h, w, cp): a group's channels side by side, cp = cg rounded
             * up to 4, so one 16-byte load reads four channels of a corner (no per-channel gathers) */
            const float *src = j->x + (bi * j->groups + g) * plane * cp;
            for (int64_t k = 0; k < taps; ++k) {
                const int64_t ch = g * taps + k;
                const float *oy = obuf + 2 * ch * BLOCK, *ox = oy + BLOCK;
                const float *mk = j->mask ? mbuf + ch * BLOCK : ones;
                const float base_y = (float)(y * j->sh - j->ph + (k / j->kw) * j->dh);
                const float bx = (float)(-j->pw + (k % j->kw) * j->dw) + (float)(x0 * j->sw);
                const float step = (float)j->sw;
                const int64_t out_row = bi * j->col_rows + g * cg * taps + k; /* row of channel g*cg, tap k */
                /* bilinear weights (mask folded in) and the four corner indices, branch-free */
                for (int i = 0; i < (int)n; ++i) {
                    const float py0 = base_y + oy[i], px0 = bx + (float)i * step + ox[i];
                    const int inside = (py0 > -1.f) & (py0 < fh) & (px0 > -1.f) & (px0 < fw); /* NaN: 0 */
                    const float py = inside ? py0 : -1.f, px = inside ? px0 : -1.f;
                    const float fy = floorf(py), fx = floorf(px);
                    const float ly = py - fy, lx = px - fx, hy = 1.f - ly, hx = 1.f - lx;
                    const float m = inside ? mk[i] : 0.f;
                    const int32_t y0 = (int32_t)fy, xl0 = (int32_t)fx;
                    /* 1 or 0 per corner side; products rather than branches, so the loop vectorises */
                    const float top = y0 >= 0 ? 1.f : 0.f, bottom = y0 < hmax ? 1.f : 0.f;
                    const float left = xl0 >= 0 ? 1.f : 0.f, right = xl0 < wmax ? 1.f : 0.f;
                    w00[i] = top * left * hy * hx * m;
                    w01[i] = top * right * hy * lx * m;
                    w10[i] = bottom * left * ly * hx * m;
                    w11[i] = bottom * right * ly * lx * m;
                    /* clamped, so that zero-weight corners still read inside the image */
                    const int32_t yt = y0 < 0 ? 0 : y0, yb = y0 < hmax ? y0 + 1 : hmax;
                    const int32_t xl = xl0 < 0 ? 0 : xl0, xr = xl0 < wmax ? xl0 + 1 : wmax;
                    i00[i] = (yt * W + xl) * CP;
                    i01[i] = (yt * W + xr) * CP;
                    i10[i] = (yb * W + xl) * CP;
                    i11[i] = (yb * W + xr) * CP;
                }
                for (int64_t c0 = 0; c0 < cg; c0 += 4) {
                    const float *p = src + c0;
                    for (int i = 0; i < (int)n; ++i) {
                        v4f a, b, c, d;
                        memcpy(&a, p + i00[i], sizeof a);
                        memcpy(&b, p + i01[i], sizeof b);
                        memcpy(&c, p + i10[i], sizeof c);
                        memcpy(&d, p + i11[i], sizeof d);
                        v[i] = a * w00[i] + b * w01[i] + c * w10[i] + d * w11[i];
                    }
                    const int64_t lanes = cg - c0 < 4 ? cg - c0 : 4;
                    for (int64_t lane = 0; lane < lanes; ++lane) {
                        const int64_t o = (out_row + (c0 + lane) * taps) * out_plane + r * j->w_out + x0;
                        int i = 0;
                        if (j->out_dtype == BF16) {
                            uint16_t *dst = (uint16_t *)j->out + o;
#ifdef DIDTV_AVX512
                            for (; i + 16 <= (int)n; i += 16)
                                _mm256_storeu_si256((__m256i *)(dst + i), to_bf16_x16(lane_of_16(v + i, (int)lane)));
#endif
                            for (; i < (int)n; ++i) dst[i] = to_bf16(v[i][lane]);
                        } else {
                            float *dst = (float *)j->out + o;
#ifdef DIDTV_AVX512
                            for (; i + 16 <= (int)n; i += 16) _mm512_storeu_ps(dst + i, lane_of_16(v + i, (int)lane));
#endif
                            for (; i < (int)n; ++i) dst[i] = v[i][lane];
                        }
                    }
                }
            }
        }
    }
    free(obuf);
    return 0;
}

/* Threads come from OpenMP: loaded after torch, this library binds to the libgomp.so.1 torch
 * already loaded, so it shares torch's worker threads instead of competing with them (with a
 * second pool, torch's idle workers spin on the cores this kernel needs). */
/* raw != 0: offset and mask hold the offset U-Net's raw outputs, and the kernel applies TSAF's
 * activations itself (offset = scale * tanh(inner * raw), mask = sigmoid(raw)), so they are never
 * written out. off_strides / mask_strides: elements between batch items, channels and pixels, so
 * that both can be channel slices of one (b, 3*g*taps, h_out, w_out) tensor in NCHW or NHWC. */
int didtv_deform_columns(const float *x, const void *offset, int off_dtype, const void *mask,
                         int mask_dtype, int raw, float scale, float inner, const int64_t *off_strides,
                         const int64_t *mask_strides, void *out, int out_dtype, int64_t b, int64_t c, int64_t h,
                         int64_t w, int64_t groups, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                         int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t h_out,
                         int64_t w_out, int64_t row0, int64_t n_rows, int64_t col_rows, int threads) {
    const int64_t items = b * n_rows * ((w_out + BLOCK - 1) / BLOCK);
    int failed = 0;
    if (threads < 1) threads = 1;
    if (threads > items) threads = (int)(items > 0 ? items : 1);
#pragma omp parallel for num_threads(threads) schedule(static, 1) reduction(| : failed)
    for (int t = 0; t < threads; ++t) {
        const job_t job = {x, offset, mask, out, off_dtype, mask_dtype, out_dtype, raw, scale, inner,
                           off_strides[0], off_strides[1], off_strides[2],
                           mask_strides[0], mask_strides[1], mask_strides[2], b, c, h, w,
                           groups, kh, kw, sh, sw, ph, pw, dh, dw, h_out, w_out, row0, n_rows, col_rows,
                           items * t / threads, items * (t + 1) / threads};
        failed |= run(&job) != 0;
    }
    return failed ? -1 : 0; /* -1: a thread could not allocate its offset buffer */
}

/* x (b, c, h, w) float32 -> out (b, g, h, w, cp): each group's c/g channels side by side, zero
 * lanes up to cp (a multiple of 4), the input layout of didtv_deform_columns. */
void didtv_pack_groups(const float *x, float *out, int64_t b, int64_t c, int64_t h, int64_t w,
                       int64_t groups, int64_t cp, int threads) {
    const int64_t cg = c / groups, rows = b * groups * h, plane = h * w;
    if (threads < 1) threads = 1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
        const int64_t y = row % h, bg = row / h; /* bg = batch * groups + group */
        const float *src = x + bg * cg * plane + y * w; /* channel g*cg of batch b, row y */
        float *dst = out + row * w * cp;
        if (cg == 3 && cp == 4) { /* DIDNet's case: RGB of one frame */
            const float *r = src, *g = src + plane, *bl = src + 2 * plane;
            for (int64_t i = 0; i < w; ++i) {
                const v4f v = {r[i], g[i], bl[i], 0.f};
                memcpy(dst + 4 * i, &v, sizeof v);
            }
        } else {
            for (int64_t i = 0; i < w; ++i)
                for (int64_t ci = 0; ci < cp; ++ci)
                    dst[i * cp + ci] = ci < cg ? src[ci * plane + i] : 0.f;
        }
    }
}

