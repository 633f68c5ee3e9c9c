//! Agent configuration: defaults, then a TOML file, then `DATACLOUD_*` environment variables,
//! then explicit overrides (command-line flags), each layer replacing what the one before set.
//!
//! The defaults point at the embedded devchain (`datacloud devchain`): JSON-RPC on
//! `http://127.0.0.1:8545`, chain id 412346, and the devchain's first dev account as signer.
//! A dev key is only ever chosen for the devchain's chain id; any other chain needs a key.
//!
//! | TOML key | environment | default |
//! |---|---|---|
//! | `rpc_url` | `DATACLOUD_RPC_URL` | `http://127.0.0.1:8545` |
//! | `chain_id` | `DATACLOUD_CHAIN_ID` | `412346` (the devchain's) |
//! | `private_key` | `DATACLOUD_PRIVATE_KEY` | devchain dev account 0 (devchain only) |
//! | `keystore` | `DATACLOUD_KEYSTORE` | none: instead of `private_key`, an encrypted Ethereum JSON keystore (v3, as wallets write it), opened with `DATACLOUD_KEYSTORE_PASSWORD` or the file named by `DATACLOUD_KEYSTORE_PASSWORD_FILE` |
//! | `data_dir` | `DATACLOUD_DATA_DIR` | `.datacloud` (in the working directory) |
//! | `deployments` | `DATACLOUD_DEPLOYMENTS` | `<data_dir>/deployments.json` |
//! | `confirmations` | `DATACLOUD_CONFIRMATIONS` | `0` (the devchain never reorganizes) |
//! | `poll_interval_ms` | `DATACLOUD_POLL_INTERVAL_MS` | `500` |
//! | `gateways` (list) | `DATACLOUD_GATEWAYS` (comma-separated) | `["http://127.0.0.1:8080"]` |
//! | `max_log_block_range` | — | `1000` |
//! | `[retry]` `max_attempts`, `initial_backoff_ms`, `max_backoff_ms` | — | `6`, `200`, `5000` |
//! | `[deploy]` (see [`DeployParams`]) | — | see [`DeployParams::default`] |
//!
//! `DATACLOUD_CONFIG` names the TOML file when no path is given explicitly.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use alloy::{primitives::B256, signers::local::PrivateKeySigner};
use serde::Deserialize;
use url::Url;

use crate::{client::RetryPolicy, deploy::DeployParams};

/// The devchain's chain id (`datacloud_devchain::ChainConfig::default().chain_id`, Nitro's dev
/// node id; a test keeps the two equal).
pub const DEVCHAIN_CHAIN_ID: u64 = 412_346;
/// The devchain's JSON-RPC endpoint.
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:8545";
/// The local store node (`datacloud seller run` serves its store there).
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";
/// Most gateways configured.
pub const MAX_GATEWAYS: usize = 16;
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".datacloud";
/// The devchain's first dev account key (mnemonic `test test … junk`, path `m/44'/60'/0'/0/0`),
/// public knowledge: never use it on a real chain.
pub const DEVCHAIN_KEY_0: B256 =
    alloy::primitives::b256!("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 256 * 1024;
/// Most confirmations accepted (more is a typo, not caution).
pub const MAX_CONFIRMATIONS: u64 = 10_000;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for this configuration.
    #[error("configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said (with line and column).
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid {key} (from {origin}): {reason}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// Where the value came from (`DATACLOUD_RPC_URL`, a file, a flag, the defaults).
        origin: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// A signing key; `Debug` never prints it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PrivateKey(B256);

impl PrivateKey {
    /// The key bytes.
    #[must_use]
    pub const fn to_bytes(&self) -> B256 {
        self.0
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl FromStr for PrivateKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let hex = s.trim();
        let bytes = B256::from_str(hex)
            .map_err(|_| "expected 32 bytes of hex (64 hex digits, 0x optional)".to_owned())?;
        PrivateKeySigner::from_bytes(&bytes)
            .map_err(|_| "not a valid secp256k1 private key".to_owned())?;
        Ok(Self(bytes))
    }
}

/// Everything an agent or the CLI needs to reach the chain and keep its state.
#[derive(Debug, Clone)]
pub struct Config {
    /// JSON-RPC endpoint (http or https).
    pub rpc_url: Url,
    /// The chain id the endpoint must report.
    pub chain_id: u64,
    /// The signing key.
    pub private_key: PrivateKey,
    /// Where agents keep their cursor, journal and deployments file.
    pub data_dir: PathBuf,
    /// The deployments file (`<data_dir>/deployments.json` unless set).
    pub deployments: PathBuf,
    /// Blocks that must be mined on top of an event's block before it is handled.
    pub confirmations: u64,
    /// How often the follower and receipt waits poll the node.
    pub poll_interval: Duration,
    /// Most blocks one `eth_getLogs` request spans.
    pub max_log_block_range: u64,
    /// IPFS trustless gateways (and Kubo RPC nodes) content is fetched from and published to,
    /// tried in order.
    pub gateways: Vec<Url>,
    /// Retries of transient RPC failures.
    pub retry: RetryPolicy,
    /// Contract parameters used by `deploy`.
    pub deploy: DeployParams,
}

/// Values that replace the file and the environment (the CLI's flags).
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    /// `rpc_url`.
    pub rpc_url: Option<String>,
    /// `chain_id`.
    pub chain_id: Option<u64>,
    /// `private_key` (hex).
    pub private_key: Option<String>,
    /// `keystore`.
    pub keystore: Option<PathBuf>,
    /// `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `deployments`.
    pub deployments: Option<PathBuf>,
    /// `confirmations`.
    pub confirmations: Option<u64>,
    /// `gateways`.
    pub gateways: Option<Vec<String>>,
    /// `poll_interval_ms`.
    pub poll_interval_ms: Option<u64>,
}

