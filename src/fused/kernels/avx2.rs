//! The kernels with AVX2 and FMA, eight channels of a row at a time (channels-last rows are
//! contiguous in channels, and the networks' widths are multiples of eight); leftover channels
//! take the scalar arithmetic. Same contracts as `super::scalar`; sums may differ from its in the
//! last bits (two accumulators, fused multiply-adds). bf16 values widen to f32 on load and round
//! to the nearest even on store, as `half::bf16::from_f32` and libtorch round.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::{Elem, Res, bf16};

/// Eight stored values to and from the eight f32 lanes of a vector.
pub trait Lanes8: Elem {
    /// # Safety
    /// `p` holds eight values; the CPU has AVX2.
    unsafe fn load8(p: *const Self) -> __m256;
    /// Stores `v` at `p` and returns the values stored (as loading them again would give).
    ///
    /// # Safety
    /// `p` has room for eight values; the CPU has AVX2.
    unsafe fn store8(p: *mut Self, v: __m256) -> __m256;
}

impl Lanes8 for f32 {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load8(p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store8(p: *mut f32, v: __m256) -> __m256 {
        unsafe { _mm256_storeu_ps(p, v) };
        v
    }
}

/// Each lane's bits rounded to bf16's (the upper half; the lower half is left as it was): to the
/// nearest even (adding 0x7fff plus the kept half's lowest bit carries into the upper half exactly
/// when the dropped half is above, or at and odd), a NaN kept a NaN.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn round_to_bf16(v: __m256) -> __m256i {
    let bits = _mm256_castps_si256(v);
    let odd = _mm256_and_si256(_mm256_srli_epi32::<16>(bits), _mm256_set1_epi32(1));
    let rounded = _mm256_add_epi32(bits, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff)));
    let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
    let quiet = _mm256_or_si256(bits, _mm256_set1_epi32(0x0040_0000));
    _mm256_blendv_epi8(rounded, quiet, nan)
}

