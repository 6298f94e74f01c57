/* DIDNet Lite's full-size work in one pass per pixel (CPU inference).
 *
 * What DIDLite.expand (didtv/models/lite.py) and the pixel shuffle before it do with about a dozen
 * PyTorch passes over the frame, each reading and writing whole float32 planes:
 *
 *   clean = clamp(centre + PixelShuffle(aux), 0, 1)               restored SDR
 *   hdr   = clamp(BT2408(clean) + LUT(clean) + up(local), 0, 1)   BT.2020 PQ
 *
 * BT2408: BT.1886 decode (203 * v^2.4 cd/m2), BT.709 -> BT.2020, ST 2084 inverse EOTF.
 * LUT: trilinear lookup in the shot's (3, n, n, n) table indexed [R][G][B], corners at
 * i / (n - 1) (grid_sample with align_corners=True, border padding).
 * up: bilinear upsampling by `scale` with align_corners=False (F.interpolate).
 * Powers use exp2(p * log2(x)) with polynomial log2/exp2 (relative error < 1e-6), which the
 * compiler can vectorise; libm's powf cannot be vectorised without -ffast-math.
 *
 * Strides are in elements: (batch, channel, row, column) for every input, so channels-last
 * tensors are read as they lie. `out` is (b, 3, H, W) contiguous.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Branch-free (conditional expressions only), so that GCC vectorises the per-row loops below. */
static inline float fast_log2(float x) { /* x > 0, finite */
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    int e = (int)((u >> 23) & 0xff) - 127;
    u = (u & 0x007fffffu) | 0x3f800000u; /* mantissa in [1, 2) */
    float m;
    memcpy(&m, &u, sizeof m);
    const int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e = big ? e + 1 : e;
    float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
    float p = t * (2.885390082f + t2 * (0.9617966939f + t2 * (0.5770780164f + t2 * (0.4121985831f + t2 * 0.3205988979f))));
    return (float)e + p;
}

static inline float fast_exp2(float y) {
    const int under = y < -126.0f;
    y = y < -126.0f ? -126.0f : (y > 127.0f ? 127.0f : y);
    float fi = floorf(y + 0.5f), f = y - fi; /* f in [-0.5, 0.5] */
    float z = f * 0.6931471806f;
    float p = 1.0f + z * (1.0f + z * (0.5f + z * (1.0f / 6 + z * (1.0f / 24 + z * (1.0f / 120 + z * (1.0f / 720 + z * (1.0f / 5040)))))));
    uint32_t u = (uint32_t)((int)fi + 127) << 23;
    float s;
    memcpy(&s, &u, sizeof s);
    return under ? 0.0f : p * s;
}

/* x^p for x > 0, else 0 (the log of a non-positive x is computed on 1 and discarded). */
static inline float fast_pow(float x, float p) {
    float r = fast_exp2(p * fast_log2(x > 0.0f ? x : 1.0f));
    return x > 0.0f ? r : 0.0f;
}

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

static inline float pq_encode(float nits) {
    const float m1 = 2610.0f / 16384, m2 = 2523.0f / 4096 * 128;
    const float c1 = 3424.0f / 4096, c2 = 2413.0f / 4096 * 32, c3 = 2392.0f / 4096 * 32;
    float y = nits > 0.0f ? nits / 10000.0f : 0.0f;
    float yp = fast_pow(y, m1);
    return fast_pow((c1 + c2 * yp) / (1.0f + c3 * yp), m2);
}

/* Source taps of output index i for bilinear upsampling by 1/inv onto n samples
 * (align_corners=False, clamped at 0 and n - 1, as F.interpolate). */
static inline float taps(int64_t i, float inv, int64_t n, int64_t *i0, int64_t *i1) {
    float f = ((float)i + 0.5f) * inv - 0.5f;
    if (f < 0.0f) f = 0.0f;
    *i0 = (int64_t)f;
    *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
    return f - (float)*i0;
}

/* One row's BT.2408 part, in two vectorisable passes over `W` pixels: v (3 planes, the restored
 * SDR) -> lin (BT.1886 decode) -> pq (BT.709 -> BT.2020, ST 2084), both written to `pq`. */
static void bt2408_row(const float *restrict v, float *restrict lin, float *restrict pq, int64_t W,
                       const float *matrix, float white) {
    for (int64_t i = 0; i < 3 * W; i++) lin[i] = white * fast_pow(v[i], 2.4f);
    for (int c = 0; c < 3; c++) {
        const float m0 = matrix[3 * c], m1 = matrix[3 * c + 1], m2 = matrix[3 * c + 2];
        float *restrict out = pq + c * W;
        for (int64_t x = 0; x < W; x++) {
            float m = m0 * lin[x] + m1 * lin[W + x] + m2 * lin[2 * W + x];
            out[x] = pq_encode(m > 0.0f ? m : 0.0f);
        }
    }
}

