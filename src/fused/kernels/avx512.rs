//! The AVX-512 level: [`F32x16`] (its instructions in `super::levels`), sixteen channels of a
//! row at a time, for tensors whose channel count is a multiple of sixteen (every width of the
//! paper's networks; the others take AVX2), for the bodies in `super::vector`. bf16 gains most:
//! AVX-512 narrows sixteen 32-bit lanes to 16 bits in one instruction (`vpmovdw`) and keeps its
//! comparisons in mask registers, where AVX2 needs a pack, a lane permute and a blend.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::bf16;
pub use super::levels::F32x16;
use super::vector::Stored;

super::level_entry!("avx512f", F32x16);

impl Stored<F32x16> for bf16 {
    /// A bf16 value is the upper half of the f32 with the same bits.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_lanes(p: *const bf16) -> F32x16 {
        let halves = _mm512_cvtepu16_epi32(unsafe { _mm256_loadu_si256(p.cast()) });
        F32x16(_mm512_castsi512_ps(_mm512_slli_epi32::<16>(halves)))
    }

    /// Rounds to the nearest even as the AVX2 level does (a NaN stays a NaN), then narrows.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store_lanes(p: *mut bf16, v: F32x16) -> F32x16 {
        let bits = _mm512_castps_si512(v.0);
        let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
        let rounded = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v.0, v.0);
        let quiet = _mm512_or_si512(bits, _mm512_set1_epi32(0x0040_0000));
        let kept = _mm512_mask_blend_epi32(nan, rounded, quiet);
        unsafe { _mm256_storeu_si256(p.cast(), _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(kept))) };
        F32x16(_mm512_castsi512_ps(_mm512_and_si512(kept, _mm512_set1_epi32(-65536))))
    }
}
