//! Keys. The seller's client key never leaves the seller: it is written with mode 0600 and read
//! back only by the seller's tools, optionally sealed under a passphrase ([`SellerKey::save_sealed`]). The compressed server key is published (content-addressed) for
//! workers. Everything read from a file or the network goes through TFHE-rs `safe_deserialize`
//! with an explicit size limit.

use std::path::Path;

use tfhe::named::Named;
use tfhe::safe_serialization::{safe_deserialize, safe_serialize};
use tfhe::{ClientKey, CompressedServerKey, ConfigBuilder};

use crate::error::KeyError;

/// Largest client key file accepted (the default parameters' key is well under 1 MiB).
pub const MAX_CLIENT_KEY_BYTES: u64 = 16 << 20;
/// Largest compressed server key accepted (the default parameters' is ~30 MiB).
pub const MAX_SERVER_KEY_BYTES: u64 = 256 << 20;

/// The parameters of every key and ciphertext: TFHE-rs' defaults (2-bit message, 2-bit carry
/// blocks, KS-PBS, 128-bit security, failure probability ≤ 2^-128). Ciphertexts read from outside
/// are checked against them ([`crate::encrypt`]).
pub const PARAMETERS: tfhe::shortint::ClassicPBSParameters =
    tfhe::shortint::parameters::PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128;

/// The seller's secret: decrypts aggregates. Never published.
pub struct SellerKey {
    client: ClientKey,
}

/// The passphrase a client key is sealed under. Never printed: its `Debug` is redacted.
#[derive(Clone)]
pub struct Passphrase(zeroize::Zeroizing<String>);

impl Passphrase {
    #[must_use]
    pub fn new(passphrase: impl Into<String>) -> Self {
        Self(zeroize::Zeroizing::new(passphrase.into()))
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The worker's evaluation key, decompressed and ready.
#[derive(Clone)]
pub struct EvaluationKey {
    pub(crate) integer: tfhe::integer::ServerKey,
}

impl SellerKey {
    /// Generates a key with [`PARAMETERS`].
    #[must_use]
    pub fn generate() -> Self {
        SellerKey {
            client: ClientKey::generate(ConfigBuilder::with_custom_parameters(PARAMETERS).build()),
        }
    }

    /// The compressed server key workers evaluate with (publish its bytes from [`Self::server_key_bytes`]).
    #[must_use]
    pub fn server_key(&self) -> CompressedServerKey {
        CompressedServerKey::new(&self.client)
    }

    /// The compressed server key, safe-serialized for publication.
    ///
    /// # Errors
    /// [`KeyError::Serialize`] if serialization fails.
    pub fn server_key_bytes(&self) -> Result<Vec<u8>, KeyError> {
        to_bytes(&self.server_key(), MAX_SERVER_KEY_BYTES)
    }

    pub(crate) fn integer(&self) -> tfhe::integer::ClientKey {
        self.client.clone().into_raw_parts().0
    }

    /// The high-level client key (for the TFHE-rs high-level API baseline in benches).
    #[must_use]
    pub fn client_key(&self) -> &ClientKey {
        &self.client
    }

    /// Writes the key to `path` with mode 0600, refusing to overwrite an existing file.
    ///
    /// # Errors
    /// [`KeyError::Io`] (the file exists, or cannot be written).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        write_private(path, &to_bytes(&self.client, MAX_CLIENT_KEY_BYTES)?, None)
    }

    /// Writes the key to `path` like [`Self::save`], sealed under `passphrase`: ChaCha20-Poly1305
    /// with a key derived by Argon2id ([`SEAL_MEMORY_KIB`], [`SEAL_PASSES`], random salt and
    /// nonce). A stolen file is then worth a passphrase search, not a key.
    ///
    /// # Errors
    /// [`KeyError::Io`] (the file exists, or cannot be written), [`KeyError::Sealed`] for an
    /// empty passphrase.
    pub fn save_sealed(&self, path: &Path, passphrase: &Passphrase) -> Result<(), KeyError> {
        let plain = zeroize::Zeroizing::new(to_bytes(&self.client, MAX_CLIENT_KEY_BYTES)?);
        write_private(path, &plain, Some(passphrase))
    }

    /// Reads a key written by [`SellerKey::save`]; refuses a file others can read.
    ///
    /// # Errors
    /// [`KeyError::Io`], [`KeyError::Permissions`], [`KeyError::Deserialize`], and
    /// [`KeyError::PassphraseRequired`] for a sealed key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::load_with(path, None)
    }

