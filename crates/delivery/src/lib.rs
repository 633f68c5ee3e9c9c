//! # datacloud-delivery — results sealed to the buyer
//!
//! A buyer generates a delivery key pair when it orders and puts the public key in the order
//! (`buyerKey` on `QueryMarket`). The seller, after decrypting and releasing the aggregate table,
//! seals it to that key with HPKE (RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20-Poly1305) and stores the envelope by CID. Only the buyer can open it. The delivery's
//! [`context`] (chain id, market, order id and the keccak-256 of the worker's attested result) is
//! bound into the HPKE `info`, so an envelope opens only as the delivery of that result of that
//! order on that market: it cannot be replayed as another order's, another chain's, or the
//! delivery of a result the dispute game overturned.
//!
//! Envelope format: `"DCD1"` ‖ encapsulated key (32 bytes) ‖ ciphertext (plaintext + 16-byte tag).

use std::path::Path;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use thiserror::Error;

type DeliveryKem = X25519HkdfSha256;

const MAGIC: &[u8; 4] = b"DCD1";
/// Length of an X25519 public key and of the encapsulated key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Largest envelope accepted (a result table is a few KiB).
pub const MAX_ENVELOPE_BYTES: usize = 16 << 20;

#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error("not a delivery envelope (bad magic or too short)")]
    Malformed,
    #[error("envelope of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("invalid public key: it must be {PUBLIC_KEY_LEN} bytes of X25519")]
    PublicKey,
    #[error(
        "the envelope does not open with this key for this order (wrong key, order or tampered)"
    )]
    Open,
    #[error("sealing failed")]
    Seal,
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("{0} has mode {1:o}; a delivery key must be readable by its owner only (chmod 600)")]
    Permissions(String, u32),
}

/// The buyer's delivery key pair.
pub struct DeliveryKey {
    secret: <DeliveryKem as Kem>::PrivateKey,
    public: <DeliveryKem as Kem>::PublicKey,
}

impl DeliveryKey {
    #[must_use]
    pub fn generate() -> Self {
        let (secret, public) = DeliveryKem::gen_keypair(&mut rand::rng());
        DeliveryKey { secret, public }
    }

    /// The public key to put in the order (32 bytes).
    #[must_use]
    pub fn public_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out.copy_from_slice(&self.public.to_bytes());
        out
    }

    /// Writes the secret key with mode 0600, refusing to overwrite.
    ///
    /// # Errors
    /// [`DeliveryError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), DeliveryError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let io = |e| DeliveryError::Io(path.display().to_string(), e);
        let mut file = options.open(path).map_err(io)?;
        std::io::Write::write_all(&mut file, &self.secret.to_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads a key written by [`DeliveryKey::save`]; refuses a file others can read.
    ///
    /// # Errors
    /// [`DeliveryError::Io`], [`DeliveryError::Permissions`], [`DeliveryError::PublicKey`].
    pub fn load(path: &Path) -> Result<Self, DeliveryError> {
        let io = |e| DeliveryError::Io(path.display().to_string(), e);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(DeliveryError::Permissions(path.display().to_string(), mode));
            }
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let secret = <DeliveryKem as Kem>::PrivateKey::from_bytes(&bytes)
            .map_err(|_| DeliveryError::PublicKey)?;
        let public = DeliveryKem::sk_to_pk(&secret);
        Ok(DeliveryKey { secret, public })
    }

    /// Opens an envelope sealed to this key for `context` (see [`context`]).
    ///
    /// # Errors
    /// [`DeliveryError::Malformed`], [`DeliveryError::TooLarge`], [`DeliveryError::Open`].
    pub fn open(&self, context: &[u8], envelope: &[u8]) -> Result<Vec<u8>, DeliveryError> {
        if envelope.len() > MAX_ENVELOPE_BYTES {
            return Err(DeliveryError::TooLarge(envelope.len()));
        }
        let rest = envelope
            .strip_prefix(MAGIC.as_slice())
            .ok_or(DeliveryError::Malformed)?;
        if rest.len() < PUBLIC_KEY_LEN + 16 {
            return Err(DeliveryError::Malformed);
        }
        let (encapped, ciphertext) = rest.split_at(PUBLIC_KEY_LEN);
        let encapped = <DeliveryKem as Kem>::EncappedKey::from_bytes(encapped)
            .map_err(|_| DeliveryError::Malformed)?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, DeliveryKem>(
            &OpModeR::Base,
            &self.secret,
            &encapped,
            &info(context),
            ciphertext,
            MAGIC,
        )
        .map_err(|_| DeliveryError::Open)
    }
}

