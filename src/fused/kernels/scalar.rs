//! The kernels in plain Rust, one element at a time: the reference the vector levels are checked
//! against, and the level used where the CPU has no AVX2.
//!
//! Each function works on rows `r0..r1` of a channels-last tensor of `c` channels (a row is one
//! image position, its `c` values contiguous); see `super` for what each computes. Activations
//! are stored as `E` (fp32 or bf16) and computed on in f32.

use super::{Elem, Res};

/// Per-channel sums of `y - shift` and of its square over the rows, written to `s1`, `s2`.
///
/// # Safety
/// `y` holds rows `r0..r1` of `c` values; `shift` holds `c`, `s1` and `s2` room for `c`.
pub unsafe fn stats<E: Elem>(
    y: *const E,
    c: usize,
    r0: usize,
    r1: usize,
    shift: *const f32,
    s1: *mut f64,
    s2: *mut f64,
) {
    let mut a1 = vec![0f32; c];
    let mut a2 = vec![0f32; c];
    for r in r0..r1 {
        for ch in 0..c {
            let d = unsafe { (*y.add(r * c + ch)).to_f32() - *shift.add(ch) };
            a1[ch] += d;
            a2[ch] += d * d;
        }
    }
    for ch in 0..c {
        unsafe {
            *s1.add(ch) = f64::from(a1[ch]);
            *s2.add(ch) = f64::from(a2[ch]);
        }
    }
}

/// The residual's value at row `r`, channel `ch`.
///
/// # Safety
/// The residual's tensors hold row `r` (after the option-A mapping).
#[inline(always)]
pub unsafe fn residual<E: Elem>(res: Res<E>, c: usize, r: usize, ch: usize) -> f32 {
    unsafe {
        match res {
            Res::None => 0.0,
            Res::Same(x) => (*x.add(r * c + ch)).to_f32(),
            Res::Affine { y, a, b } => *a.add(ch) * (*y.add(r * c + ch)).to_f32() + *b.add(ch),
            Res::Subsample { x, cin, h, w, hin, win } => {
                if ch < cin {
                    (*x.add(Res::<E>::subsample_row(r, h, w, hin, win) * cin + ch)).to_f32()
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
/// `y` and `out` hold rows `r0..r1` of `c` values, `a` and `b` hold `c`; see [`residual`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn normalize<E: Elem>(
    y: *const E,
    a: *const f32,
    b: *const f32,
    res: Res<E>,
    out: *mut E,
    c: usize,
    r0: usize,
    r1: usize,
) {
    for r in r0..r1 {
        for ch in 0..c {
            unsafe {
                let v = *a.add(ch) * (*y.add(r * c + ch)).to_f32() + *b.add(ch) + residual(res, c, r, ch);
                *out.add(r * c + ch) = E::from_f32(v.max(0.0));
            }
        }
    }
}

/// `gz = (g + res) * (mask > 0)`, stored back into `g` when `res` or `mask` is given, and the
/// per-channel sums of `gz` and of `gz * (y - mean) * invstd` written to `sg` and `sgx`.
///
/// # Safety
/// `g`, `y` and the non-null `res` and `mask` hold rows `r0..r1` of `c` values; `mean` and
/// `invstd` hold `c`; `sg` and `sgx` room for `c`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn grad_reduce<E: Elem>(
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
    let mut a1 = vec![0f32; c];
    let mut a2 = vec![0f32; c];
    let write = !res.is_null() || !mask.is_null();
    for r in r0..r1 {
        for ch in 0..c {
            let i = r * c + ch;
            unsafe {
                let mut gz = (*g.add(i)).to_f32();
                if !res.is_null() {
                    gz += (*res.add(i)).to_f32();
                }
                if !mask.is_null() && !keeps((*mask.add(i)).to_f32()) {
                    gz = 0.0;
                }
                if write {
                    // Summed as stored: the second pass reads it back.
                    *g.add(i) = E::from_f32(gz);
                    gz = (*g.add(i)).to_f32();
                }
                let xhat = ((*y.add(i)).to_f32() - *mean.add(ch)) * *invstd.add(ch);
                a1[ch] += gz;
                a2[ch] += gz * xhat;
            }
        }
    }
    for ch in 0..c {
        unsafe {
            *sg.add(ch) = f64::from(a1[ch]);
            *sgx.add(ch) = f64::from(a2[ch]);
        }
    }
}

/// BatchNorm's input gradient, in place of `y`: `k * (gz - mg - (y - mean) * invstd * mgx)`.
///
/// # Safety
/// `gz` and `y` hold rows `r0..r1` of `c` values; the five coefficient arrays hold `c`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn grad_apply<E: Elem>(
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
    for r in r0..r1 {
        for ch in 0..c {
            let i = r * c + ch;
            unsafe {
                let xhat = ((*y.add(i)).to_f32() - *mean.add(ch)) * *invstd.add(ch);
                *y.add(i) = E::from_f32(*k.add(ch) * ((*gz.add(i)).to_f32() - *mg.add(ch) - xhat * *mgx.add(ch)));
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