    /// Reads a key written by [`SellerKey::save`] or, with its passphrase,
    /// [`SellerKey::save_sealed`]; refuses a file others can read. A passphrase given for a key
    /// that is not sealed is ignored.
    ///
    /// # Errors
    /// [`KeyError::Io`], [`KeyError::Permissions`], [`KeyError::Deserialize`],
    /// [`KeyError::PassphraseRequired`], [`KeyError::Sealed`] (a wrong passphrase or a damaged
    /// file: the two cannot be told apart, by design).
    pub fn load_with(path: &Path, passphrase: Option<&Passphrase>) -> Result<Self, KeyError> {
        let plain = read_private(path, passphrase, MAX_CLIENT_KEY_BYTES)?;
        let client = safe_deserialize(plain.as_slice(), MAX_CLIENT_KEY_BYTES)
            .map_err(KeyError::Deserialize)?;
        Ok(SellerKey { client })
    }
}

impl EvaluationKey {
    /// Decompresses a published server key.
    #[must_use]
    pub fn from_compressed(key: &CompressedServerKey) -> Self {
        EvaluationKey {
            integer: key.decompress().into_raw_parts().0,
        }
    }

    /// The integer-level server key (for benchmarks that time single operations).
    #[must_use]
    pub fn integer_key(&self) -> &tfhe::integer::ServerKey {
        &self.integer
    }

    /// Reads a published compressed server key (untrusted bytes: size-limited, versioned).
    ///
    /// # Errors
    /// [`KeyError::Deserialize`] for anything that is not a compressed server key within the limit.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let key: CompressedServerKey =
            safe_deserialize(bytes, MAX_SERVER_KEY_BYTES).map_err(KeyError::Deserialize)?;
        Ok(Self::from_compressed(&key))
    }
}

/// Writes `bytes` to a new private file: sealed under `passphrase` when there is one (see
/// [`SellerKey::save_sealed`]), mode 0600, never overwriting, synced.
pub(crate) fn write_private(
    path: &Path,
    bytes: &[u8],
    passphrase: Option<&Passphrase>,
) -> Result<(), KeyError> {
    match passphrase {
        Some(passphrase) => write_new_private(
            path,
            &seal::seal(
                bytes,
                &passphrase.0,
                seal::Kdf::Argon2id {
                    memory_kib: SEAL_MEMORY_KIB,
                    passes: SEAL_PASSES,
                },
            )?,
        ),
        None => write_new_private(path, bytes),
    }
}

/// Reads a file written by [`write_private`]: refuses one others can read or one over `max`
/// bytes, and opens a sealed one with `passphrase`.
pub(crate) fn read_private(
    path: &Path,
    passphrase: Option<&Passphrase>,
    max: u64,
) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
    let io = |e| KeyError::Io(path.display().to_string(), e);
    let metadata = std::fs::metadata(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions(path.display().to_string(), mode));
        }
    }
    if metadata.len() > max {
        return Err(KeyError::TooLarge(metadata.len()));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    if seal::is_sealed(&bytes) {
        let passphrase =
            passphrase.ok_or_else(|| KeyError::PassphraseRequired(path.display().to_string()))?;
        seal::open(&bytes, &passphrase.0)
    } else {
        Ok(zeroize::Zeroizing::new(bytes))
    }
}

