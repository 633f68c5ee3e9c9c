//! What the seller, worker and buyer commands share: chain and store flags, money in whole
//! tokens, progress bars.

use std::path::PathBuf;
use std::sync::Arc;

use alloy::primitives::U256;
use anyhow::{Context as _, Result, bail};
use datacloud_agent_core::{ChainClient, Config, ConfigOverrides, Deployments};
use datacloud_store::Blockstore;
use datacloud_store::gateway::{Client as GatewayClient, ClientConfig};

use crate::GlobalArgs;

/// Wei per whole token (the chain's native token has 18 decimals).
pub const WEI_PER_TOKEN: u128 = 1_000_000_000_000_000_000;
/// The unit shown on the devchain.
pub const UNIT: &str = "FIL";

/// Chain and store flags of the agent commands.
#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// JSON-RPC endpoint [default: http://127.0.0.1:8545, or the config's rpc_url].
    #[arg(long, value_name = "URL")]
    pub rpc: Option<String>,
    /// Signing key, hex [default: the devchain's first dev key, on the devchain only]. Prefer
    /// DATACLOUD_PRIVATE_KEY: a flag is visible to other local users.
    #[arg(long, value_name = "HEX")]
    pub key: Option<String>,
    /// Signing key from an encrypted Ethereum JSON keystore (as wallets write it), opened with
    /// DATACLOUD_KEYSTORE_PASSWORD or the file DATACLOUD_KEYSTORE_PASSWORD_FILE names [env:
    /// DATACLOUD_KEYSTORE].
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    pub keystore: Option<PathBuf>,
    /// Where this agent keeps its keys, stores, cursor and journal [default: .datacloud].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The deployments file [default: <data_dir>/deployments.json].
    #[arg(long, value_name = "FILE")]
    pub deployments: Option<PathBuf>,
    /// IPFS gateway (trustless gateway; Kubo RPC for publishing), repeatable, tried in order
    /// [default: http://127.0.0.1:8080, the seller node].
    #[arg(long = "gateway", value_name = "URL")]
    pub gateways: Vec<String>,
}

impl ChainArgs {
    /// The configuration these flags select.
    ///
    /// # Errors
    /// A bad flag, environment variable or configuration file.
    pub fn config(&self, global: &GlobalArgs) -> Result<Config> {
        Ok(Config::load(
            global.config.as_deref(),
            &ConfigOverrides {
                rpc_url: self.rpc.clone(),
                private_key: self.key.clone(),
                keystore: self.keystore.clone(),
                data_dir: self.data_dir.clone(),
                deployments: self.deployments.clone(),
                gateways: (!self.gateways.is_empty()).then(|| self.gateways.clone()),
                ..ConfigOverrides::default()
            },
        )?)
    }
}

/// A connected client and the contracts it talks to.
pub async fn connect(config: &Config) -> Result<(ChainClient, Deployments)> {
    let client = ChainClient::connect(config)
        .await
        .with_context(|| format!("connecting to {}", config.rpc_url))?;
    let deployments = Deployments::read(&config.deployments).with_context(|| {
        format!(
            "reading {} (run `datacloud deploy` first)",
            config.deployments.display()
        )
    })?;
    if deployments.chain_id != client.chain_id() {
        bail!(
            "{} was written for chain {}, but {} serves chain {}",
            config.deployments.display(),
            deployments.chain_id,
            config.rpc_url,
            client.chain_id()
        );
    }
    Ok((client, deployments))
}

/// Opens an agent's store `<data_dir>/<name>-store.redb`.
pub fn open_store(config: &Config, name: &str) -> Result<Arc<Blockstore>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let path = config.data_dir.join(format!("{name}-store.redb"));
    Ok(Arc::new(Blockstore::open(&path).with_context(|| {
        format!(
            "opening {} (is another datacloud process using it? stop it first)",
            path.display()
        )
    })?))
}

/// The gateway client for the configured `gateways`.
///
/// # Errors
/// An unusable gateway URL.
pub fn gateway_client(config: &Config) -> Result<GatewayClient> {
    Ok(GatewayClient::new(
        config.gateways.iter().map(url::Url::as_str),
        ClientConfig::default(),
    )?)
}

/// Whole tokens with 6 decimals and the unit: `0.050000 FIL`.
#[must_use]
pub fn tokens(wei: U256) -> String {
    let micro = wei / U256::from(1_000_000_000_000u64);
    let micro = u128::try_from(micro).unwrap_or(u128::MAX);
    format!("{}.{:06} {UNIT}", micro / 1_000_000, micro % 1_000_000)
}

/// Parses an amount in whole tokens (`0.05`, `1`, `2.5 FIL`) into wei, exactly.
///
/// # Errors
/// Not a non-negative decimal with at most 18 fractional digits, or too large.
pub fn parse_tokens(text: &str) -> Result<U256> {
    let t = text.trim();
    let t = t.strip_suffix(UNIT).unwrap_or(t).trim();
    let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(whole) || (whole.is_empty() && digits(fraction)))
        || !(fraction.is_empty() || digits(fraction))
        || fraction.len() > 18
    {
        bail!("{text:?} is not an amount in whole tokens (e.g. 0.05, with at most 18 decimals)");
    }
    let whole = if whole.is_empty() { "0" } else { whole };
    let scaled = format!("{whole}{fraction:0<18}");
    U256::from_str_radix(&scaled, 10).with_context(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_amounts_parse_exactly_and_print_back() {
        assert_eq!(
            parse_tokens("0.05").unwrap(),
            U256::from(WEI_PER_TOKEN / 20)
        );
        assert_eq!(parse_tokens("1").unwrap(), U256::from(WEI_PER_TOKEN));
        assert_eq!(
            parse_tokens("2.5 FIL").unwrap(),
            U256::from(WEI_PER_TOKEN * 5 / 2)
        );
        assert_eq!(parse_tokens(".5").unwrap(), U256::from(WEI_PER_TOKEN / 2));
        assert_eq!(
            parse_tokens("0.000000000000000001").unwrap(),
            U256::from(1u8)
        );
        for bad in [
            "",
            "-1",
            "1e3",
            "0.0000000000000000001",
            "abc",
            "1.2.3",
            ".",
        ] {
            assert!(parse_tokens(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(tokens(parse_tokens("0.05").unwrap()), "0.050000 FIL");
    }
}