#ifdef __AVX2__
#include <immintrin.h>

/* lut_row for 8 pixels a step with AVX2 gathers (GCC does not vectorise the scalar loop: it
 * cannot analyse the table reads); the scalar loop finishes the row. Same arithmetic. */
static int64_t lut_row_avx2(const float *v, const float *pq, int64_t W, const float *L, int n,
                            const float *pa, const float *pb, int64_t lc, const int32_t *xt0,
                            const int32_t *xt1, const float *xw, float wy, float *out, int64_t plane) {
    const int32_t n3 = n * n * n;
    const __m256 scale = _mm256_set1_ps((float)(n - 1)), zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    const __m256 vwy = _mm256_set1_ps(wy), vwy1 = _mm256_set1_ps(1.0f - wy);
    const __m256i top = _mm256_set1_epi32(n - 2), vn = _mm256_set1_epi32(n);
    const __m256i dg = _mm256_set1_epi32(n), dr = _mm256_set1_epi32(n * n), d1 = _mm256_set1_epi32(1);
    int64_t x = 0;
    for (; x + 8 <= W; x += 8) {
        const __m256 pr = _mm256_mul_ps(_mm256_loadu_ps(v + x), scale);
        const __m256 pg = _mm256_mul_ps(_mm256_loadu_ps(v + W + x), scale);
        const __m256 pbl = _mm256_mul_ps(_mm256_loadu_ps(v + 2 * W + x), scale);
        const __m256i r0 = _mm256_min_epi32(_mm256_cvttps_epi32(pr), top);
        const __m256i g0 = _mm256_min_epi32(_mm256_cvttps_epi32(pg), top);
        const __m256i b0 = _mm256_min_epi32(_mm256_cvttps_epi32(pbl), top);
        const __m256 fr = _mm256_sub_ps(pr, _mm256_cvtepi32_ps(r0));
        const __m256 fg = _mm256_sub_ps(pg, _mm256_cvtepi32_ps(g0));
        const __m256 fb = _mm256_sub_ps(pbl, _mm256_cvtepi32_ps(b0));
        const __m256i k = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_add_epi32(_mm256_mullo_epi32(r0, vn), g0), vn), b0);
        const __m256i k01 = _mm256_add_epi32(k, dg), k10 = _mm256_add_epi32(k, dr), k11 = _mm256_add_epi32(k10, dg);
        const __m256 wx = _mm256_loadu_ps(xw + x);
        const __m256i i0 = _mm256_loadu_si256((const __m256i *)(xt0 + x)), i1 = _mm256_loadu_si256((const __m256i *)(xt1 + x));
        for (int c = 0; c < 3; c++) {
            const float *T = L + c * n3;
#define G(idx) _mm256_i32gather_ps(T, (idx), 4)
#define LERP(a, b, f) _mm256_add_ps((a), _mm256_mul_ps((f), _mm256_sub_ps((b), (a))))
            const __m256 c00 = LERP(G(k), G(_mm256_add_epi32(k, d1)), fb);
            const __m256 c01 = LERP(G(k01), G(_mm256_add_epi32(k01, d1)), fb);
            const __m256 c10 = LERP(G(k10), G(_mm256_add_epi32(k10, d1)), fb);
            const __m256 c11 = LERP(G(k11), G(_mm256_add_epi32(k11, d1)), fb);
            const __m256 t = LERP(LERP(c00, c01, fg), LERP(c10, c11, fg), fr);
            const float *qa = pa + c * lc, *qb = pb + c * lc;
            const __m256 q0 = LERP(_mm256_i32gather_ps(qa, i0, 4), _mm256_i32gather_ps(qa, i1, 4), wx);
            const __m256 q1 = LERP(_mm256_i32gather_ps(qb, i0, 4), _mm256_i32gather_ps(qb, i1, 4), wx);
#undef G
#undef LERP
            const __m256 q = _mm256_add_ps(_mm256_mul_ps(q0, vwy1), _mm256_mul_ps(q1, vwy));
            __m256 r = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(pq + c * W + x), t), q);
            r = _mm256_min_ps(_mm256_max_ps(r, zero), one);
            _mm256_storeu_ps(out + c * plane + x, r);
        }
    }
    return x;
}
#endif

/* One row's LUT lookup, local correction and sum: out[c][x] = clamp(pq[c][x] + LUT(v[.][x])[c] +
 * up(local)[c][x], 0, 1). Trilinear lookup in the shot's (3, n, n, n) table indexed [R][G][B],
 * corners at i / (n - 1) (grid_sample, align_corners=True, border); the local correction
 * bilinear between rows `pa` and `pb` (weight wy) at the precomputed column taps. 32-bit
 * offsets; with AVX2 the vector version below does all but the last few pixels. `out` planes
 * are `plane` apart. */
