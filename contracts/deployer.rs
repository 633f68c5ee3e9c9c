// The deployer check of the contracts' `initialize`, included by each contract crate
// (`include!("../../deployer.rs")`).
//
// A Stylus program is deployed by one transaction and initialized by another, and between the
// two anyone could call `initialize` with their own configuration (a front-run). Constructors
// run in the deploying transaction only through the Solidity `StylusDeployer`, which needs EVM
// bytecode; instead each `initialize` takes the nonce its caller deployed the program with, and
// refuses unless the program's address is the `CREATE` address of `(msg.sender, nonce)`:
// `keccak256(rlp([sender, nonce]))[12..]`. Only the deploying account can name a nonce that
// hashes to this address, so only it can initialize.

/// `rlp([sender, nonce])` into a buffer and its length: the preimage of the `CREATE` address of
/// the contract `sender` deploys with its `nonce`-th transaction. Written out (a 20-byte string
/// and an integer of at most 8 bytes, in a list shorter than 56 bytes) instead of pulling an RLP
/// crate and a keccak implementation into each contract's WASM: the host hashes it.
fn create_preimage(sender: Address, nonce: u64) -> ([u8; 31], usize) {
    let mut out = [0u8; 31];
    out[1] = 0x80 + 20;
    out[2..22].copy_from_slice(sender.as_slice());
    let bytes = nonce.to_be_bytes();
    // Lengths in `u8` from the start: every one is below 32.
    let mut digits: u8 = 8;
    while digits > 0 && bytes[usize::from(8 - digits)] == 0 {
        digits -= 1;
    }
    let payload: u8 = if nonce == 0 {
        // The integer 0 is the empty string.
        out[22] = 0x80;
        22
    } else if nonce < 0x80 {
        // A single byte below 0x80 is its own encoding.
        out[22] = bytes[7];
        22
    } else {
        out[22] = 0x80 + digits;
        out[23..23 + usize::from(digits)].copy_from_slice(&bytes[usize::from(8 - digits)..]);
        22 + digits
    };
    // The list's payload is below 56 bytes: a one-byte prefix.
    out[0] = 0xc0 + payload;
    (out, usize::from(payload) + 1)
}

/// Whether the caller of `vm`'s program deployed it with its `nonce`-th transaction: the
/// program's address is the `CREATE` address of `(msg.sender, nonce)`.
fn deployed_by_caller<V>(vm: &V, nonce: u64) -> bool
where
    V: stylus_sdk::stylus_core::MessageAccess
        + stylus_sdk::stylus_core::CryptographyAccess
        + stylus_sdk::stylus_core::AccountAccess,
{
    let (preimage, len) = create_preimage(vm.msg_sender(), nonce);
    vm.native_keccak256(&preimage[..len])[12..] == vm.contract_address()[..]
}
