// Division of a 256-bit amount by a small integer, included by the contract crates that divide
// (`include!("../../div.rs")`).
//
// ruint's generic 256-bit division costs about 8 KB of contract code (and 128-bit division
// ~0.5 KB of compiler builtins) against the 24 KiB a program may deploy; a divisor that fits in
// 32 bits needs only schoolbook long division over 32-bit digits in native 64-bit arithmetic.

/// `(amount / divisor, amount % divisor)` for a non-zero `divisor`.
fn div_small(amount: U256, divisor: u32) -> (U256, U256) {
    let divisor = u64::from(divisor.max(1));
    let mut quotient = [0u8; 32];
    let mut rest = 0u64;
    for (digit, out) in amount
        .to_be_bytes::<32>()
        .chunks_exact(4)
        .zip(quotient.chunks_exact_mut(4))
    {
        let current =
            (rest << 32) | u64::from(u32::from_be_bytes([digit[0], digit[1], digit[2], digit[3]]));
        // `rest < divisor < 2^32`, so the quotient digit fits in 32 bits.
        let q = u32::try_from(current / divisor).unwrap_or(u32::MAX);
        out.copy_from_slice(&q.to_be_bytes());
        rest = current % divisor;
    }
    (U256::from_be_bytes(quotient), U256::from(rest))
}
