//! The kernels with AVX2 and FMA, eight channels of a row at a time (channels-last rows are
//! contiguous in channels, and the networks' widths are multiples of eight); leftover channels
//! take the scalar arithmetic. Same contracts as `super::scalar`; sums may differ from its in the
//! last bits (two accumulators, fused multiply-adds).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::Res;

/// Writes the eight f32 lanes of `v` widened to f64 at `dst`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_f64(v: __m256, dst: *mut f64) {
    unsafe {
        _mm256_storeu_pd(dst, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        _mm256_storeu_pd(dst.add(4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
}

/// See `super::scalar::stats`.
///
/// # Safety
/// As `super::scalar::stats`, on a CPU with AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn stats(y: *const f32, c: usize, r0: usize, r1: usize, shift: *const f32, s1: *mut f64, s2: *mut f64) {
    let c8 = c / 8 * 8;
    unsafe {
        for ch in (0..c8).step_by(8) {
            let sh = _mm256_loadu_ps(shift.add(ch));
            let (mut a1, mut a2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let (mut b1, mut b2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut r = r0;
            while r + 1 < r1 {
                let d = _mm256_sub_ps(_mm256_loadu_ps(y.add(r * c + ch)), sh);
                let e = _mm256_sub_ps(_mm256_loadu_ps(y.add((r + 1) * c + ch)), sh);
                a1 = _mm256_add_ps(a1, d);
                a2 = _mm256_fmadd_ps(d, d, a2);
                b1 = _mm256_add_ps(b1, e);
                b2 = _mm256_fmadd_ps(e, e, b2);
                r += 2;
            }
            if r < r1 {
                let d = _mm256_sub_ps(_mm256_loadu_ps(y.add(r * c + ch)), sh);
                a1 = _mm256_add_ps(a1, d);
                a2 = _mm256_fmadd_ps(d, d, a2);
            }
            store_f64(_mm256_add_ps(a1, b1), s1.add(ch));
            store_f64(_mm256_add_ps(a2, b2), s2.add(ch));
        }
        for ch in c8..c {
            let (mut a1, mut a2) = (0f32, 0f32);
            for r in r0..r1 {
                let d = *y.add(r * c + ch) - *shift.add(ch);
                a1 += d;
                a2 += d * d;
            }
            *s1.add(ch) = f64::from(a1);
            *s2.add(ch) = f64::from(a2);
        }
    }
}

/// See `super::scalar::normalize`.
///
/// # Safety
/// As `super::scalar::normalize`, on a CPU with AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn normalize(
    y: *const f32,
    a: *const f32,
    b: *const f32,
    res: Res,
    out: *mut f32,
    c: usize,
    r0: usize,
    r1: usize,
) {
    let c8 = c / 8 * 8;
    let zero = _mm256_setzero_ps();
    unsafe {
        for r in r0..r1 {
            let row = r * c;
            // Where this row's residual starts, and how many of its channels it has.
            let (rx, rc) = match res {
                Res::Subsample { cin, h, w, hin, win, .. } => (Res::subsample_row(r, h, w, hin, win) * cin, cin),
                _ => (row, c),
            };
            for ch in (0..c8).step_by(8) {
                let mut v = _mm256_fmadd_ps(
                    _mm256_loadu_ps(a.add(ch)),
                    _mm256_loadu_ps(y.add(row + ch)),
                    _mm256_loadu_ps(b.add(ch)),
                );
                match res {
                    Res::None => {}
                    Res::Same(x) => v = _mm256_add_ps(v, _mm256_loadu_ps(x.add(row + ch))),
                    Res::Affine { y: yp, a: ap, b: bp } => {
                        let p = _mm256_fmadd_ps(
                            _mm256_loadu_ps(ap.add(ch)),
                            _mm256_loadu_ps(yp.add(row + ch)),
                            _mm256_loadu_ps(bp.add(ch)),
                        );
                        v = _mm256_add_ps(v, p);
                    }
                    Res::Subsample { x, .. } => {
                        if ch + 8 <= rc {
                            v = _mm256_add_ps(v, _mm256_loadu_ps(x.add(rx + ch)));
                        } else if ch < rc {
                            let mut tmp = [0f32; 8];
                            for (lane, slot) in tmp.iter_mut().enumerate().take(rc - ch) {
                                *slot = *x.add(rx + ch + lane);
                            }
                            v = _mm256_add_ps(v, _mm256_loadu_ps(tmp.as_ptr()));
                        }
                    }
                }
                _mm256_storeu_ps(out.add(row + ch), _mm256_max_ps(v, zero));
            }
            for ch in c8..c {
                let v = *a.add(ch) * *y.add(row + ch) + *b.add(ch) + super::scalar::residual(res, c, r, ch);
                *out.add(row + ch) = v.max(0.0);
            }
        }
    }
}

/// See `super::scalar::grad_reduce`.
///
/// # Safety
/// As `super::scalar::grad_reduce`, on a CPU with AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn grad_reduce(
    g: *mut f32,
    res: *const f32,
    mask: *const f32,
    y: *const f32,
    mean: *const f32,
    invstd: *const f32,
    c: usize,
    r0: usize,
    r1: usize,
    sg: *mut f64,
    sgx: *mut f64,
) {
    let c8 = c / 8 * 8;
    let write = !res.is_null() || !mask.is_null();
    let zero = _mm256_setzero_ps();
    unsafe {
        for ch in (0..c8).step_by(8) {
            let (m, s) = (_mm256_loadu_ps(mean.add(ch)), _mm256_loadu_ps(invstd.add(ch)));
            let (mut a1, mut a2) = (zero, zero);
            for r in r0..r1 {
                let i = r * c + ch;
                let mut gz = _mm256_loadu_ps(g.add(i));
                if !res.is_null() {
                    gz = _mm256_add_ps(gz, _mm256_loadu_ps(res.add(i)));
                }
                if !mask.is_null() {
                    gz = _mm256_and_ps(gz, _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_loadu_ps(mask.add(i)), zero));
                }
                if write {
                    _mm256_storeu_ps(g.add(i), gz);
                }
                let xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(y.add(i)), m), s);
                a1 = _mm256_add_ps(a1, gz);
                a2 = _mm256_fmadd_ps(gz, xhat, a2);
            }
            store_f64(a1, sg.add(ch));
            store_f64(a2, sgx.add(ch));
        }
        {
            for ch in c8..c {
                let (mut a1, mut a2) = (0f32, 0f32);
                for r in r0..r1 {
                    let i = r * c + ch;
                    let mut gz = *g.add(i);
                    if !res.is_null() {
                        gz += *res.add(i);
                    }
                    if !mask.is_null() && !super::scalar::keeps(*mask.add(i)) {
                        gz = 0.0;
                    }
                    if write {
                        *g.add(i) = gz;
                    }
                    let xhat = (*y.add(i) - *mean.add(ch)) * *invstd.add(ch);
                    a1 += gz;
                    a2 += gz * xhat;
                }
                *sg.add(ch) = f64::from(a1);
                *sgx.add(ch) = f64::from(a2);
            }
        }
    }
}

