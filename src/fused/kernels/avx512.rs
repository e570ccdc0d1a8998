//! The kernels with AVX-512 (Foundation), sixteen channels of a row at a time, for tensors whose
//! channel count is a multiple of sixteen (every width of the paper's networks); the others take
//! `super::avx2`. Same contracts and arithmetic as `super::avx2`, twice as wide. bf16 gains most:
//! AVX-512 narrows sixteen 32-bit lanes to 16 bits in one instruction (`vpmovdw`) and keeps its
//! comparisons in mask registers, where AVX2 needs a pack, a lane permute and a blend.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::{Elem, Res, bf16};

/// Sixteen stored values to and from the sixteen f32 lanes of a vector.
pub trait Lanes16: Elem {
    /// # Safety
    /// `p` holds sixteen values; the CPU has AVX-512F.
    unsafe fn load16(p: *const Self) -> __m512;
    /// Stores `v` at `p` and returns the values stored (as loading them again would give).
    ///
    /// # Safety
    /// `p` has room for sixteen values; the CPU has AVX-512F.
    unsafe fn store16(p: *mut Self, v: __m512) -> __m512;
}

impl Lanes16 for f32 {
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(p: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(p) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store16(p: *mut f32, v: __m512) -> __m512 {
        unsafe { _mm512_storeu_ps(p, v) };
        v
    }
}

impl Lanes16 for bf16 {
    /// A bf16 value is the upper half of the f32 with the same bits.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(p: *const bf16) -> __m512 {
        unsafe { _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast())))) }
    }

    /// Rounds to the nearest even as `super::avx2` does (a NaN stays a NaN), then narrows.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store16(p: *mut bf16, v: __m512) -> __m512 {
        let bits = _mm512_castps_si512(v);
        let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
        let rounded = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
        let quiet = _mm512_or_si512(bits, _mm512_set1_epi32(0x0040_0000));
        let kept = _mm512_mask_blend_epi32(nan, rounded, quiet);
        unsafe { _mm256_storeu_si256(p.cast(), _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(kept))) };
        _mm512_castsi512_ps(_mm512_and_si512(kept, _mm512_set1_epi32(-65536)))
    }
}

/// Writes the sixteen f32 lanes of `v` widened to f64 at `dst`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store_f64(v: __m512, dst: *mut f64) {
    let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    unsafe {
        _mm512_storeu_pd(dst, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        _mm512_storeu_pd(dst.add(8), _mm512_cvtps_pd(high));
    }
}

/// See `super::scalar::stats`.
///
/// # Safety
/// As `super::scalar::stats`, with `c` a multiple of 16, on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn stats<E: Lanes16>(
    y: *const E,
    c: usize,
    r0: usize,
    r1: usize,
    shift: *const f32,
    s1: *mut f64,
    s2: *mut f64,
) {
    unsafe {
        for ch in (0..c).step_by(16) {
            let sh = _mm512_loadu_ps(shift.add(ch));
            let (mut a1, mut a2) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            let (mut b1, mut b2) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            let mut r = r0;
            while r + 1 < r1 {
                let d = _mm512_sub_ps(E::load16(y.add(r * c + ch)), sh);
                let e = _mm512_sub_ps(E::load16(y.add((r + 1) * c + ch)), sh);
                a1 = _mm512_add_ps(a1, d);
                a2 = _mm512_fmadd_ps(d, d, a2);
                b1 = _mm512_add_ps(b1, e);
                b2 = _mm512_fmadd_ps(e, e, b2);
                r += 2;
            }
            if r < r1 {
                let d = _mm512_sub_ps(E::load16(y.add(r * c + ch)), sh);
                a1 = _mm512_add_ps(a1, d);
                a2 = _mm512_fmadd_ps(d, d, a2);
            }
            store_f64(_mm512_add_ps(a1, b1), s1.add(ch));
            store_f64(_mm512_add_ps(a2, b2), s2.add(ch));
        }
    }
}

