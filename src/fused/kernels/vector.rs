//! One body for each kernel, written once over [`Vector`], a vector of f32 lanes, and built at
//! each level by `super::avx2` and `super::avx512` under their `#[target_feature]`. Channels past
//! the last whole vector take `super::scalar`, the reference the bodies are tested against.
//!
//! Channels-last rows are contiguous in channels, so a vector holds `LANES` channels of one row.
//! The reductions keep one accumulator a vector (two in `stats`, over alternate rows, which lets
//! the additions of two rows overlap) and sum in f32 within a chunk of rows, as the scalar
//! reference does per channel; their sums may differ from its in the last bits (fused
//! multiply-adds, the two accumulators).

use super::args::{GradApply, GradReduce, Normalize, Stats};
use super::{Elem, RawResidual, scalar};
use std::ops::Range;

/// `LANES` f32 values, and the few operations the kernels need. Every method is `unsafe`: it
/// needs the instructions of its level, which the caller's `#[target_feature]` vouches for.
pub trait Vector: Copy {
    const LANES: usize;
    /// # Safety
    /// The CPU has this level's instructions (so do all the methods below).
    unsafe fn zero() -> Self;
    /// # Safety
    /// `p` holds `LANES` values.
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn add(self, other: Self) -> Self;
    unsafe fn sub(self, other: Self) -> Self;
    unsafe fn mul(self, other: Self) -> Self;
    /// `self * b + c`, rounded once.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// `c - self * b`, rounded once.
    unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self;
    unsafe fn max(self, other: Self) -> Self;
    /// `self` where `mask > 0` (an ordered comparison: false for NaN, as [`scalar::keeps`]), else 0.
    unsafe fn keep_where_positive(self, mask: Self) -> Self;
    /// Writes the lanes widened to f64 at `dst`.
    ///
    /// # Safety
    /// `dst` has room for `LANES` values.
    unsafe fn store_f64(self, dst: *mut f64);
}

/// Stored values (fp32 or bf16) to and from the f32 lanes of `V`.
pub trait Stored<V: Vector>: Elem {
    /// # Safety
    /// `p` holds `LANES` values; the CPU has `V`'s instructions.
    unsafe fn load_lanes(p: *const Self) -> V;
    /// Stores `v` at `p` and returns the values stored (as loading them again would give).
    ///
    /// # Safety
    /// `p` has room for `LANES` values; the CPU has `V`'s instructions.
    unsafe fn store_lanes(p: *mut Self, v: V) -> V;
}

/// Declares `$name`, a vector of `$lanes` f32 lanes in a `$reg` register, and implements
/// [`Vector`] for it and [`Stored`] for f32 from the level's intrinsics, each method built with
/// `$features`. A level writes what differs (the comparison, the widening store) as closures.
macro_rules! vector_type {
    (
        $name:ident($reg:ty), $lanes:literal, $features:literal,
        zero: $zero:ident, load: $load:ident, store: $store:ident,
        ops: { $($op:ident: $intrinsic:ident),* },
        fused: { $($fop:ident: $fintrinsic:ident),* },
        keep_where_positive: |$v:ident, $mask:ident| $keep:expr,
        store_f64: |$w:ident, $dst:ident| $widen:block
    ) => {
        #[doc = concat!(stringify!($lanes), " f32 lanes of a register.")]
        #[derive(Clone, Copy)]
        pub struct $name(pub(in $crate::fused::kernels) $reg);

        impl $crate::fused::kernels::vector::Vector for $name {
            const LANES: usize = $lanes;
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn zero() -> Self {
                $name($zero())
            }
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn load(p: *const f32) -> Self {
                $name(unsafe { $load(p) })
            }
            $(
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn $op(self, other: Self) -> Self {
                    $name($intrinsic(self.0, other.0))
                }
            )*
            $(
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn $fop(self, b: Self, c: Self) -> Self {
                    $name($fintrinsic(self.0, b.0, c.0))
                }
            )*
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn keep_where_positive(self, mask: Self) -> Self {
                let ($v, $mask) = (self.0, mask.0);
                $name($keep)
            }
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn store_f64(self, dst: *mut f64) {
                let ($w, $dst) = (self.0, dst);
                unsafe { $widen }
            }
        }

        impl $crate::fused::kernels::vector::Stored<$name> for f32 {
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn load_lanes(p: *const f32) -> $name {
                $name(unsafe { $load(p) })
            }
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn store_lanes(p: *mut f32, v: $name) -> $name {
                unsafe { $store(p, v.0) };
                v
            }
        }
    };
}
pub(super) use vector_type;

/// The channels a vector body covers: whole vectors, the rest to the scalar reference.
#[inline(always)]
fn whole<V: Vector>(c: usize) -> usize {
    c / V::LANES * V::LANES
}

/// See [`scalar::stats`].
///
/// # Safety
/// As [`scalar::stats`], on a CPU with `V`'s instructions.
#[inline(always)]
pub unsafe fn stats<V: Vector, E: Stored<V>>(k: &Stats<E>, rows: Range<usize>, chunk: usize) {
    let (c, cv) = (k.c, whole::<V>(k.c));
    unsafe {
        let (s1, s2) = k.sums.of(chunk, c);
        for ch in (0..cv).step_by(V::LANES) {
            let sh = V::load(k.shift.add(ch));
            let (mut a1, mut a2, mut b1, mut b2) = (V::zero(), V::zero(), V::zero(), V::zero());
            let mut r = rows.start;
            while r + 1 < rows.end {
                let d = E::load_lanes(k.y.add(r * c + ch)).sub(sh);
                let e = E::load_lanes(k.y.add((r + 1) * c + ch)).sub(sh);
                a1 = a1.add(d);
                a2 = d.mul_add(d, a2);
                b1 = b1.add(e);
                b2 = e.mul_add(e, b2);
                r += 2;
            }
            if r < rows.end {
                let d = E::load_lanes(k.y.add(r * c + ch)).sub(sh);
                a1 = a1.add(d);
                a2 = d.mul_add(d, a2);
            }
            a1.add(b1).store_f64(s1.add(ch));
            a2.add(b2).store_f64(s2.add(ch));
        }
        scalar::stats(k, rows, cv..c, chunk);
    }
}