/// See `super::scalar::grad_apply`.
///
/// # Safety
/// As `super::scalar::grad_apply`, on a CPU with AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn grad_apply(
    gz: *const f32,
    y: *mut f32,
    mean: *const f32,
    invstd: *const f32,
    k: *const f32,
    mg: *const f32,
    mgx: *const f32,
    c: usize,
    r0: usize,
    r1: usize,
) {
    let c8 = c / 8 * 8;
    unsafe {
        for r in r0..r1 {
            let row = r * c;
            for ch in (0..c8).step_by(8) {
                let xhat = _mm256_mul_ps(
                    _mm256_sub_ps(_mm256_loadu_ps(y.add(row + ch)), _mm256_loadu_ps(mean.add(ch))),
                    _mm256_loadu_ps(invstd.add(ch)),
                );
                let t = _mm256_sub_ps(_mm256_loadu_ps(gz.add(row + ch)), _mm256_loadu_ps(mg.add(ch)));
                let t = _mm256_fnmadd_ps(xhat, _mm256_loadu_ps(mgx.add(ch)), t);
                _mm256_storeu_ps(y.add(row + ch), _mm256_mul_ps(_mm256_loadu_ps(k.add(ch)), t));
            }
            for ch in c8..c {
                let i = row + ch;
                let xhat = (*y.add(i) - *mean.add(ch)) * *invstd.add(ch);
                *y.add(i) = *k.add(ch) * (*gz.add(i) - *mg.add(ch) - xhat * *mgx.add(ch));
            }
        }
    }
}
