//! [`Pass`]: how each kernel's pass runs over some rows, at a vector level (its body in
//! `super::vector`) or at the scalar one (its reference in `super::scalar`).

use super::args::{GradApply, GradReduce, Normalize, Stats};
use super::scalar;
use super::vector::{self, Stored, Vector};
use std::ops::Range;

/// A kernel over rows `rows` (chunk `chunk` of the pass), at a vector level or the scalar one.
pub trait Pass: Sync {
    type Elem: super::Lanes;
    /// The channels of a row.
    fn channels(&self) -> usize;

    /// # Safety
    /// The rows are in the tensors; the CPU has `V`'s instructions.
    unsafe fn vector<V: Vector>(&self, rows: Range<usize>, chunk: usize)
    where
        Self::Elem: Stored<V>;

    /// # Safety
    /// The rows are in the tensors.
    unsafe fn scalar(&self, rows: Range<usize>, chunk: usize);
}

/// Implements [`Pass`] for each pass with its body in `super::vector` and its reference in
/// `super::scalar` (same names; the passes without sums take the chunk and leave it).
macro_rules! passes {
    ($($pass:ident => $body:ident),*) => {$(
        impl<E: super::Lanes> Pass for $pass<E> {
            type Elem = E;
            fn channels(&self) -> usize {
                self.c
            }
            #[inline(always)]
            unsafe fn vector<V: Vector>(&self, rows: Range<usize>, chunk: usize)
            where
                E: Stored<V>,
            {
                unsafe { vector::$body::<V, E>(self, rows, chunk) }
            }
            unsafe fn scalar(&self, rows: Range<usize>, chunk: usize) {
                unsafe { scalar::$body(self, rows, 0..self.c, chunk) }
            }
        }
    )*};
}

passes!(Stats => stats, Normalize => normalize, GradReduce => grad_reduce, GradApply => grad_apply);
