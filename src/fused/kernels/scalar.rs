//! The kernels in plain Rust, one element at a time: the reference the vector bodies
//! (`super::vector`) are tested against, and what they run for the channels past their last
//! whole vector. (`fused::applies` keeps the fused pass off CPUs without AVX2, so this is not a
//! level a training run takes alone.)
//!
//! Each function works on rows `rows` and channels `chans` of a channels-last tensor of `c`
//! channels (a row is one image position, its `c` values contiguous); see `super` for what each
//! computes. Activations are stored as `E` (fp32 or bf16) and computed on in f32, each channel's
//! sums in one f32 accumulator over the rows.

use super::args::{GradApply, GradReduce, Normalize, Stats};
use super::{Elem, RawResidual};
use std::ops::Range;

/// Per-channel sums of `y - shift` and of its square over the rows, into chunk `chunk`'s slots.
///
/// # Safety
/// `y` holds the rows; `shift` holds `c` values; the sums have room for chunk `chunk`.
pub unsafe fn stats<E: Elem>(k: &Stats<E>, rows: Range<usize>, chans: Range<usize>, chunk: usize) {
    let c = k.c;
    let (s1, s2) = unsafe { k.sums.of(chunk, c) };
    let mut a1 = vec![0f32; chans.len()];
    let mut a2 = vec![0f32; chans.len()];
    for r in rows {
        for (j, ch) in chans.clone().enumerate() {
            let d = unsafe { (*k.y.add(r * c + ch)).to_f32() - *k.shift.add(ch) };
            a1[j] += d;
            a2[j] += d * d;
        }
    }
    for (j, ch) in chans.enumerate() {
        unsafe {
            *s1.add(ch) = f64::from(a1[j]);
            *s2.add(ch) = f64::from(a2[j]);
        }
    }
}

/// The residual's value at row `r`, channel `ch`, of rows of `c` channels.
///
/// # Safety
/// The residual's tensors hold row `r` (after the option-A mapping).
#[inline(always)]
pub unsafe fn residual<E: Elem>(res: RawResidual<E>, c: usize, r: usize, ch: usize) -> f32 {
    unsafe {
        match res {
            RawResidual::None => 0.0,
            RawResidual::Same(x) => (*x.add(r * c + ch)).to_f32(),
            RawResidual::Affine { y, a, b } => *a.add(ch) * (*y.add(r * c + ch)).to_f32() + *b.add(ch),
            RawResidual::Subsample { x, cin, .. } => {
                if ch < cin {
                    (*x.add(res.row_start(r, c) + ch)).to_f32()
                } else {
                    0.0
                }
            }
        }
    }
}

/// `out = max(a * y + b + residual, 0)`.
///
/// # Safety
/// `y` and `out` hold the rows, `a` and `b` hold `c` values; see [`residual`].
pub unsafe fn normalize<E: Elem>(k: &Normalize<E>, rows: Range<usize>, chans: Range<usize>, _chunk: usize) {
    let c = k.c;
    for r in rows {
        for ch in chans.clone() {
            unsafe {
                let v = *k.a.add(ch) * (*k.y.add(r * c + ch)).to_f32() + *k.b.add(ch) + residual(k.res, c, r, ch);
                *k.out.add(r * c + ch) = E::from_f32(v.max(0.0));
            }
        }
    }
}

/// `gz = (g + res) * (mask > 0)`, stored back into `g` when `res` or `mask` is given, and the
/// per-channel sums of `gz` and of `gz * (y - mean) * invstd` into chunk `chunk`'s slots.
///
/// # Safety
/// `g`, `y` and the non-null `res` and `mask` hold the rows; `mean` and `invstd` hold `c`
/// values; the sums have room for chunk `chunk`.
pub unsafe fn grad_reduce<E: Elem>(k: &GradReduce<E>, rows: Range<usize>, chans: Range<usize>, chunk: usize) {
    let c = k.c;
    let (sg, sgx) = unsafe { k.sums.of(chunk, c) };
    let mut a1 = vec![0f32; chans.len()];
    let mut a2 = vec![0f32; chans.len()];
    let write = k.writes();
    for r in rows {
        for (j, ch) in chans.clone().enumerate() {
            let i = r * c + ch;
            unsafe {
                let mut gz = (*k.g.add(i)).to_f32();
                if !k.res.is_null() {
                    gz += (*k.res.add(i)).to_f32();
                }
                if !k.mask.is_null() && !keeps((*k.mask.add(i)).to_f32()) {
                    gz = 0.0;
                }
                if write {
                    // Summed as stored: the second pass reads it back.
                    *k.g.add(i) = E::from_f32(gz);
                    gz = (*k.g.add(i)).to_f32();
                }
                let xhat = ((*k.y.add(i)).to_f32() - *k.mean.add(ch)) * *k.invstd.add(ch);
                a1[j] += gz;
                a2[j] += gz * xhat;
            }
        }
    }
    for (j, ch) in chans.enumerate() {
        unsafe {
            *sg.add(ch) = f64::from(a1[j]);
            *sgx.add(ch) = f64::from(a2[j]);
        }
    }
}

/// BatchNorm's input gradient, in place of `y`: `k * (gz - mg - (y - mean) * invstd * mgx)`.
///
/// # Safety
/// `gz` and `y` hold the rows; the five coefficient arrays hold `c` values.
pub unsafe fn grad_apply<E: Elem>(k: &GradApply<E>, rows: Range<usize>, chans: Range<usize>, _chunk: usize) {
    let c = k.c;
    for r in rows {
        for ch in chans.clone() {
            let i = r * c + ch;
            unsafe {
                let xhat = ((*k.y.add(i)).to_f32() - *k.mean.add(ch)) * *k.invstd.add(ch);
                let v = *k.k.add(ch) * ((*k.gz.add(i)).to_f32() - *k.mg.add(ch) - xhat * *k.mgx.add(ch));
                *k.y.add(i) = E::from_f32(v);
            }
        }
    }
}

/// Whether a ReLU whose output is `out` passes its gradient: `out > 0` (false for NaN, as
/// PyTorch's `threshold_backward` and the vector levels' ordered comparison).
#[inline(always)]
pub fn keeps(out: f32) -> bool {
    out > 0.0
}
