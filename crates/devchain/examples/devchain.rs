//! An anvil-like development node:
//!
//! ```text
//! cargo run -p datacloud-devchain --example devchain -- [PORT] [--data-dir DIR] [--block-time SECONDS]
//! ```
//!
//! serves JSON-RPC over HTTP and WebSocket on 127.0.0.1:PORT (default 8545) with the ten
//! standard dev accounts, and prints them at start. `--data-dir` keeps the chain in a redb
//! database there and resumes it on the next start (without it everything is in memory);
//! `--block-time` seals a block every SECONDS instead of one per transaction. The
//! `datacloud devchain` CLI will replace this.

use std::{path::PathBuf, sync::Arc, time::Duration};

use datacloud_devchain::{Node, NodeConfig, Rpc, RpcConfig, rpc, serve};

fn usage() -> String {
    "usage: devchain [PORT] [--data-dir DIR] [--block-time SECONDS]".to_owned()
}

fn parse_args() -> Result<(u16, NodeConfig), String> {
    let mut port = 8545;
    let mut config = NodeConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data-dir" => {
                let dir = args.next().ok_or_else(usage)?;
                config.data_dir = Some(PathBuf::from(dir));
            }
            "--block-time" => {
                let seconds: f64 = args
                    .next()
                    .ok_or_else(usage)?
                    .parse()
                    .map_err(|e| format!("--block-time: {e}"))?;
                let time = Duration::try_from_secs_f64(seconds)
                    .map_err(|e| format!("--block-time: {e}"))?;
                if time.is_zero() {
                    return Err("--block-time must be above 0".to_owned());
                }
                config.block_time = Some(time);
            }
            "--help" | "-h" => return Err(usage()),
            other => port = other.parse().map_err(|e| format!("port {other:?}: {e}"))?,
        }
    }
    Ok((port, config))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (port, config) = parse_args()?;
    let node = Node::open(config)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{}", rpc::banner(&node, listener.local_addr()?));
    if let Some(every) = node.block_time() {
        println!("Block time: {every:?}");
    }
    println!(
        "Head: block {}{}",
        node.head().header.number,
        if node.is_ephemeral() {
            " (ephemeral: nothing is kept at exit)"
        } else {
            ""
        }
    );
    let service = Arc::new(Rpc::new(node, RpcConfig::default()));
    // Runs until the process is interrupted.
    serve(listener, service, std::future::pending()).await?;
    Ok(())
}