/// The TOML file: every key optional, unknown keys refused (a typo must not silently fall back
/// to a default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    rpc_url: Option<String>,
    chain_id: Option<u64>,
    private_key: Option<String>,
    keystore: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    deployments: Option<PathBuf>,
    confirmations: Option<u64>,
    poll_interval_ms: Option<u64>,
    gateways: Option<Vec<String>>,
    max_log_block_range: Option<u64>,
    retry: Option<RetryFile>,
    deploy: Option<DeployParams>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryFile {
    max_attempts: Option<u32>,
    initial_backoff_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
}

/// One setting's value and where it came from.
struct Layered<T> {
    value: Option<T>,
    origin: String,
}

impl<T> Layered<T> {
    fn new() -> Self {
        Self {
            value: None,
            origin: "the defaults".to_owned(),
        }
    }

    fn set(&mut self, value: Option<T>, origin: &str) {
        if let Some(value) = value {
            self.value = Some(value);
            origin.clone_into(&mut self.origin);
        }
    }
}

impl Config {
    /// The configuration from `file` (or `DATACLOUD_CONFIG`, or none), the process
    /// environment and `overrides`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting and where its bad value came from.
    pub fn load(file: Option<&Path>, overrides: &ConfigOverrides) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(key, _)| key.starts_with("DATACLOUD_"))
            .collect();
        Self::load_from(file, &env, overrides)
    }

    /// As [`Config::load`], with the environment given explicitly.
    ///
    /// # Errors
    /// [`ConfigError`].
    #[allow(clippy::too_many_lines)] // one layer per source, each setting in the same order
    pub fn load_from(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        overrides: &ConfigOverrides,
    ) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("DATACLOUD_CONFIG").map(PathBuf::from));
        let (parsed, file_origin) = match &file {
            Some(path) => (read_file(path)?, format!("{}", path.display())),
            None => (ConfigFile::default(), String::new()),
        };

        let mut rpc_url = Layered::new();
        let mut chain_id = Layered::new();
        let mut private_key = Layered::new();
        let mut keystore = Layered::new();
        let mut data_dir = Layered::new();
        let mut deployments = Layered::new();
        let mut confirmations = Layered::new();
        let mut poll_interval_ms = Layered::new();
        let mut gateways = Layered::new();

        rpc_url.set(parsed.rpc_url, &file_origin);
        chain_id.set(parsed.chain_id.map(|v| v.to_string()), &file_origin);
        private_key.set(parsed.private_key, &file_origin);
        keystore.set(parsed.keystore, &file_origin);
        data_dir.set(parsed.data_dir, &file_origin);
        deployments.set(parsed.deployments, &file_origin);
        confirmations.set(parsed.confirmations.map(|v| v.to_string()), &file_origin);
        poll_interval_ms.set(parsed.poll_interval_ms.map(|v| v.to_string()), &file_origin);
        gateways.set(parsed.gateways, &file_origin);

        let var = |name: &str| env.get(name).cloned();
        rpc_url.set(var("DATACLOUD_RPC_URL"), "DATACLOUD_RPC_URL");
        chain_id.set(var("DATACLOUD_CHAIN_ID"), "DATACLOUD_CHAIN_ID");
        private_key.set(var("DATACLOUD_PRIVATE_KEY"), "DATACLOUD_PRIVATE_KEY");
        keystore.set(
            var("DATACLOUD_KEYSTORE").map(PathBuf::from),
            "DATACLOUD_KEYSTORE",
        );
        data_dir.set(
            var("DATACLOUD_DATA_DIR").map(PathBuf::from),
            "DATACLOUD_DATA_DIR",
        );
        deployments.set(
            var("DATACLOUD_DEPLOYMENTS").map(PathBuf::from),
            "DATACLOUD_DEPLOYMENTS",
        );
        confirmations.set(var("DATACLOUD_CONFIRMATIONS"), "DATACLOUD_CONFIRMATIONS");
        poll_interval_ms.set(
            var("DATACLOUD_POLL_INTERVAL_MS"),
            "DATACLOUD_POLL_INTERVAL_MS",
        );

        gateways.set(
            var("DATACLOUD_GATEWAYS").map(|v| v.split(',').map(|g| g.trim().to_owned()).collect()),
            "DATACLOUD_GATEWAYS",
        );
        rpc_url.set(overrides.rpc_url.clone(), "the command line");
        gateways.set(overrides.gateways.clone(), "the command line");
        poll_interval_ms.set(
            overrides.poll_interval_ms.map(|v| v.to_string()),
            "the command line",
        );
        chain_id.set(
            overrides.chain_id.map(|v| v.to_string()),
            "the command line",
        );
        private_key.set(overrides.private_key.clone(), "the command line");
        keystore.set(overrides.keystore.clone(), "the command line");
        data_dir.set(overrides.data_dir.clone(), "the command line");
        deployments.set(overrides.deployments.clone(), "the command line");
        confirmations.set(
            overrides.confirmations.map(|v| v.to_string()),
            "the command line",
        );

        let rpc_url = parse_url(rpc_url)?;
        let chain_id: u64 = parse_number("chain_id", chain_id, DEVCHAIN_CHAIN_ID)?;
        if chain_id == 0 {
            return Err(invalid("chain_id", "the configuration", "must not be 0"));
        }
        let private_key = match keystore.value {
            Some(path) if private_key.value.is_none() => {
                open_keystore(&path, &keystore.origin, env)?
            }
            Some(_) => {
                return Err(invalid(
                    "keystore",
                    &keystore.origin,
                    &format!(
                        "private_key is set too (by {}): set one of the two",
                        private_key.origin
                    ),
                ));
            }
            None => resolve_key(private_key, chain_id)?,
        };
        let data_dir_origin = data_dir.origin.clone();
        let data_dir = data_dir
            .value
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", &data_dir_origin, "must not be empty"));
        }
        let deployments = deployments
            .value
            .unwrap_or_else(|| data_dir.join("deployments.json"));
        let confirmations = bounded("confirmations", confirmations, 0, 0..=MAX_CONFIRMATIONS)?;
        let poll_ms = bounded("poll_interval_ms", poll_interval_ms, 500, 10..=3_600_000)?;
        let max_log_block_range = parsed.max_log_block_range.unwrap_or(1000);
        if !(1..=100_000).contains(&max_log_block_range) {
            return Err(invalid(
                "max_log_block_range",
                &file_origin,
                "must be between 1 and 100000",
            ));
        }
        let gateways = parse_gateways(gateways)?;
        let retry = resolve_retry(parsed.retry.unwrap_or_default(), &file_origin)?;
        let deploy = parsed.deploy.unwrap_or_default();
        deploy
            .validate()
            .map_err(|reason| invalid("deploy", &file_origin, &reason))?;

        Ok(Self {
            rpc_url,
            chain_id,
            private_key,
            data_dir,
            deployments,
            confirmations,
            poll_interval: Duration::from_millis(poll_ms),
            max_log_block_range,
            gateways,
            retry,
            deploy,
        })
    }

    /// The signer for [`Config::private_key`].
    #[must_use]
    pub fn signer(&self) -> PrivateKeySigner {
        // `PrivateKey` is only ever built from bytes `PrivateKeySigner` accepted.
        PrivateKeySigner::from_bytes(&self.private_key.0)
            .unwrap_or_else(|_| unreachable!("PrivateKey holds a validated key"))
    }
}