/// Sixteen values of the residual at `row + ch` (see `super::scalar::residual`).
///
/// # Safety
/// As `super::scalar::residual`, for channels `ch..ch + 16`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn residual16<E: Lanes16>(res: Res<E>, row: usize, rx: usize, ch: usize) -> __m512 {
    unsafe {
        match res {
            Res::None => _mm512_setzero_ps(),
            Res::Same(x) => E::load16(x.add(row + ch)),
            Res::Affine { y, a, b } => {
                _mm512_fmadd_ps(_mm512_loadu_ps(a.add(ch)), E::load16(y.add(row + ch)), _mm512_loadu_ps(b.add(ch)))
            }
            Res::Subsample { x, cin, .. } => {
                if ch + 16 <= cin {
                    E::load16(x.add(rx + ch))
                } else if ch < cin {
                    // The input's last channels, then the zero padding.
                    let mut tmp = [E::from_f32(0.0); 16];
                    for (lane, slot) in tmp.iter_mut().enumerate().take(cin - ch) {
                        *slot = *x.add(rx + ch + lane);
                    }
                    E::load16(tmp.as_ptr())
                } else {
                    _mm512_setzero_ps()
                }
            }
        }
    }
}

/// See `super::scalar::normalize`.
///
/// # Safety
/// As `super::scalar::normalize`, with `c` a multiple of 16, on a CPU with AVX-512F.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub unsafe fn normalize<E: Lanes16>(
    y: *const E,
    a: *const f32,
    b: *const f32,
    res: Res<E>,
    out: *mut E,
    c: usize,
    r0: usize,
    r1: usize,
) {
    let zero = _mm512_setzero_ps();
    unsafe {
        for r in r0..r1 {
            let row = r * c;
            // Where this row's option-A residual starts.
            let rx = match res {
                Res::Subsample { cin, h, w, hin, win, .. } => Res::<E>::subsample_row(r, h, w, hin, win) * cin,
                _ => row,
            };
            for ch in (0..c).step_by(16) {
                let v =
                    _mm512_fmadd_ps(_mm512_loadu_ps(a.add(ch)), E::load16(y.add(row + ch)), _mm512_loadu_ps(b.add(ch)));
                let v = _mm512_add_ps(v, residual16(res, row, rx, ch));
                E::store16(out.add(row + ch), _mm512_max_ps(v, zero));
            }
        }
    }
}

/// See `super::scalar::grad_reduce`.
///
/// # Safety
/// As `super::scalar::grad_reduce`, with `c` a multiple of 16, on a CPU with AVX-512F.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub unsafe fn grad_reduce<E: Lanes16>(
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
    let write = !res.is_null() || !mask.is_null();
    let zero = _mm512_setzero_ps();
    unsafe {
        for ch in (0..c).step_by(16) {
            let (m, s) = (_mm512_loadu_ps(mean.add(ch)), _mm512_loadu_ps(invstd.add(ch)));
            let (mut a1, mut a2) = (zero, zero);
            for r in r0..r1 {
                let i = r * c + ch;
                let mut gz = E::load16(g.add(i));
                if !res.is_null() {
                    gz = _mm512_add_ps(gz, E::load16(res.add(i)));
                }
                if !mask.is_null() {
                    gz = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(E::load16(mask.add(i)), zero), gz);
                }
                if write {
                    // Summed as stored: the second pass reads it back.
                    gz = E::store16(g.add(i), gz);
                }
                let xhat = _mm512_mul_ps(_mm512_sub_ps(E::load16(y.add(i)), m), s);
                a1 = _mm512_add_ps(a1, gz);
                a2 = _mm512_fmadd_ps(gz, xhat, a2);
            }
            store_f64(a1, sg.add(ch));
            store_f64(a2, sgx.add(ch));
        }
    }
}

/// See `super::scalar::grad_apply`.
///
/// # Safety
/// As `super::scalar::grad_apply`, with `c` a multiple of 16, on a CPU with AVX-512F.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub unsafe fn grad_apply<E: Lanes16>(
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
    unsafe {
        for r in r0..r1 {
            let row = r * c;
            for ch in (0..c).step_by(16) {
                let xhat = _mm512_mul_ps(
                    _mm512_sub_ps(E::load16(y.add(row + ch)), _mm512_loadu_ps(mean.add(ch))),
                    _mm512_loadu_ps(invstd.add(ch)),
                );
                let t = _mm512_sub_ps(E::load16(gz.add(row + ch)), _mm512_loadu_ps(mg.add(ch)));
                let t = _mm512_fnmadd_ps(xhat, _mm512_loadu_ps(mgx.add(ch)), t);
                E::store16(y.add(row + ch), _mm512_mul_ps(_mm512_loadu_ps(k.add(ch)), t));
            }
        }
    }
}