/// Writes `bytes` to a new file at `path` with mode 0600 (never overwriting), synced.
fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let io = |e| KeyError::Io(path.display().to_string(), e);
    let mut file = options.open(path).map_err(io)?;
    std::io::Write::write_all(&mut file, bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Argon2id cost of a sealed file: OWASP's first recommended set (19 MiB of memory, 2 passes,
/// one lane). Stored in the file, so it can rise later.
pub const SEAL_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes of a sealed file (see [`SEAL_MEMORY_KIB`]).
pub const SEAL_PASSES: u32 = 2;

/// Sealed private files (client keys, the seller's rows): ChaCha20-Poly1305 under a key derived
/// from the passphrase by Argon2id (memory-hard: a stolen file is worth a slow, costly search
/// per guess), the header authenticated as associated data.
///
/// `v2`: `MAGIC ‖ memory KiB (u32 BE) ‖ passes (u32 BE) ‖ salt (16) ‖ nonce (12) ‖ ciphertext ‖ tag`.
/// `v1` files (`MAGIC ‖ PBKDF2-HMAC-SHA256 rounds ‖ salt ‖ nonce ‖ …`), written before, still open.
mod seal {
    use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
    use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
    use rand::RngCore as _;
    use zeroize::Zeroizing;

    use crate::error::KeyError;

    const MAGIC_V1: &[u8; 16] = b"datacloud-key-v1";
    const MAGIC_V2: &[u8; 16] = b"datacloud-key-v2";
    /// More PBKDF2 rounds than this in a v1 file is refused (reading would hang).
    const MAX_ROUNDS: u32 = 60_000_000;
    /// Argon2id costs above these in a file are refused (4 GiB of memory, 64 passes).
    const MAX_MEMORY_KIB: u32 = 4 << 20;
    const MAX_PASSES: u32 = 64;

    /// How a file's key is derived from its passphrase.
    #[derive(Clone, Copy, Debug)]
    pub(super) enum Kdf {
        Pbkdf2 { rounds: u32 },
        Argon2id { memory_kib: u32, passes: u32 },
    }

    impl Kdf {
        fn header_len(self) -> usize {
            match self {
                Kdf::Pbkdf2 { .. } => 16 + 4 + 28,
                Kdf::Argon2id { .. } => 16 + 8 + 28,
            }
        }

        fn derive(self, passphrase: &str, salt: &[u8]) -> Result<ChaCha20Poly1305, KeyError> {
            let mut key = Zeroizing::new([0u8; 32]);
            match self {
                Kdf::Pbkdf2 { rounds } => {
                    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                        passphrase.as_bytes(),
                        salt,
                        rounds,
                        key.as_mut(),
                    );
                }
                Kdf::Argon2id { memory_kib, passes } => {
                    let params = argon2::Params::new(memory_kib, passes, 1, Some(32))
                        .map_err(|e| KeyError::Sealed(format!("Argon2id parameters: {e}")))?;
                    argon2::Argon2::new(
                        argon2::Algorithm::Argon2id,
                        argon2::Version::V0x13,
                        params,
                    )
                    .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
                    .map_err(|e| KeyError::Sealed(format!("Argon2id: {e}")))?;
                }
            }
            Ok(ChaCha20Poly1305::new(&Key::from(*key)))
        }
    }

    pub(super) fn is_sealed(bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC_V1) || bytes.starts_with(MAGIC_V2)
    }

    pub(super) fn seal(plain: &[u8], passphrase: &str, kdf: Kdf) -> Result<Vec<u8>, KeyError> {
        if passphrase.is_empty() {
            return Err(KeyError::Sealed("an empty passphrase seals nothing".into()));
        }
        let mut header = Vec::with_capacity(kdf.header_len());
        match kdf {
            Kdf::Pbkdf2 { rounds } => {
                header.extend_from_slice(MAGIC_V1);
                header.extend_from_slice(&rounds.to_be_bytes());
            }
            Kdf::Argon2id { memory_kib, passes } => {
                header.extend_from_slice(MAGIC_V2);
                header.extend_from_slice(&memory_kib.to_be_bytes());
                header.extend_from_slice(&passes.to_be_bytes());
            }
        }
        let mut salt_nonce = [0u8; 28];
        rand::rng().fill_bytes(&mut salt_nonce);
        header.extend_from_slice(&salt_nonce);
        let (salt, nonce) = salt_nonce.split_at(16);
        let nonce = nonce_of(nonce)?;
        let sealed = kdf
            .derive(passphrase, salt)?
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: &header,
                },
            )
            .map_err(|_| KeyError::Sealed("sealing failed".into()))?;
        header.extend_from_slice(&sealed);
        Ok(header)
    }

    fn nonce_of(bytes: &[u8]) -> Result<Nonce, KeyError> {
        <[u8; 12]>::try_from(bytes)
            .map(Nonce::from)
            .map_err(|_| KeyError::Sealed("nonce".into()))
    }

    fn word(bytes: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap_or_default())
    }

    /// The file's derivation, with its costs bounded.
    fn kdf_of(bytes: &[u8]) -> Result<Kdf, KeyError> {
        let out_of_range = |what: String| Err(KeyError::Sealed(format!("{what} is out of range")));
        if bytes.len() < 16 + 8 {
            return Err(KeyError::Sealed("truncated".into()));
        }
        if bytes.starts_with(MAGIC_V1) {
            let rounds = word(bytes, 16);
            if rounds == 0 || rounds > MAX_ROUNDS {
                return out_of_range(format!("{rounds} PBKDF2 rounds"));
            }
            return Ok(Kdf::Pbkdf2 { rounds });
        }
        let (memory_kib, passes) = (word(bytes, 16), word(bytes, 20));
        if !(8..=MAX_MEMORY_KIB).contains(&memory_kib) || !(1..=MAX_PASSES).contains(&passes) {
            return out_of_range(format!("Argon2id at {memory_kib} KiB and {passes} passes"));
        }
        Ok(Kdf::Argon2id { memory_kib, passes })
    }

    /// The plaintext, zeroized when dropped.
    pub(super) fn open(bytes: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let kdf = kdf_of(bytes)?;
        let len = kdf.header_len();
        if bytes.len() < len + 16 {
            return Err(KeyError::Sealed("truncated".into()));
        }
        let (header, sealed) = bytes.split_at(len);
        let (salt, nonce) = header[len - 28..].split_at(16);
        let nonce = nonce_of(nonce)?;
        kdf.derive(passphrase, salt)?
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: header,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Sealed("wrong passphrase, or a damaged file".into()))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_sealed_client_key_loads_with_its_passphrase_only() {
            let dir = tempfile::tempdir().unwrap();
            let key = crate::SellerKey::generate();
            let path = dir.path().join("seller.key");
            let passphrase = crate::keys::Passphrase::new("correct horse battery staple");
            key.save_sealed(&path, &passphrase).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.starts_with(MAGIC_V2), "new files are Argon2id");
            assert!(matches!(
                kdf_of(&bytes).unwrap(),
                Kdf::Argon2id {
                    memory_kib: crate::keys::SEAL_MEMORY_KIB,
                    passes: crate::keys::SEAL_PASSES
                }
            ));
            let loaded = crate::SellerKey::load_with(&path, Some(&passphrase)).unwrap();
            let ck = loaded.integer();
            let ct = key.integer().encrypt_radix(42u64, 4);
            assert_eq!(ck.decrypt_radix::<u64>(&ct), 42);
            assert!(matches!(
                crate::SellerKey::load(&path),
                Err(KeyError::PassphraseRequired(_))
            ));
            let wrong = crate::keys::Passphrase::new("correct horse");
            assert!(matches!(
                crate::SellerKey::load_with(&path, Some(&wrong)),
                Err(KeyError::Sealed(_))
            ));
            assert_eq!(format!("{passphrase:?}"), "Passphrase(<redacted>)");
            // A plain key ignores a passphrase.
            let plain = dir.path().join("plain.key");
            key.save(&plain).unwrap();
            assert!(crate::SellerKey::load_with(&plain, Some(&passphrase)).is_ok());
        }

        #[test]
        fn opens_with_its_passphrase_only_and_refuses_any_change() {
            let plain = b"a client key".to_vec();
            // Low costs here: the derivations are tested, not their cost. A v1 (PBKDF2) file,
            // as sessions before wrote them, still opens.
            for kdf in [
                Kdf::Argon2id {
                    memory_kib: 64,
                    passes: 1,
                },
                Kdf::Pbkdf2 { rounds: 1000 },
            ] {
                let sealed = seal(&plain, "correct horse", kdf).unwrap();
                let len = kdf.header_len();
                assert!(is_sealed(&sealed));
                assert_eq!(*open(&sealed, "correct horse").unwrap(), plain);
                assert!(open(&sealed, "correct hors").is_err());
                for i in [0, 17, 21, 25, 40, len, sealed.len() - 1] {
                    let mut bad = sealed.clone();
                    bad[i] ^= 1;
                    assert!(
                        open(&bad, "correct horse").is_err(),
                        "{kdf:?}: byte {i} changed"
                    );
                }
                assert!(open(&sealed[..len + 10], "correct horse").is_err());
                assert!(seal(&plain, "", kdf).is_err());
                // Two seals of one key share neither salt nor nonce.
                assert_ne!(
                    seal(&plain, "correct horse", kdf).unwrap()[len - 28..len],
                    sealed[len - 28..len]
                );
            }
            // Costs an attacker could set to hang the reader are refused.
            let mut greedy = seal(
                &plain,
                "x",
                Kdf::Argon2id {
                    memory_kib: 64,
                    passes: 1,
                },
            )
            .unwrap();
            greedy[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
            assert!(
                open(&greedy, "x")
                    .unwrap_err()
                    .to_string()
                    .contains("out of range")
            );
        }
    }
}

pub(crate) fn to_bytes<T>(value: &T, limit: u64) -> Result<Vec<u8>, KeyError>
where
    T: serde::Serialize + tfhe::Versionize + Named,
{
    let mut out = Vec::new();
    safe_serialize(value, &mut out, limit).map_err(|e| KeyError::Serialize(e.to_string()))?;
    Ok(out)
}
