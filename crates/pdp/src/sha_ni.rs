//! Two SHA254 node hashes at once with the x86 SHA extensions.
//!
//! Written by hand because no maintained crate offers it: `sha2` hashes one message at a time,
//! and on the SHA-NI cores we run on (AMD Zen, Intel Ice Lake and later) one message's
//! compression is bound by the latency of `sha256rnds2`, each round pair waiting on the last.
//! Every level of a Merkle tree is made of independent pairs, so this kernel runs two of them
//! through the same rounds, interleaved, and the second stream fills the first one's wait.
//! It also knows the shape of the messages: a node hash is SHA-256 of exactly 64 bytes, so the
//! second block is always the same padding block, whose message schedule (plus the round
//! constants) is computed once at compile time instead of on every hash.
//!
//! The result is bit-for-bit [`crate::sha254`]; the tests compare them on random pairs, and
//! callers fall back to `sha2` where the CPU lacks the extensions.

#![allow(unsafe_code)]
// SIMD intrinsics; every unsafe block states what it relies on
// Only unaligned loads and stores (`loadu` / `storeu`) go through the `__m128i` pointers.
#![allow(clippy::cast_ptr_alignment)]

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_blend_epi16, _mm_loadu_si128, _mm_set_epi64x,
    _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi8,
    _mm_shuffle_epi32, _mm_storeu_si128,
};
use std::sync::LazyLock;

use crate::commp::SHA256_IV as IV;
use crate::merkle::{NODE_SIZE, Node};

/// SHA-256 round constants (FIPS 180-4 §4.2.2).
const K: [u32; 64] = [
    0x428a_2f98,
    0x7137_4491,
    0xb5c0_fbcf,
    0xe9b5_dba5,
    0x3956_c25b,
    0x59f1_11f1,
    0x923f_82a4,
    0xab1c_5ed5,
    0xd807_aa98,
    0x1283_5b01,
    0x2431_85be,
    0x550c_7dc3,
    0x72be_5d74,
    0x80de_b1fe,
    0x9bdc_06a7,
    0xc19b_f174,
    0xe49b_69c1,
    0xefbe_4786,
    0x0fc1_9dc6,
    0x240c_a1cc,
    0x2de9_2c6f,
    0x4a74_84aa,
    0x5cb0_a9dc,
    0x76f9_88da,
    0x983e_5152,
    0xa831_c66d,
    0xb003_27c8,
    0xbf59_7fc7,
    0xc6e0_0bf3,
    0xd5a7_9147,
    0x06ca_6351,
    0x1429_2967,
    0x27b7_0a85,
    0x2e1b_2138,
    0x4d2c_6dfc,
    0x5338_0d13,
    0x650a_7354,
    0x766a_0abb,
    0x81c2_c92e,
    0x9272_2c85,
    0xa2bf_e8a1,
    0xa81a_664b,
    0xc24b_8b70,
    0xc76c_51a3,
    0xd192_e819,
    0xd699_0624,
    0xf40e_3585,
    0x106a_a070,
    0x19a4_c116,
    0x1e37_6c08,
    0x2748_774c,
    0x34b0_bcb5,
    0x391c_0cb3,
    0x4ed8_aa4a,
    0x5b9c_ca4f,
    0x682e_6ff3,
    0x748f_82ee,
    0x78a5_636f,
    0x84c8_7814,
    0x8cc7_0208,
    0x90be_fffa,
    0xa450_6ceb,
    0xbef9_a3f7,
    0xc671_78f2,
];

/// `W[t] + K[t]` of the padding block every 64-byte message ends with (`0x80`, zeros, and the
/// bit length 512), expanded with the message schedule of FIPS 180-4 §6.2.2.
const PADDING_WK: [u32; 64] = {
    let mut w = [0u32; 64];
    w[0] = 0x8000_0000;
    w[15] = 512;
    let mut t = 16;
    while t < 64 {
        let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
        let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16]
            .wrapping_add(s0)
            .wrapping_add(w[t - 7])
            .wrapping_add(s1);
        t += 1;
    }
    let mut t = 0;
    while t < 64 {
        w[t] = w[t].wrapping_add(K[t]);
        t += 1;
    }
    w
};