static void lut_row(const float *restrict v, const float *restrict pq, int64_t W, const float *restrict L, int n,
                    const float *pa, const float *pb, int64_t lc, const int32_t *restrict xt0,
                    const int32_t *restrict xt1, const float *restrict xw, float wy, float *out, int64_t plane) {
    int64_t start = 0;
#ifdef __AVX2__
    start = lut_row_avx2(v, pq, W, L, n, pa, pb, lc, xt0, xt1, xw, wy, out, plane);
#endif
    const int32_t n3 = n * n * n, dr = n * n, dg = n, top = n - 2;
    const float scale = (float)(n - 1);
    for (int c = 0; c < 3; c++) {
        const float *restrict T = L + c * n3;
        const float *restrict qa = pa + c * lc, *restrict qb = pb + c * lc;
        float *restrict o = out + c * plane;
        const float *restrict pqc = pq + c * W;
        for (int64_t x = start; x < W; x++) {
            float pr = v[x] * scale, pg = v[W + x] * scale, pb_ = v[2 * W + x] * scale;
            int32_t r0 = (int32_t)pr, g0 = (int32_t)pg, b0 = (int32_t)pb_;
            r0 = r0 > top ? top : r0;
            g0 = g0 > top ? top : g0;
            b0 = b0 > top ? top : b0;
            const float fr = pr - (float)r0, fg = pg - (float)g0, fb = pb_ - (float)b0;
            const int32_t k = (r0 * n + g0) * n + b0;
            float c00 = T[k] + fb * (T[k + 1] - T[k]), c01 = T[k + dg] + fb * (T[k + dg + 1] - T[k + dg]);
            float c10 = T[k + dr] + fb * (T[k + dr + 1] - T[k + dr]);
            float c11 = T[k + dr + dg] + fb * (T[k + dr + dg + 1] - T[k + dr + dg]);
            float c0 = c00 + fg * (c01 - c00), c1 = c10 + fg * (c11 - c10);
            const float t = c0 + fr * (c1 - c0);
            const float wx = xw[x];
            const float q0 = qa[xt0[x]] + wx * (qa[xt1[x]] - qa[xt0[x]]);
            const float q1 = qb[xt0[x]] + wx * (qb[xt1[x]] - qb[xt0[x]]);
            o[x] = clamp01(pqc[x] + t + (q0 * (1.0f - wy) + q1 * wy));
        }
    }
}

/* Returns 0 on success, -1 on bad arguments, -2 on a failed allocation. */
int didtv_lite_expand(const float *centre, const int64_t *cs,          /* (b, 3, H, W) */
                      const float *aux, const int64_t *as,             /* (b, 3*s*s, h, w) */
                      const float *local, const int64_t *ls,           /* (b, 3, h, w) */
                      const float *lut, int n,                         /* (b, 3, n, n, n) contiguous */
                      const float *matrix, float white,                /* BT.709 -> BT.2020, 3x3 */
                      float *out, int64_t b, int64_t H, int64_t W, int scale, int threads) {
    if (scale < 1 || n < 2 || H % scale || W % scale) return -1;
    const int64_t h = H / scale, w = W / scale, n3 = (int64_t)n * n * n;
    const float inv = 1.0f / (float)scale;
    if (3 * n3 > INT32_MAX || 3 * ls[1] > INT32_MAX || w * ls[3] > INT32_MAX) return -1;
    /* the local correction's bilinear taps along x: the same for every row (offsets in elements) */
    if (((int64_t)scale - 1) * as[1] + (w - 1) * as[3] > INT32_MAX) return -1;
    int32_t *xt0 = malloc(sizeof(int32_t) * 3 * (size_t)W);
    float *xw = malloc(sizeof(float) * (size_t)W);
    if (!xt0 || !xw) { free(xt0); free(xw); return -2; }
    int32_t *xt1 = xt0 + W, *aoff = xt0 + 2 * W; /* aoff: the column's aux element in its row */
    for (int64_t x = 0; x < W; x++) {
        aoff[x] = (int32_t)((x % scale) * as[1] + (x / scale) * as[3]);
        int64_t x0, x1;
        xw[x] = taps(x, inv, w, &x0, &x1);
        xt0[x] = (int32_t)(x0 * ls[3]);
        xt1[x] = (int32_t)(x1 * ls[3]);
    }
    int failed = 0;
    for (int64_t bi = 0; bi < b; bi++) {
        const float *L = lut + bi * 3 * n3;
        float *o = out + bi * 3 * H * W;
#pragma omp parallel num_threads(threads)
        {
            float *buf = malloc(sizeof(float) * 9 * (size_t)W); /* v, lin, pq: 3 planes of a row each */
            if (!buf) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(static)
            for (int64_t y = 0; y < H; y++) {
                if (!buf) continue;
                float *v = buf, *lin = buf + 3 * W, *pq = buf + 6 * W;
                const int64_t ly = y / scale, sy = y % scale;
                int64_t y0, y1; /* bilinear taps of the local correction */
                const float wy = taps(y, inv, h, &y0, &y1);
                for (int c = 0; c < 3; c++) {
                    const float *C = centre + bi * cs[0] + c * cs[1] + y * cs[2];
                    const float *A = aux + bi * as[0] + ((int64_t)c * scale * scale + sy * scale) * as[1] + ly * as[2];
                    float *restrict vc = v + c * W;
                    if (cs[3] == 1)
                        for (int64_t x = 0; x < W; x++) vc[x] = clamp01(C[x] + A[aoff[x]]);
                    else
                        for (int64_t x = 0; x < W; x++) vc[x] = clamp01(C[x * cs[3]] + A[aoff[x]]);
                }
                bt2408_row(v, lin, pq, W, matrix, white);
                const float *P = local + bi * ls[0];
                lut_row(v, pq, W, L, n, P + y0 * ls[2], P + y1 * ls[2], ls[1], xt0, xt1, xw, wy, o + y * W, H * W);
            }
            free(buf);
        }
        if (failed) break;
    }
    free(xt0);
    free(xw);
    return failed ? -2 : 0;
}

