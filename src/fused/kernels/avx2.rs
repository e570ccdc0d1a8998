//! The AVX2 level: [`F32x8`] (its instructions in `super::levels`), eight channels of a row at a
//! time (channels-last rows are contiguous in channels, and the networks' widths are multiples of
//! eight), for the bodies in `super::vector`. bf16 values widen to f32 on load and round to the
//! nearest even on store, as `half::bf16::from_f32` and libtorch round.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::bf16;
pub use super::levels::F32x8;
use super::vector::Stored;

super::level_entry!("avx2,fma", F32x8);

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

impl Stored<F32x8> for bf16 {
    /// A bf16 value is the upper half of the f32 with the same bits.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load_lanes(p: *const bf16) -> F32x8 {
        let halves = _mm256_cvtepu16_epi32(unsafe { _mm_loadu_si128(p as *const __m128i) });
        F32x8(_mm256_castsi256_ps(_mm256_slli_epi32::<16>(halves)))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store_lanes(p: *mut bf16, v: F32x8) -> F32x8 {
        let kept = unsafe { round_to_bf16(v.0) };
        let upper = _mm256_srli_epi32::<16>(kept);
        // Packing works within each 128-bit half: the two halves' four values sit in the
        // vector's 64-bit quarters 0 and 2.
        let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(upper, upper));
        unsafe { _mm_storeu_si128(p as *mut __m128i, _mm256_castsi256_si128(packed)) };
        F32x8(_mm256_castsi256_ps(_mm256_and_si256(kept, _mm256_set1_epi32(-65536))))
    }
}