fn invalid(key: &'static str, origin: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        origin: origin.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A number from `layer` (or `default`), which must lie in `range`.
fn bounded(
    key: &'static str,
    layer: Layered<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let origin = layer.origin.clone();
    let value = parse_number(key, layer, default)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            key,
            origin,
            reason: format!("{value} is outside {}..={}", range.start(), range.end()),
        })
    }
}

fn resolve_key(layer: Layered<String>, chain_id: u64) -> Result<PrivateKey, ConfigError> {
    match layer.value {
        Some(hex) => PrivateKey::from_str(&hex).map_err(|reason| ConfigError::Invalid {
            key: "private_key",
            origin: layer.origin,
            reason,
        }),
        None if chain_id == DEVCHAIN_CHAIN_ID => Ok(PrivateKey(DEVCHAIN_KEY_0)),
        None => Err(invalid(
            "private_key",
            "the defaults",
            &format!(
                "chain {chain_id} is not the devchain ({DEVCHAIN_CHAIN_ID}), so no dev key is \
                 used: set private_key in the file, DATACLOUD_PRIVATE_KEY or --key"
            ),
        )),
    }
}

/// Largest keystore file read (a v3 keystore is well under 1 KiB).
const MAX_KEYSTORE_BYTES: u64 = 64 * 1024;

