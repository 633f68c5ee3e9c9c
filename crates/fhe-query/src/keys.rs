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
pub struct Passphrase(String);

impl Passphrase {
    #[must_use]
    pub fn new(passphrase: impl Into<String>) -> Self {
        Self(passphrase.into())
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
    /// with a key derived by PBKDF2-HMAC-SHA256 ([`SEAL_ITERATIONS`] rounds, random salt and
    /// nonce). A stolen file is then worth a passphrase search, not a key.
    ///
    /// # Errors
    /// [`KeyError::Io`] (the file exists, or cannot be written), [`KeyError::Sealed`] for an
    /// empty passphrase.
    pub fn save_sealed(&self, path: &Path, passphrase: &Passphrase) -> Result<(), KeyError> {
        write_private(
            path,
            &to_bytes(&self.client, MAX_CLIENT_KEY_BYTES)?,
            Some(passphrase),
        )
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
        Some(passphrase) => {
            write_new_private(path, &seal::seal(bytes, &passphrase.0, SEAL_ITERATIONS)?)
        }
        None => write_new_private(path, bytes),
    }
}

/// Reads a file written by [`write_private`]: refuses one others can read or one over `max`
/// bytes, and opens a sealed one with `passphrase`.
pub(crate) fn read_private(
    path: &Path,
    passphrase: Option<&Passphrase>,
    max: u64,
) -> Result<Vec<u8>, KeyError> {
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
        Ok(bytes)
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

/// PBKDF2 rounds of a sealed key: OWASP's figure for PBKDF2-HMAC-SHA256 (2023). PBKDF2 rather
/// than a memory-hard KDF because it is the one already in the dependency tree (the devchain's
/// mnemonic derivation); the count is stored in the file, so it can rise later.
pub const SEAL_ITERATIONS: u32 = 600_000;

/// The sealed key file: `MAGIC ‖ rounds (u32 BE) ‖ salt (16) ‖ nonce (12) ‖ ciphertext ‖ tag`,
/// the header authenticated as associated data.
mod seal {
    use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
    use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
    use rand::RngCore as _;

    use crate::error::KeyError;

    const MAGIC: &[u8; 16] = b"datacloud-key-v1";
    const HEADER: usize = MAGIC.len() + 4 + 16 + 12;
    /// More rounds than this in a file is refused (reading would hang): 100x the default.
    const MAX_ROUNDS: u32 = 60_000_000;

    pub(super) fn is_sealed(bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC)
    }

    fn cipher(passphrase: &str, salt: &[u8], rounds: u32) -> ChaCha20Poly1305 {
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(passphrase.as_bytes(), salt, rounds, &mut key);
        let cipher = ChaCha20Poly1305::new(&Key::from(key));
        key.fill(0);
        cipher
    }

    pub(super) fn seal(plain: &[u8], passphrase: &str, rounds: u32) -> Result<Vec<u8>, KeyError> {
        if passphrase.is_empty() {
            return Err(KeyError::Sealed("an empty passphrase seals nothing".into()));
        }
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&rounds.to_be_bytes());
        let mut salt_nonce = [0u8; 28];
        rand::rng().fill_bytes(&mut salt_nonce);
        header.extend_from_slice(&salt_nonce);
        let (salt, nonce) = salt_nonce.split_at(16);
        let nonce = nonce_of(nonce)?;
        let sealed = cipher(passphrase, salt, rounds)
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

    pub(super) fn open(bytes: &[u8], passphrase: &str) -> Result<Vec<u8>, KeyError> {
        if bytes.len() < HEADER + 16 {
            return Err(KeyError::Sealed("truncated".into()));
        }
        let (header, sealed) = bytes.split_at(HEADER);
        let rounds = u32::from_be_bytes(header[16..20].try_into().unwrap_or_default());
        if rounds == 0 || rounds > MAX_ROUNDS {
            return Err(KeyError::Sealed(format!(
                "{rounds} PBKDF2 rounds is out of range"
            )));
        }
        let (salt, nonce) = header[20..].split_at(16);
        let nonce = nonce_of(nonce)?;
        cipher(passphrase, salt, rounds)
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: header,
                },
            )
            .map_err(|_| KeyError::Sealed("wrong passphrase, or a damaged key file".into()))
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
            assert!(is_sealed(&bytes));
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
            // Few rounds here: the derivation is tested, not its cost.
            let sealed = seal(&plain, "correct horse", 1000).unwrap();
            assert!(is_sealed(&sealed));
            assert_eq!(open(&sealed, "correct horse").unwrap(), plain);
            assert!(open(&sealed, "correct hors").is_err());
            for i in [0, 17, 25, 40, HEADER, sealed.len() - 1] {
                let mut bad = sealed.clone();
                bad[i] ^= 1;
                assert!(open(&bad, "correct horse").is_err(), "byte {i} changed");
            }
            assert!(open(&sealed[..HEADER + 10], "correct horse").is_err());
            assert!(seal(&plain, "", 1000).is_err());
            // Two seals of one key share neither salt nor nonce.
            assert_ne!(
                seal(&plain, "correct horse", 1000).unwrap()[20..48],
                sealed[20..48]
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