fn info(context: &[u8]) -> Vec<u8> {
    [b"datacloud/delivery/v2:".as_slice(), context].concat()
}

/// What a delivery is the delivery of: `chain_id` (8 bytes, big-endian) ‖ the market's address
/// ‖ the order id (32 bytes) ‖ the keccak-256 of the attested result, as the seller seals it and
/// the buyer opens it.
#[must_use]
pub fn context(
    chain_id: u64,
    market: &[u8; 20],
    order_id: &[u8; 32],
    result_hash: &[u8; 32],
) -> Vec<u8> {
    [
        chain_id.to_be_bytes().as_slice(),
        market,
        order_id,
        result_hash,
    ]
    .concat()
}

/// Seals `plaintext` to the buyer's public key (from the order) for `context` (see [`context`]).
///
/// # Errors
/// [`DeliveryError::PublicKey`] for a key that is not 32 bytes of X25519; [`DeliveryError::Seal`].
pub fn seal(buyer_key: &[u8], context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, DeliveryError> {
    if buyer_key.len() != PUBLIC_KEY_LEN {
        return Err(DeliveryError::PublicKey);
    }
    let public = <DeliveryKem as Kem>::PublicKey::from_bytes(buyer_key)
        .map_err(|_| DeliveryError::PublicKey)?;
    let (encapped, ciphertext) =
        hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, DeliveryKem, _>(
            &OpModeS::Base,
            &public,
            &info(context),
            plaintext,
            MAGIC,
            &mut rand::rng(),
        )
        .map_err(|_| DeliveryError::Seal)?;
    Ok([MAGIC.as_slice(), &encapped.to_bytes(), &ciphertext].concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Each case does X25519 key generation and HPKE in a debug build: 32 cases keep it quick.
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn only_the_buyer_opens_only_its_order(plaintext in proptest::collection::vec(any::<u8>(), 0..2048), flip in 0usize..4096) {
            let buyer = DeliveryKey::generate();
            let envelope = seal(&buyer.public_bytes(), b"order-7", &plaintext).unwrap();
            prop_assert_eq!(buyer.open(b"order-7", &envelope).unwrap(), plaintext.clone());
            prop_assert!(matches!(buyer.open(b"order-8", &envelope), Err(DeliveryError::Open)));
            prop_assert!(DeliveryKey::generate().open(b"order-7", &envelope).is_err());
            // The same order delivered for another result (an overturned one), another market or
            // another chain does not open.
            let sealed = seal(&buyer.public_bytes(), &context(1, &[2; 20], &[3; 32], &[4; 32]), &plaintext).unwrap();
            prop_assert_eq!(buyer.open(&context(1, &[2; 20], &[3; 32], &[4; 32]), &sealed).unwrap(), plaintext.clone());
            for other in [
                context(1, &[2; 20], &[3; 32], &[5; 32]),
                context(1, &[9; 20], &[3; 32], &[4; 32]),
                context(7, &[2; 20], &[3; 32], &[4; 32]),
            ] {
                prop_assert!(matches!(buyer.open(&other, &sealed), Err(DeliveryError::Open)));
            }
            let mut tampered = envelope.clone();
            let i = flip % tampered.len();
            tampered[i] ^= 1;
            prop_assert!(buyer.open(b"order-7", &tampered).is_err());
        }
    }

    #[test]
    fn keys_persist_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delivery.key");
        let key = DeliveryKey::generate();
        key.save(&path).unwrap();
        assert!(key.save(&path).is_err(), "never overwrites a key");
        let again = DeliveryKey::load(&path).unwrap();
        assert_eq!(again.public_bytes(), key.public_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                DeliveryKey::load(&path),
                Err(DeliveryError::Permissions(..))
            ));
        }
        assert!(seal(&[0u8; 31], b"o", b"x").is_err());
        assert!(matches!(
            key.open(b"o", b"junk"),
            Err(DeliveryError::Malformed)
        ));
    }
}
