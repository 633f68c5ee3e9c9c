//! An anvil-like development node: `cargo run -p datacloud-devchain --example devchain -- [PORT]`
//! serves JSON-RPC on 127.0.0.1:PORT (default 8545) with the ten standard dev accounts, and
//! prints them at start. The `datacloud devchain` CLI will replace this.

use std::sync::Arc;

use datacloud_devchain::{ChainConfig, Node, Rpc, RpcConfig, rpc, serve};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 8545,
    };
    let node = Node::new(ChainConfig::default(), 10)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{}", rpc::banner(&node, listener.local_addr()?));
    let service = Arc::new(Rpc::new(node, RpcConfig::default()));
    // Runs until the process is interrupted.
    serve(listener, service, std::future::pending()).await?;
    Ok(())
}