/// Proof that this CPU has the instructions the kernel uses: only [`ShaNi::detect`] makes one,
/// so the hashing itself needs no check.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShaNi(());

impl ShaNi {
    /// The kernel, when the CPU has SHA-NI (detected once).
    pub(crate) fn detect() -> Option<Self> {
        static AVAILABLE: LazyLock<bool> = LazyLock::new(|| {
            std::is_x86_feature_detected!("sha")
                && std::is_x86_feature_detected!("sse2")
                && std::is_x86_feature_detected!("ssse3")
                && std::is_x86_feature_detected!("sse4.1")
        });
        AVAILABLE.then_some(Self(()))
    }

    /// `sha254(a[0] ‖ a[1])` and `sha254(b[0] ‖ b[1])`.
    #[allow(clippy::unused_self)] // `self` is the proof the CPU can run it
    pub(crate) fn hash_two_pairs(self, a: &[Node; 2], b: &[Node; 2]) -> [Node; 2] {
        // SAFETY: `self` exists only where `detect` found every feature `two_pairs` is
        // compiled for.
        unsafe { two_pairs(a, b) }
    }
}

/// Four rounds of both streams: `wk_a` / `wk_b` hold `W[t] + K[t]` for the four rounds.
macro_rules! rounds4 {
    ($abef_a:ident, $cdgh_a:ident, $wk_a:expr, $abef_b:ident, $cdgh_b:ident, $wk_b:expr) => {{
        let wk_a = $wk_a;
        let wk_b = $wk_b;
        $cdgh_a = _mm_sha256rnds2_epu32($cdgh_a, $abef_a, wk_a);
        $cdgh_b = _mm_sha256rnds2_epu32($cdgh_b, $abef_b, wk_b);
        $abef_a = _mm_sha256rnds2_epu32($abef_a, $cdgh_a, _mm_shuffle_epi32(wk_a, 0x0E));
        $abef_b = _mm_sha256rnds2_epu32($abef_b, $cdgh_b, _mm_shuffle_epi32(wk_b, 0x0E));
    }};
}

/// The message schedule's next four words from the last sixteen (`v0` oldest).
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn schedule(v0: __m128i, v1: __m128i, v2: __m128i, v3: __m128i) -> __m128i {
    let t1 = _mm_sha256msg1_epu32(v0, v1);
    let t2 = _mm_alignr_epi8(v3, v2, 4);
    _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), v3)
}

/// Four `u32`s from `words[at..at + 4]` as one vector, lane 0 first.
#[target_feature(enable = "sse2")]
fn load4(words: &[u32; 64], at: usize) -> __m128i {
    let four = &words[at..at + 4];
    // SAFETY: `four` is 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(four.as_ptr().cast::<__m128i>()) }
}