/// Decrypts the Ethereum JSON keystore at `path` (scrypt or PBKDF2, AES-128-CTR, as every
/// wallet writes it) with the password from `DATACLOUD_KEYSTORE_PASSWORD` or the file that
/// `DATACLOUD_KEYSTORE_PASSWORD_FILE` names (its trailing newline dropped).
fn open_keystore(
    path: &Path,
    origin: &str,
    env: &HashMap<String, String>,
) -> Result<PrivateKey, ConfigError> {
    let bad = |reason: String| invalid("keystore", origin, &reason);
    let size = std::fs::metadata(path)
        .map_err(|e| bad(format!("{}: {e}", path.display())))?
        .len();
    if size > MAX_KEYSTORE_BYTES {
        return Err(bad(format!(
            "{} is {size} bytes: not a keystore",
            path.display()
        )));
    }
    let password = match (
        env.get("DATACLOUD_KEYSTORE_PASSWORD"),
        env.get("DATACLOUD_KEYSTORE_PASSWORD_FILE"),
    ) {
        (Some(password), _) => zeroize::Zeroizing::new(password.clone()),
        (None, Some(file)) => {
            let text = crate::fs::read_bounded(Path::new(file), 4096)
                .map_err(|e| bad(format!("the password file {file}: {e}")))?;
            let text = String::from_utf8(text)
                .map_err(|_| bad(format!("the password file {file} is not UTF-8")))?;
            zeroize::Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned())
        }
        (None, None) => {
            return Err(bad(
                "set DATACLOUD_KEYSTORE_PASSWORD or DATACLOUD_KEYSTORE_PASSWORD_FILE to open it"
                    .into(),
            ));
        }
    };
    let signer = PrivateKeySigner::decrypt_keystore(path, password.as_bytes()).map_err(|e| {
        bad(format!(
            "{} does not open with that password, or is not a keystore: {e}",
            path.display()
        ))
    })?;
    Ok(PrivateKey(signer.to_bytes()))
}