impl Lanes8 for bf16 {
    /// A bf16 value is the upper half of the f32 with the same bits.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load8(p: *const bf16) -> __m256 {
        unsafe {
            let halves = _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i));
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(halves))
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store8(p: *mut bf16, v: __m256) -> __m256 {
        let kept = unsafe { round_to_bf16(v) };
        let upper = _mm256_srli_epi32::<16>(kept);
        // Packing works within each 128-bit half: the two halves' four values sit in the
        // vector's 64-bit quarters 0 and 2.
        let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(upper, upper));
        unsafe { _mm_storeu_si128(p as *mut __m128i, _mm256_castsi256_si128(packed)) };
        _mm256_castsi256_ps(_mm256_and_si256(kept, _mm256_set1_epi32(-65536)))
    }
}

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
pub unsafe fn stats<E: Lanes8>(
    y: *const E,
    c: usize,
    r0: usize,
    r1: usize,
    shift: *const f32,
    s1: *mut f64,
    s2: *mut f64,
) {
    let c8 = c / 8 * 8;
    unsafe {
        for ch in (0..c8).step_by(8) {
            let sh = _mm256_loadu_ps(shift.add(ch));
            let (mut a1, mut a2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let (mut b1, mut b2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut r = r0;
            while r + 1 < r1 {
                let d = _mm256_sub_ps(E::load8(y.add(r * c + ch)), sh);
                let e = _mm256_sub_ps(E::load8(y.add((r + 1) * c + ch)), sh);
                a1 = _mm256_add_ps(a1, d);
                a2 = _mm256_fmadd_ps(d, d, a2);
                b1 = _mm256_add_ps(b1, e);
                b2 = _mm256_fmadd_ps(e, e, b2);
                r += 2;
            }
            if r < r1 {
                let d = _mm256_sub_ps(E::load8(y.add(r * c + ch)), sh);
                a1 = _mm256_add_ps(a1, d);
                a2 = _mm256_fmadd_ps(d, d, a2);
            }
            store_f64(_mm256_add_ps(a1, b1), s1.add(ch));
            store_f64(_mm256_add_ps(a2, b2), s2.add(ch));
        }
        for ch in c8..c {
            let (mut a1, mut a2) = (0f32, 0f32);
            for r in r0..r1 {
                let d = (*y.add(r * c + ch)).to_f32() - *shift.add(ch);
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
pub unsafe fn normalize<E: Lanes8>(
    y: *const E,
    a: *const f32,
    b: *const f32,
    res: Res<E>,
    out: *mut E,
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
                Res::Subsample { cin, h, w, hin, win, .. } => (Res::<E>::subsample_row(r, h, w, hin, win) * cin, cin),
                _ => (row, c),
            };
            for ch in (0..c8).step_by(8) {
                let mut v =
                    _mm256_fmadd_ps(_mm256_loadu_ps(a.add(ch)), E::load8(y.add(row + ch)), _mm256_loadu_ps(b.add(ch)));
                match res {
                    Res::None => {}
                    Res::Same(x) => v = _mm256_add_ps(v, E::load8(x.add(row + ch))),
                    Res::Affine { y: yp, a: ap, b: bp } => {
                        let p = _mm256_fmadd_ps(
                            _mm256_loadu_ps(ap.add(ch)),
                            E::load8(yp.add(row + ch)),
                            _mm256_loadu_ps(bp.add(ch)),
                        );
                        v = _mm256_add_ps(v, p);
                    }
                    Res::Subsample { x, .. } => {
                        if ch + 8 <= rc {
                            v = _mm256_add_ps(v, E::load8(x.add(rx + ch)));
                        } else if ch < rc {
                            let mut tmp = [E::from_f32(0.0); 8];
                            for (lane, slot) in tmp.iter_mut().enumerate().take(rc - ch) {
                                *slot = *x.add(rx + ch + lane);
                            }
                            v = _mm256_add_ps(v, E::load8(tmp.as_ptr()));
                        }
                    }
                }
                E::store8(out.add(row + ch), _mm256_max_ps(v, zero));
            }
            for ch in c8..c {
                let v = *a.add(ch) * (*y.add(row + ch)).to_f32() + *b.add(ch) + super::scalar::residual(res, c, r, ch);
                *out.add(row + ch) = E::from_f32(v.max(0.0));
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
pub unsafe fn grad_reduce<E: Lanes8>(
    g: *mut E,
    res: *const E,
    mask: *const E,
    y: *const E,
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
                let mut gz = E::load8(g.add(i));
                if !res.is_null() {
                    gz = _mm256_add_ps(gz, E::load8(res.add(i)));
                }
                if !mask.is_null() {
                    gz = _mm256_and_ps(gz, _mm256_cmp_ps::<_CMP_GT_OQ>(E::load8(mask.add(i)), zero));
                }
                if write {
                    // Summed as stored: the second pass reads it back.
                    gz = E::store8(g.add(i), gz);
                }
                let xhat = _mm256_mul_ps(_mm256_sub_ps(E::load8(y.add(i)), m), s);
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
                    let mut gz = (*g.add(i)).to_f32();
                    if !res.is_null() {
                        gz += (*res.add(i)).to_f32();
                    }
                    if !mask.is_null() && !super::scalar::keeps((*mask.add(i)).to_f32()) {
                        gz = 0.0;
                    }
                    if write {
                        *g.add(i) = E::from_f32(gz);
                        gz = (*g.add(i)).to_f32();
                    }
                    let xhat = ((*y.add(i)).to_f32() - *mean.add(ch)) * *invstd.add(ch);
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
pub unsafe fn grad_apply<E: Lanes8>(
    gz: *const E,
    y: *mut E,
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
                    _mm256_sub_ps(E::load8(y.add(row + ch)), _mm256_loadu_ps(mean.add(ch))),
                    _mm256_loadu_ps(invstd.add(ch)),
                );
                let t = _mm256_sub_ps(E::load8(gz.add(row + ch)), _mm256_loadu_ps(mg.add(ch)));
                let t = _mm256_fnmadd_ps(xhat, _mm256_loadu_ps(mgx.add(ch)), t);
                E::store8(y.add(row + ch), _mm256_mul_ps(_mm256_loadu_ps(k.add(ch)), t));
            }
            for ch in c8..c {
                let i = row + ch;
                let xhat = ((*y.add(i)).to_f32() - *mean.add(ch)) * *invstd.add(ch);
                *y.add(i) = E::from_f32(*k.add(ch) * ((*gz.add(i)).to_f32() - *mg.add(ch) - xhat * *mgx.add(ch)));
            }
        }
    }
}