/// `LANES` values of the residual at channels `ch..` of the row that starts at `row` (`rx` for
/// option A's input); see [`scalar::residual`].
///
/// # Safety
/// As [`scalar::residual`], for channels `ch..ch + LANES`.
#[inline(always)]
unsafe fn add_residual<V: Vector, E: Stored<V>>(v: V, res: RawResidual<E>, row: usize, rx: usize, ch: usize) -> V {
    unsafe {
        match res {
            RawResidual::None => v,
            RawResidual::Same(x) => v.add(E::load_lanes(x.add(row + ch))),
            RawResidual::Affine { y, a, b } => {
                v.add(V::load(a.add(ch)).mul_add(E::load_lanes(y.add(row + ch)), V::load(b.add(ch))))
            }
            RawResidual::Subsample { x, cin, .. } => {
                if ch + V::LANES <= cin {
                    v.add(E::load_lanes(x.add(rx + ch)))
                } else if ch < cin {
                    // The input's last channels, then the zero padding (16: the widest vector).
                    const { assert!(V::LANES <= 16) };
                    let mut tmp = [E::from_f32(0.0); 16];
                    for (lane, slot) in tmp.iter_mut().enumerate().take(cin - ch) {
                        *slot = *x.add(rx + ch + lane);
                    }
                    v.add(E::load_lanes(tmp.as_ptr()))
                } else {
                    v
                }
            }
        }
    }
}

/// See [`scalar::normalize`].
///
/// # Safety
/// As [`scalar::normalize`], on a CPU with `V`'s instructions.
#[inline(always)]
pub unsafe fn normalize<V: Vector, E: Stored<V>>(k: &Normalize<E>, rows: Range<usize>, chunk: usize) {
    let (c, cv) = (k.c, whole::<V>(k.c));
    unsafe {
        let zero = V::zero();
        for r in rows {
            let row = r * c;
            let rx = k.res.row_start(r, c);
            for ch in (0..cv).step_by(V::LANES) {
                let v = V::load(k.a.add(ch)).mul_add(E::load_lanes(k.y.add(row + ch)), V::load(k.b.add(ch)));
                let v = add_residual(v, k.res, row, rx, ch);
                E::store_lanes(k.out.add(row + ch), v.max(zero));
            }
            if cv < c {
                scalar::normalize(k, r..r + 1, cv..c, chunk);
            }
        }
    }
}

/// See [`scalar::grad_reduce`].
///
/// # Safety
/// As [`scalar::grad_reduce`], on a CPU with `V`'s instructions.
#[inline(always)]
pub unsafe fn grad_reduce<V: Vector, E: Stored<V>>(k: &GradReduce<E>, rows: Range<usize>, chunk: usize) {
    let (c, cv) = (k.c, whole::<V>(k.c));
    let write = k.writes();
    unsafe {
        let (sg, sgx) = k.sums.of(chunk, c);
        let zero = V::zero();
        for ch in (0..cv).step_by(V::LANES) {
            let (m, s) = (V::load(k.mean.add(ch)), V::load(k.invstd.add(ch)));
            let (mut a1, mut a2) = (zero, zero);
            for r in rows.clone() {
                let i = r * c + ch;
                let mut gz = E::load_lanes(k.g.add(i));
                if !k.res.is_null() {
                    gz = gz.add(E::load_lanes(k.res.add(i)));
                }
                if !k.mask.is_null() {
                    gz = gz.keep_where_positive(E::load_lanes(k.mask.add(i)));
                }
                if write {
                    // Summed as stored: the second pass reads it back.
                    gz = E::store_lanes(k.g.add(i), gz);
                }
                let xhat = E::load_lanes(k.y.add(i)).sub(m).mul(s);
                a1 = a1.add(gz);
                a2 = gz.mul_add(xhat, a2);
            }
            a1.store_f64(sg.add(ch));
            a2.store_f64(sgx.add(ch));
        }
        scalar::grad_reduce(k, rows, cv..c, chunk);
    }
}

/// See [`scalar::grad_apply`].
///
/// # Safety
/// As [`scalar::grad_apply`], on a CPU with `V`'s instructions.
#[inline(always)]
pub unsafe fn grad_apply<V: Vector, E: Stored<V>>(k: &GradApply<E>, rows: Range<usize>, chunk: usize) {
    let (c, cv) = (k.c, whole::<V>(k.c));
    unsafe {
        for r in rows {
            let row = r * c;
            for ch in (0..cv).step_by(V::LANES) {
                let xhat = E::load_lanes(k.y.add(row + ch)).sub(V::load(k.mean.add(ch))).mul(V::load(k.invstd.add(ch)));
                let t = E::load_lanes(k.gz.add(row + ch)).sub(V::load(k.mg.add(ch)));
                let t = xhat.neg_mul_add(V::load(k.mgx.add(ch)), t);
                E::store_lanes(k.y.add(row + ch), V::load(k.k.add(ch)).mul(t));
            }
            if cv < c {
                scalar::grad_apply(k, r..r + 1, cv..c, chunk);
            }
        }
    }
}
