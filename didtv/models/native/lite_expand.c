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
                int64_t y0, y1, x0, x1; /* bilinear taps of the local correction */
                const float wy = taps(y, inv, h, &y0, &y1);
                for (int c = 0; c < 3; c++) {
                    const float *C = centre + bi * cs[0] + c * cs[1] + y * cs[2];
                    for (int64_t x = 0; x < W; x++) {
                        int64_t ac = (int64_t)c * scale * scale + sy * scale + x % scale;
                        v[c * W + x] = clamp01(C[x * cs[3]] + aux[bi * as[0] + ac * as[1] + ly * as[2] + (x / scale) * as[3]]);
                    }
                }
                bt2408_row(v, lin, pq, W, matrix, white);
                for (int64_t x = 0; x < W; x++) {
                    const float wx = taps(x, inv, w, &x0, &x1);
                    /* trilinear LUT lookup, LUT[c][R][G][B] */
                    float pr = v[x] * (n - 1), pg = v[W + x] * (n - 1), pb = v[2 * W + x] * (n - 1);
                    int r0 = (int)pr, g0 = (int)pg, b0 = (int)pb;
                    if (r0 > n - 2) r0 = n - 2;
                    if (g0 > n - 2) g0 = n - 2;
                    if (b0 > n - 2) b0 = n - 2;
                    float fr = pr - r0, fg = pg - g0, fb = pb - b0;
                    const int64_t base = ((int64_t)r0 * n + g0) * n + b0, dr = (int64_t)n * n, dg = n;
                    for (int c = 0; c < 3; c++) {
                        const float *T = L + c * n3 + base;
                        float c00 = T[0] + fb * (T[1] - T[0]), c01 = T[dg] + fb * (T[dg + 1] - T[dg]);
                        float c10 = T[dr] + fb * (T[dr + 1] - T[dr]), c11 = T[dr + dg] + fb * (T[dr + dg + 1] - T[dr + dg]);
                        float c0 = c00 + fg * (c01 - c00), c1 = c10 + fg * (c11 - c10);
                        float t = c0 + fr * (c1 - c0);
                        const float *P = local + bi * ls[0] + c * ls[1];
                        float q00 = P[y0 * ls[2] + x0 * ls[3]], q01 = P[y0 * ls[2] + x1 * ls[3]];
                        float q10 = P[y1 * ls[2] + x0 * ls[3]], q11 = P[y1 * ls[2] + x1 * ls[3]];
                        float q = (q00 + wx * (q01 - q00)) * (1.0f - wy) + (q10 + wx * (q11 - q10)) * wy;
                        o[(c * H + y) * W + x] = clamp01(pq[c * W + x] + t + q);
                    }
                }
            }
            free(buf);
        }
        if (failed) return -2;
    }
    return 0;
}
