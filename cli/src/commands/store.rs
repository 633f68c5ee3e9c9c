//! `datacloud store …` (content addressing and the trustless gateway) and `datacloud piece …`
//! (Filecoin piece commitments and PDP proofs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use datacloud_pdp::{PieceProver, challenge_leaf_index};
use datacloud_store::Blockstore;
use datacloud_store::gateway::{Client, ClientConfig};

/// The local blockstore every store command uses unless told otherwise.
const DEFAULT_STORE: &str = ".datacloud/store.redb";

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Import a file as a UnixFS DAG (CIDv1, raw leaves) and print its root CID.
    Add {
        file: PathBuf,
        /// Also write the DAG as a CARv1 file.
        #[arg(long, value_name = "OUT")]
        car: Option<PathBuf>,
        /// Chunk size in bytes (Kubo's `--chunker=size-N`).
        #[arg(long, default_value_t = datacloud_store::DEFAULT_CHUNK_SIZE)]
        chunk_size: usize,
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
    },
    /// Write a file from the local store, fetching (and verifying) it from gateways if needed.
    Get {
        cid: String,
        #[arg(short, long)]
        output: PathBuf,
        /// Trustless gateways to fetch from, tried in order.
        #[arg(long, value_name = "URL")]
        gateway: Vec<String>,
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
    },
    /// Serve the local store over the IPFS trustless gateway interface (`/ipfs/{cid}`).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The store (redb file).
        #[arg(long, default_value = DEFAULT_STORE)]
        store: PathBuf,
        /// Also take blocks through Kubo's RPC `POST /api/v0/block/put` (verified, pinned):
        /// a node buyers and workers can publish order parameters and results to.
        #[arg(long)]
        writable: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct PieceArgs {
    #[command(subcommand)]
    command: Option<PieceCommand>,
    /// The file whose piece commitment to print (PieceCID v2, v1 and padded size).
    file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PieceCommand {
    /// Print the PDP proofs of a piece for a challenge seed, as `provePossession` takes them.
    Prove {
        file: PathBuf,
        /// The challenge seed (the epoch block hash), 32 bytes hex.
        #[arg(long)]
        seed: String,
        /// The proof set id.
        #[arg(long)]
        set_id: u64,
        #[arg(long, default_value_t = 5)]
        challenges: u64,
    },
}

fn open_store(path: &PathBuf) -> Result<Arc<Blockstore>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(Arc::new(Blockstore::open(path).with_context(|| {
        format!("opening the store {}", path.display())
    })?))
}

pub async fn store(command: StoreCommand) -> Result<()> {
    match command {
        StoreCommand::Add {
            file,
            car,
            chunk_size,
            store,
        } => {
            let store = open_store(&store)?;
            let reader = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let imported = store.import_file(std::io::BufReader::new(reader), chunk_size, true)?;
            if let Some(out) = car {
                let writer = std::io::BufWriter::new(std::fs::File::create(&out)?);
                std::io::Write::flush(&mut store.export_car(&imported.root, writer)?)?;
            }
            println!("{}", imported.root);
        }
        StoreCommand::Get {
            cid,
            output,
            gateway,
            store,
        } => {
            let cid: cid::Cid = cid.parse().with_context(|| format!("{cid} is not a CID"))?;
            let store = open_store(&store)?;
            if gateway.is_empty() {
                if !store.has(&cid)? {
                    bail!("{cid} is not in the local store; pass --gateway URL to fetch it");
                }
            } else if let Some(fetched) = Client::new(&gateway, ClientConfig::default())?
                .local_or_fetch_dag(&cid, &store, true)
                .await?
            {
                eprintln!(
                    "fetched {} verified blocks ({} bytes) from {}",
                    fetched.blocks, fetched.bytes, fetched.gateway
                );
            }
            let out = std::io::BufWriter::new(std::fs::File::create(&output)?);
            let written = store.read_file(&cid, out)?;
            eprintln!("wrote {written} bytes to {}", output.display());
        }
        StoreCommand::Serve {
            listen,
            store,
            writable,
        } => {
            let store = open_store(&store)?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            datacloud_agent_core::shutdown_on_signals(&shutdown);
            println!(
                "trustless gateway on http://{}/ipfs/{{cid}}{} (Ctrl-C stops it)",
                listener.local_addr()?,
                if writable {
                    ", block/put on /api/v0/block/put"
                } else {
                    ""
                }
            );
            datacloud_store::gateway::serve_with_config(
                listener,
                store,
                datacloud_store::gateway::GatewayConfig {
                    accept_block_put: writable,
                    ..datacloud_store::gateway::GatewayConfig::default()
                },
                async move { shutdown.cancelled().await },
            )
            .await?;
        }
    }
    Ok(())
}

pub fn piece(args: PieceArgs) -> Result<()> {
    match (args.command, args.file) {
        (
            Some(PieceCommand::Prove {
                file,
                seed,
                set_id,
                challenges,
            }),
            _,
        ) => {
            let seed: [u8; 32] = alloy::hex::decode(seed.trim_start_matches("0x"))
                .ok()
                .and_then(|b| b.try_into().ok())
                .context("--seed must be 32 bytes of hex")?;
            let mut prover =
                PieceProver::open(&file).with_context(|| format!("reading {}", file.display()))?;
            let leaves = prover.commitment().size().leaf_count();
            let mut proofs = Vec::new();
            for i in 0..challenges.clamp(1, 64) {
                let leaf =
                    challenge_leaf_index(&seed, alloy::primitives::U256::from(set_id), i, leaves);
                let proof = prover.proof(leaf)?;
                proofs.push(serde_json::json!({
                    "leaf_index": proof.leaf_index,
                    "leaf": alloy::hex::encode_prefixed(proof.leaf),
                    "siblings": proof.siblings.iter().map(alloy::hex::encode_prefixed).collect::<Vec<_>>(),
                }));
            }
            println!("{}", serde_json::to_string_pretty(&proofs)?);
        }
        (None, Some(file)) => {
            let reader = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let commitment = datacloud_pdp::commp_from_reader(std::io::BufReader::new(reader))?;
            println!("PieceCID v2   {}", commitment.to_piece_cid_v2());
            println!("PieceCID v1   {}", commitment.to_piece_cid_v1());
            println!(
                "padded size   {} bytes ({} leaves)",
                commitment.size().padded_size(),
                commitment.size().leaf_count()
            );
        }
        (None, None) => bail!("give a FILE, or `piece prove FILE --seed …`"),
    }
    Ok(())
}
