//! What each kernel reads and writes, as one value of raw pointers that the chunks of a pass
//! share across threads. The public functions in `super` check the sizes and build these; the
//! bodies in `super::vector` and `super::scalar` read them.

use super::RawResidual;

/// Where a reduction's chunks write their per-channel sums: chunk `k`'s slots are
/// `k * c..(k + 1) * c` of each array.
#[derive(Clone, Copy)]
pub struct Sums {
    pub first: *mut f64,
    pub second: *mut f64,
}

impl Sums {
    /// Chunk `chunk`'s slots of the two arrays, for rows of `c` channels.
    ///
    /// # Safety
    /// The arrays have room for `(chunk + 1) * c` values.
    #[inline(always)]
    pub unsafe fn of(self, chunk: usize, c: usize) -> (*mut f64, *mut f64) {
        unsafe { (self.first.add(chunk * c), self.second.add(chunk * c)) }
    }
}

/// Per-channel sums of `y - shift` and of its square (see [`scalar::stats`]).
pub struct Stats<E> {
    pub y: *const E,
    pub c: usize,
    pub shift: *const f32,
    pub sums: Sums,
}

/// `out = max(a * y + b + residual, 0)` (see [`scalar::normalize`]).
pub struct Normalize<E> {
    pub y: *const E,
    pub a: *const f32,
    pub b: *const f32,
    pub res: RawResidual<E>,
    pub out: *mut E,
    pub c: usize,
}

/// BatchNorm's backward, first pass (see [`scalar::grad_reduce`]). `res` and `mask` may be null.
pub struct GradReduce<E> {
    pub g: *mut E,
    pub res: *const E,
    pub mask: *const E,
    pub y: *const E,
    pub mean: *const f32,
    pub invstd: *const f32,
    pub c: usize,
    pub sums: Sums,
}

impl<E> GradReduce<E> {
    /// Whether `gz` differs from `g` and is stored back for the second pass.
    #[inline(always)]
    pub fn writes(&self) -> bool {
        !self.res.is_null() || !self.mask.is_null()
    }
}

/// BatchNorm's backward, second pass (see [`scalar::grad_apply`]).
pub struct GradApply<E> {
    pub gz: *const E,
    pub y: *mut E,
    pub mean: *const f32,
    pub invstd: *const f32,
    pub k: *const f32,
    pub mg: *const f32,
    pub mgx: *const f32,
    pub c: usize,
}

// SAFETY: the pointers are into tensors that outlive the pass; every chunk reads what it likes
// and writes only its own rows and its own slots of the sums.
unsafe impl Send for Sums {}
unsafe impl Sync for Sums {}
unsafe impl<E> Sync for Stats<E> {}
unsafe impl<E> Sync for Normalize<E> {}
unsafe impl<E> Sync for GradReduce<E> {}
unsafe impl<E> Sync for GradApply<E> {}