/* One output row; `O` is a compile-time constant where the caller passes a literal (always_inline),
 * so that the accumulators live in registers (24 channels: 3 AVX2 registers). */
static inline __attribute__((always_inline)) void unshuffle_conv_row(
        const float *in, const int64_t *is, int64_t bi, int64_t C, int64_t y, int64_t w, int scale,
        const float *wt, const float *bias, const int64_t O, float slope, float *orow) {
    for (int64_t x = 0; x < w; x++) {
        float acc[64];
        for (int64_t o = 0; o < O; o++) acc[o] = bias[o];
        const float *wk = wt;
        for (int64_t c = 0; c < C; c++) {
            for (int i = 0; i < scale; i++) {
                const float *p = in + bi * is[0] + c * is[1] + (y * scale + i) * is[2] + x * scale * is[3];
                for (int j = 0; j < scale; j++, wk += O) {
                    const float v = p[j * is[3]];
                    for (int64_t o = 0; o < O; o++) acc[o] += v * wk[o];
                }
            }
        }
        float *dst = orow + x * O;
        for (int64_t o = 0; o < O; o++) dst[o] = acc[o] < 0.0f ? acc[o] * slope : acc[o];
    }
}

/* Lite's input layer: PixelUnshuffle(s) of the C input planes, then a 1x1 conv to O channels and
 * LeakyReLU(slope), in one pass (what lite.py computes as one s x s conv of stride s):
 *
 *   out[b, y, x, o] = act(bias[o] + sum_k wt[k, o] * in[b, c, s y + i, s x + j]),  k = c s^2 + i s + j
 *
 * `in` has any (batch, channel, row, column) strides; `wt` is (C s^2, O) contiguous (the conv's
 * weight transposed), `out` (b, H/s, W/s, O) contiguous: channels-last, what the trunk's convs
 * read. O <= 64. One item per (batch, output row); the O accumulators of a cell stay in
 * registers, each input value is broadcast against a row of `wt` (in L1). oneDNN's AVX2 path
 * for this strided conv on NCHW input took 65 ms at 1080p on 2 cores.
 * Returns 0 on success, -1 on bad arguments. */
int didtv_lite_unshuffle_conv(const float *in, const int64_t *is, int64_t b, int64_t C, int64_t H, int64_t W,
                              int scale, const float *wt, const float *bias, int64_t O, float slope,
                              float *out, int threads) {
    if (scale < 1 || O < 1 || O > 64 || H % scale || W % scale) return -1;
    const int64_t h = H / scale, w = W / scale;
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
    for (int64_t bi = 0; bi < b; bi++) {
        for (int64_t y = 0; y < h; y++) {
            float *orow = out + (bi * h + y) * w * O;
            if (O == 24 && scale == 4)  /* the shipped Lite */
                unshuffle_conv_row(in, is, bi, C, y, w, 4, wt, bias, 24, slope, orow);
            else
                unshuffle_conv_row(in, is, bi, C, y, w, scale, wt, bias, O, slope, orow);
        }
    }
    return 0;
}