fn resolve_retry(file: RetryFile, origin: &str) -> Result<RetryPolicy, ConfigError> {
    let defaults = RetryPolicy::default();
    let retry = RetryPolicy {
        max_attempts: file.max_attempts.unwrap_or(defaults.max_attempts),
        initial_backoff: file
            .initial_backoff_ms
            .map_or(defaults.initial_backoff, Duration::from_millis),
        max_backoff: file
            .max_backoff_ms
            .map_or(defaults.max_backoff, Duration::from_millis),
    };
    if !(1..=100).contains(&retry.max_attempts) || retry.initial_backoff > retry.max_backoff {
        return Err(invalid(
            "retry",
            origin,
            "max_attempts must be 1..=100 and initial_backoff_ms at most max_backoff_ms",
        ));
    }
    Ok(retry)
}

fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let bytes =
        crate::fs::read_bounded(path, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Parse {
        path: path.to_path_buf(),
        message: "not UTF-8".to_owned(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn parse_gateways(layer: Layered<Vec<String>>) -> Result<Vec<Url>, ConfigError> {
    let list = layer
        .value
        .unwrap_or_else(|| vec![DEFAULT_GATEWAY.to_owned()]);
    let bad = |reason: String| ConfigError::Invalid {
        key: "gateways",
        origin: layer.origin.clone(),
        reason,
    };
    if list.is_empty() || list.len() > MAX_GATEWAYS {
        return Err(bad(format!(
            "give between 1 and {MAX_GATEWAYS} gateway URLs"
        )));
    }
    list.iter()
        .map(|text| {
            let url = Url::parse(text).map_err(|e| {
                bad(format!(
                    "{text:?} is not a URL ({e}); expected e.g. {DEFAULT_GATEWAY}"
                ))
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(bad(format!("{text:?}: only http:// and https:// gateways")));
            }
            Ok(url)
        })
        .collect()
}

fn parse_url(layer: Layered<String>) -> Result<Url, ConfigError> {
    let text = layer.value.as_deref().unwrap_or(DEFAULT_RPC_URL);
    let url = Url::parse(text).map_err(|e| ConfigError::Invalid {
        key: "rpc_url",
        origin: layer.origin.clone(),
        reason: format!("{text:?} is not a URL ({e}); expected e.g. {DEFAULT_RPC_URL}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::Invalid {
            key: "rpc_url",
            origin: layer.origin,
            reason: format!("{text:?}: only http:// and https:// JSON-RPC endpoints are supported"),
        });
    }
    Ok(url)
}

fn parse_number(
    key: &'static str,
    layer: Layered<String>,
    default: u64,
) -> Result<u64, ConfigError> {
    match layer.value {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|_| ConfigError::Invalid {
            key,
            origin: layer.origin,
            reason: format!("{text:?} is not a non-negative integer"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_point_at_the_devchain() {
        let config = Config::load_from(None, &env(&[]), &ConfigOverrides::default()).unwrap();
        assert_eq!(config.rpc_url.as_str(), "http://127.0.0.1:8545/");
        assert_eq!(
            config.chain_id,
            datacloud_devchain::ChainConfig::default().chain_id
        );
        let node =
            datacloud_devchain::Node::new(datacloud_devchain::ChainConfig::default(), 1).unwrap();
        assert_eq!(config.signer().address(), node.dev_keys()[0].0);
        assert_eq!(config.private_key.to_bytes(), node.dev_keys()[0].1);
        assert_eq!(config.deployments, Path::new(".datacloud/deployments.json"));
        assert!(
            !format!("{config:?}").contains("ac0974"),
            "key leaked into Debug"
        );
    }

    #[test]
    fn layers_apply_in_order_file_env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "rpc_url = \"http://file:1\"\nconfirmations = 3\ndata_dir = \"from-file\"\n\
             [deploy]\nproving_period = 300\n",
        )
        .unwrap();
        let vars = env(&[
            ("DATACLOUD_RPC_URL", "http://env:2"),
            ("DATACLOUD_CONFIRMATIONS", "4"),
        ]);
        let config = Config::load_from(Some(&path), &vars, &ConfigOverrides::default()).unwrap();
        assert_eq!(config.rpc_url.as_str(), "http://env:2/");
        assert_eq!(config.confirmations, 4);
        assert_eq!(config.data_dir, Path::new("from-file"));
        assert_eq!(config.deployments, Path::new("from-file/deployments.json"));
        assert_eq!(config.deploy.proving_period, 300);
        assert_eq!(
            config.deploy.challenge_window,
            DeployParams::default().challenge_window
        );
        let overrides = ConfigOverrides {
            rpc_url: Some("https://flag:3".to_owned()),
            ..ConfigOverrides::default()
        };
        let config = Config::load_from(Some(&path), &vars, &overrides).unwrap();
        assert_eq!(config.rpc_url.as_str(), "https://flag:3/");
    }

    /// An encrypted JSON keystore, as wallets write it, instead of a hex key in the
    /// environment: opened with its password from the environment or a file, refused with a
    /// wrong one, and never together with `private_key`.
    #[test]
    fn the_signer_comes_from_an_encrypted_keystore() {
        let dir = tempfile::tempdir().unwrap();
        let secret = [0x42u8; 32];
        let (written, _) = PrivateKeySigner::encrypt_keystore(
            dir.path(),
            &mut rand08::thread_rng(),
            secret,
            "correct horse",
            Some("agent.json"),
        )
        .unwrap();
        let path = dir.path().join("agent.json");
        let path_text = path.display().to_string();
        let load = |vars: &[(&str, &str)]| {
            Config::load_from(None, &env(vars), &ConfigOverrides::default())
        };
        let config = load(&[
            ("DATACLOUD_KEYSTORE", &path_text),
            ("DATACLOUD_KEYSTORE_PASSWORD", "correct horse"),
        ])
        .unwrap();
        assert_eq!(config.private_key.to_bytes(), B256::from(secret));
        assert_eq!(config.signer().address(), written.address());
        // The password from a file, its newline dropped.
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, "correct horse\n").unwrap();
        let password_text = password_file.display().to_string();
        let from_file = load(&[
            ("DATACLOUD_KEYSTORE", &path_text),
            ("DATACLOUD_KEYSTORE_PASSWORD_FILE", &password_text),
        ])
        .unwrap();
        assert_eq!(from_file.private_key.to_bytes(), B256::from(secret));
        for (vars, says) in [
            (
                vec![
                    ("DATACLOUD_KEYSTORE", path_text.as_str()),
                    ("DATACLOUD_KEYSTORE_PASSWORD", "correct hors"),
                ],
                "does not open",
            ),
            (
                vec![("DATACLOUD_KEYSTORE", path_text.as_str())],
                "DATACLOUD_KEYSTORE_PASSWORD",
            ),
            (
                vec![
                    ("DATACLOUD_KEYSTORE", path_text.as_str()),
                    ("DATACLOUD_KEYSTORE_PASSWORD", "correct horse"),
                    ("DATACLOUD_PRIVATE_KEY", "0x01"),
                ],
                "set one of the two",
            ),
        ] {
            let err = load(&vars).unwrap_err().to_string();
            assert!(err.contains("keystore") && err.contains(says), "{err}");
        }
    }

    #[test]
    fn errors_name_the_setting_and_its_origin() {
        let bad_url = Config::load_from(
            None,
            &env(&[("DATACLOUD_RPC_URL", "ws://127.0.0.1:8545")]),
            &ConfigOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad_url.contains("rpc_url") && bad_url.contains("DATACLOUD_RPC_URL"),
            "{bad_url}"
        );
        assert!(bad_url.contains("only http"), "{bad_url}");

        let bad_key = Config::load_from(
            None,
            &env(&[]),
            &ConfigOverrides {
                private_key: Some("0x1234".to_owned()),
                ..ConfigOverrides::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad_key.contains("private_key") && bad_key.contains("command line"),
            "{bad_key}"
        );

        let no_key = Config::load_from(
            None,
            &env(&[("DATACLOUD_CHAIN_ID", "42161")]),
            &ConfigOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(no_key.contains("no dev key"), "{no_key}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.toml");
        std::fs::write(&path, "rpc_ulr = \"http://x\"\n").unwrap();
        let typo = Config::load_from(Some(&path), &env(&[]), &ConfigOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            typo.contains("rpc_ulr") && typo.contains("typo.toml"),
            "{typo}"
        );

        std::fs::write(&path, "[deploy]\nchallenge_window = 0\n").unwrap();
        let range = Config::load_from(Some(&path), &env(&[]), &ConfigOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(range.contains("challenge_window"), "{range}");

        let missing = Config::load_from(
            Some(Path::new("does/not/exist.toml")),
            &env(&[]),
            &ConfigOverrides::default(),
        )
        .unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
    }
}
