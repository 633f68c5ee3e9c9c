//! The real `datacloud` binary: help on every command, and `deploy` against a devchain served
//! in-process over HTTP on 127.0.0.1:0.

use std::{process::Command, sync::Arc};

use datacloud_devchain::{Address, ChainConfig, Node, Rpc, RpcConfig, serve};
use tokio_util::sync::CancellationToken;

fn datacloud() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_datacloud"));
    // The test's own environment must not configure the binary.
    for (key, _) in std::env::vars() {
        if key.starts_with("DATACLOUD_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn help_describes_every_command() {
    for (args, expected) in [
        (&["--help"][..], "Deploy, activate and initialize"),
        (&["devchain", "--help"][..], "--accounts"),
        (&["deploy", "--help"][..], "--rpc"),
        (&["devchain", "--help"][..], "--block-time"),
        (&["seller", "--help"][..], "onboard"),
        (&["seller", "onboard", "--help"][..], "--templates"),
        (&["seller", "run", "--help"][..], "--min-cohort"),
        (&["seller", "run", "--help"][..], "DATACLOUD_KEY_PASSPHRASE"),
        (&["seller", "onboard", "--help"][..], "--key-passphrase"),
        (&["buyer", "--help"][..], "refund"),
        (&["buyer", "order", "--help"][..], "--sql"),
        (&["buyer", "order", "--help"][..], "--param"),
        (&["query", "local", "--help"][..], "totals"),
        (&["buyer", "result", "--help"][..], "--wait"),
        (&["worker", "run", "--help"][..], "--work-dir"),
        (&["store", "serve", "--help"][..], "--writable"),
    ] {
        let output = datacloud().args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            stdout.contains(expected),
            "{args:?} help lacks {expected}:\n{stdout}"
        );
    }
    let output = datacloud().arg("no-such-command").output().unwrap();
    assert!(!output.status.success());
    // A malformed --param is refused before anything is sent, saying what is wrong.
    let output = datacloud()
        .args([
            "buyer",
            "order",
            "1",
            "--template",
            "histogram",
            "--param",
            "nope",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not KEY=VALUE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_writes_the_deployments_the_chain_has() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let rpc = Arc::new(Rpc::new(
        Node::new(ChainConfig::default(), 2).unwrap(),
        RpcConfig::default(),
    ));
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(serve(listener, rpc.clone(), async move {
        token.cancelled().await;
    }));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deployments.json");
    let output = tokio::task::spawn_blocking({
        let out = out.clone();
        let cwd = dir.path().to_path_buf();
        move || {
            datacloud()
                .args(["deploy", "--rpc", &url, "--json", "--out"])
                .arg(&out)
                .current_dir(cwd)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "deploy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(printed, written);
    assert_eq!(printed["chainId"], 412_346);
    for name in ["datasetRegistry", "proofManager", "queryMarket"] {
        let address: Address = printed[name].as_str().unwrap().parse().unwrap();
        // The chain itself has an activated Stylus program there.
        let code = rpc.with_node(|node| node.chain().code(address));
        assert!(
            code.starts_with(&[0xEF, 0xF0, 0x00]),
            "{name}: no program at {address}"
        );
    }
    stop.cancel();
}

#[cfg(unix)]
#[test]
fn devchain_serves_until_interrupted() {
    use std::io::{BufRead, BufReader};

    let mut child = datacloud()
        .args(["devchain", "--port", "0", "--accounts", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        banner.push_str(&line);
        if line.starts_with("Listening on") {
            break;
        }
        line.clear();
    }
    assert!(banner.contains("Chain ID: 412346"), "{banner}");
    assert!(banner.contains("(1) 0x"), "two accounts: {banner}");
    // Ctrl-C: a clean stop, not a kill.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "devchain exited with {status}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("devchain stopped"), "{rest}");
}

/// `--data-dir` and `--block-time`: the chain advances by itself, and a restart (even after
/// SIGKILL) resumes at the head it had.
#[cfg(unix)]
#[test]
fn devchain_mines_on_its_own_and_resumes_from_its_data_dir() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut child = datacloud()
            .args([
                "devchain",
                "--port",
                "0",
                "--accounts",
                "2",
                "--block-time",
                "0.1",
                "--data-dir",
            ])
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let url = loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "no banner");
            if let Some(rest) = line.trim().strip_prefix("Listening on ") {
                break format!("http://{rest}");
            }
        };
        // The reader stays alive: the devchain still writes to its stdout.
        (child, url, stdout)
    };
    let height = |url: &str| -> u64 {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            use alloy::providers::{Provider, ProviderBuilder};
            ProviderBuilder::new()
                .connect_http(url.parse().unwrap())
                .get_block_number()
                .await
                .unwrap()
        })
    };
    let (mut child, url, _out) = start();
    let first = height(&url);
    let started = std::time::Instant::now();
    let mined = loop {
        let now = height(&url);
        if now > first {
            break now;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no blocks without transactions: still {now} after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, url, _out) = start();
    let resumed = height(&url);
    assert!(resumed >= mined, "restarted at {resumed}, below {mined}");
    child.kill().unwrap();
    child.wait().unwrap();
    // Whoever started it stops reading its stdout: it keeps serving, and stops cleanly on
    // SIGTERM (its farewell line goes nowhere instead of panicking on the broken pipe).
    let (mut child, url, out) = start();
    drop(out);
    assert!(height(&url) >= resumed);
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "stopped with {status}");
}

/// The client key and the rows are sealed by default: without a passphrase (flag, environment
/// or file) `seller onboard` refuses before reading anything, unless told `--unsealed`; an
/// empty passphrase file is refused too.
#[test]
fn onboarding_refuses_to_write_the_data_unsealed_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let onboard = |extra: &[&str]| {
        datacloud()
            .current_dir(dir.path())
            .args([
                "seller",
                "onboard",
                "missing.csv",
                "--schema",
                "missing.toml",
                "--name",
                "bank",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = onboard(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no passphrase") && stderr.contains("--unsealed"),
        "{stderr}"
    );
    // Told to, it goes on (and stops at the missing CSV, the next thing it reads).
    let out = onboard(&["--unsealed"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !stderr.contains("no passphrase"),
        "{stderr}"
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let out = onboard(&["--key-passphrase-file", empty.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds no passphrase"), "{stderr}");
}
