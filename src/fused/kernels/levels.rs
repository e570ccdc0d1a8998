//! The vector levels' instructions side by side: each row one operation of
//! [`Vector`](super::vector::Vector), the AVX2 intrinsic that does it on eight lanes and the
//! AVX-512 one on sixteen. Everything else about a vector type is built from this table by
//! `vector_type!`; each level's module adds its bf16 load and store and its entry point.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Declares both levels' vector types from one table whose rows give an operation at each level
/// (`AVX2 | AVX-512`), by `vector_type!` once per column.
macro_rules! vector_types {
    (
        $a:ident($areg:ty), $alanes:literal, $afeatures:literal
            | $b:ident($breg:ty), $blanes:literal, $bfeatures:literal;
        zero: $azero:ident | $bzero:ident;
        load: $aload:ident | $bload:ident;
        store: $astore:ident | $bstore:ident;
        ops: { $($op:ident: $aop:ident | $bop:ident),* };
        fused: { $($fop:ident: $afop:ident | $bfop:ident),* };
        keep_where_positive: |$v:ident, $mask:ident| $akeep:block | $bkeep:block;
        store_f64: |$w:ident, $dst:ident| $awiden:block | $bwiden:block
    ) => {
        super::vector::vector_type!(
            $a($areg), $alanes, $afeatures,
            zero: $azero, load: $aload, store: $astore,
            ops: { $($op: $aop),* }, fused: { $($fop: $afop),* },
            keep_where_positive: |$v, $mask| $akeep, store_f64: |$w, $dst| $awiden
        );
        super::vector::vector_type!(
            $b($breg), $blanes, $bfeatures,
            zero: $bzero, load: $bload, store: $bstore,
            ops: { $($op: $bop),* }, fused: { $($fop: $bfop),* },
            keep_where_positive: |$v, $mask| $bkeep, store_f64: |$w, $dst| $bwiden
        );
    };
}

vector_types!(
    F32x8(__m256), 8, "avx2,fma" | F32x16(__m512), 16, "avx512f";
    zero: _mm256_setzero_ps | _mm512_setzero_ps;
    load: _mm256_loadu_ps | _mm512_loadu_ps;
    store: _mm256_storeu_ps | _mm512_storeu_ps;
    ops: {
        add: _mm256_add_ps | _mm512_add_ps,
        sub: _mm256_sub_ps | _mm512_sub_ps,
        mul: _mm256_mul_ps | _mm512_mul_ps,
        max: _mm256_max_ps | _mm512_max_ps
    };
    fused: { mul_add: _mm256_fmadd_ps | _mm512_fmadd_ps, neg_mul_add: _mm256_fnmadd_ps | _mm512_fnmadd_ps };
    // AVX2 compares into a vector of all-ones lanes; AVX-512 into a mask register.
    keep_where_positive: |v, mask| { _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_GT_OQ>(mask, _mm256_setzero_ps())) }
        | { _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(mask, _mm512_setzero_ps()), v) };
    // Each half of the lanes widened to f64.
    store_f64: |v, dst| {
        _mm256_storeu_pd(dst, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        _mm256_storeu_pd(dst.add(4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    } | {
        let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
        _mm512_storeu_pd(dst, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        _mm512_storeu_pd(dst.add(8), _mm512_cvtps_pd(high));
    }
);
