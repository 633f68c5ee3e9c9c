//! Keys. The seller's client key never leaves the seller: it is written with mode 0600 and read
//! back only by the seller's tools. The compressed server key is published (content-addressed) for
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
/// are checked against them ([`crate::layout`]).
pub const PARAMETERS: tfhe::shortint::ClassicPBSParameters =
    tfhe::shortint::parameters::PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128;

/// The seller's secret: decrypts aggregates. Never published.
pub struct SellerKey {
    client: ClientKey,
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
        let bytes = to_bytes(&self.client, MAX_CLIENT_KEY_BYTES)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let io = |e| KeyError::Io(path.display().to_string(), e);
        let mut file = options.open(path).map_err(io)?;
        std::io::Write::write_all(&mut file, &bytes).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads a key written by [`SellerKey::save`]; refuses a file others can read.
    ///
    /// # Errors
    /// [`KeyError::Io`], [`KeyError::Permissions`], [`KeyError::Deserialize`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
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
        if metadata.len() > MAX_CLIENT_KEY_BYTES {
            return Err(KeyError::TooLarge(metadata.len()));
        }
        let file = std::fs::File::open(path).map_err(io)?;
        let client = safe_deserialize(std::io::BufReader::new(file), MAX_CLIENT_KEY_BYTES)
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

pub(crate) fn to_bytes<T>(value: &T, limit: u64) -> Result<Vec<u8>, KeyError>
where
    T: serde::Serialize + tfhe::Versionize + Named,
{
    let mut out = Vec::new();
    safe_serialize(value, &mut out, limit).map_err(|e| KeyError::Serialize(e.to_string()))?;
    Ok(out)
}