/// The two hashes; see the module's documentation. The register layout (`abef`, `cdgh`) and the
/// byte shuffles are those of Intel's SHA extensions reference and `sha2`'s x86 backend.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
#[allow(clippy::similar_names)] // the a/b streams mirror each other on purpose
fn two_pairs(a: &[Node; 2], b: &[Node; 2]) -> [Node; 2] {
    // Byte-swaps each 32-bit lane: message words and digest words are big-endian.
    let swap = _mm_set_epi64x(
        0x0C0D_0E0F_0809_0A0B_u64.cast_signed(),
        0x0405_0607_0001_0203_u64.cast_signed(),
    );
    let load = |node: &Node, half: usize| {
        let bytes = &node[half * 16..half * 16 + 16];
        // SAFETY: `bytes` is 16 readable bytes; `loadu` has no alignment requirement.
        _mm_shuffle_epi8(
            unsafe { _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>()) },
            swap,
        )
    };
    // The initial state in the `abef` / `cdgh` layout `sha256rnds2` works on.
    let iv = |i: usize| -> i32 { IV[i].cast_signed() };
    let iv_abef = _mm_set_epi64x(
        (i64::from(iv(0)) << 32) | i64::from(IV[1]),
        (i64::from(iv(4)) << 32) | i64::from(IV[5]),
    );
    let iv_cdgh = _mm_set_epi64x(
        (i64::from(iv(2)) << 32) | i64::from(IV[3]),
        (i64::from(iv(6)) << 32) | i64::from(IV[7]),
    );

    let (mut abef_a, mut cdgh_a, mut abef_b, mut cdgh_b) = (iv_abef, iv_cdgh, iv_abef, iv_cdgh);

    // First block: the 64 bytes of the two children.
    let mut wa = [
        load(&a[0], 0),
        load(&a[0], 1),
        load(&a[1], 0),
        load(&a[1], 1),
    ];
    let mut wb = [
        load(&b[0], 0),
        load(&b[0], 1),
        load(&b[1], 0),
        load(&b[1], 1),
    ];
    for quad in 0..16 {
        if quad >= 4 {
            wa[quad % 4] = schedule(
                wa[quad % 4],
                wa[(quad + 1) % 4],
                wa[(quad + 2) % 4],
                wa[(quad + 3) % 4],
            );
            wb[quad % 4] = schedule(
                wb[quad % 4],
                wb[(quad + 1) % 4],
                wb[(quad + 2) % 4],
                wb[(quad + 3) % 4],
            );
        }
        let k = load4(&K, quad * 4);
        rounds4!(
            abef_a,
            cdgh_a,
            _mm_add_epi32(wa[quad % 4], k),
            abef_b,
            cdgh_b,
            _mm_add_epi32(wb[quad % 4], k)
        );
    }
    abef_a = _mm_add_epi32(abef_a, iv_abef);
    cdgh_a = _mm_add_epi32(cdgh_a, iv_cdgh);
    abef_b = _mm_add_epi32(abef_b, iv_abef);
    cdgh_b = _mm_add_epi32(cdgh_b, iv_cdgh);

    // Second block: the constant padding block, its schedule precomputed.
    let (save_abef_a, save_cdgh_a, save_abef_b, save_cdgh_b) = (abef_a, cdgh_a, abef_b, cdgh_b);
    for quad in 0..16 {
        let wk = load4(&PADDING_WK, quad * 4);
        rounds4!(abef_a, cdgh_a, wk, abef_b, cdgh_b, wk);
    }
    abef_a = _mm_add_epi32(abef_a, save_abef_a);
    cdgh_a = _mm_add_epi32(cdgh_a, save_cdgh_a);
    abef_b = _mm_add_epi32(abef_b, save_abef_b);
    cdgh_b = _mm_add_epi32(cdgh_b, save_cdgh_b);

    let digest = |abef: __m128i, cdgh: __m128i| -> Node {
        // Back to `a b c d` / `e f g h`, lane 0 first, then big-endian bytes.
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        let mut out = [0u8; NODE_SIZE];
        // SAFETY: `out` is 32 writable bytes; `storeu` has no alignment requirement.
        unsafe {
            _mm_storeu_si128(
                out.as_mut_ptr().cast::<__m128i>(),
                _mm_shuffle_epi8(dcba, swap),
            );
            _mm_storeu_si128(
                out.as_mut_ptr().add(16).cast::<__m128i>(),
                _mm_shuffle_epi8(hgef, swap),
            );
        }
        out[NODE_SIZE - 1] &= 0x3f;
        out
    };
    [digest(abef_a, cdgh_a), digest(abef_b, cdgh_b)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha254;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn two_pairs_are_two_sha254s(
            a0 in any::<[u8; 32]>(), a1 in any::<[u8; 32]>(),
            b0 in any::<[u8; 32]>(), b1 in any::<[u8; 32]>(),
        ) {
            // Without SHA-NI there is no kernel to compare (callers use `sha2`).
            let Some(kernel) = ShaNi::detect() else { return Ok(()) };
            let [ha, hb] = kernel.hash_two_pairs(&[a0, a1], &[b0, b1]);
            prop_assert_eq!(ha, sha254(&a0, &a1));
            prop_assert_eq!(hb, sha254(&b0, &b1));
        }
    }

    #[test]
    fn the_machine_running_the_tests_uses_the_kernel_where_it_can() {
        // Not an assertion on the hardware: this records which path the suite exercised.
        eprintln!("SHA-NI kernel available: {}", ShaNi::detect().is_some());
        let zero = [0u8; 32];
        if let Some(kernel) = ShaNi::detect() {
            let [z1, _] = kernel.hash_two_pairs(&[zero, zero], &[zero, zero]);
            assert_eq!(z1, sha254(&zero, &zero));
        }
    }
}
