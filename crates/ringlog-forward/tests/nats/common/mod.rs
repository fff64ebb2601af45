//! Real NATS servers for the tests: started on free 127.0.0.1 ports with
//! their store in a temporary directory, killed and removed on drop.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `nats-server` on PATH, or `None` (the caller skips with a message).
pub fn nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// Prints why the test is skipped when no server is installed.
pub fn server_or_skip(test: &str) -> Option<PathBuf> {
    let s = nats_server();
    if s.is_none() {
        eprintln!("{test}: skipped: nats-server is not on PATH (ci/nats.sh installs it)");
    }
    s
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// One server of a cluster.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub client_port: u16,
    pub config: PathBuf,
    child: Option<Child>,
}

/// One to three JetStream servers; `Drop` kills them (the temporary
/// directory holding their stores is removed by its owner afterwards).
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Starts `n` servers with `sync_interval: always` under `dir`.
    pub fn start(bin: &Path, dir: &Path, n: usize) -> Self {
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut nodes = Vec::new();
        for (i, &(client, route, http)) in ports.iter().enumerate() {
            let name = format!("n{i}");
            let store = dir.join(&name);
            std::fs::create_dir_all(&store).unwrap();
            let mut text = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{http}\n\
                 jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n  max_file_store: 1G\n  max_memory_store: 64M\n}}\n",
                store.display()
            );
            if n > 1 {
                let routes: Vec<String> = ports
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, p)| format!("nats-route://127.0.0.1:{}", p.1))
                    .collect();
                text.push_str(&format!(
                    "cluster {{\n  name: ringlog\n  listen: 127.0.0.1:{route}\n  routes: [{}]\n}}\n",
                    routes.join(", ")
                ));
            }
            let config = dir.join(format!("{name}.conf"));
            std::fs::write(&config, text).unwrap();
            nodes.push(Node {
                name,
                client_port: client,
                config,
                child: None,
            });
        }
        let mut c = Self {
            bin: bin.to_owned(),
            nodes,
        };
        for i in 0..n {
            c.restart(i);
        }
        c
    }

    /// The client URLs, comma-separated.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts node `i` (again) and waits until it takes connections.
    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", node.client_port)).is_err() {
            assert!(Instant::now() < deadline, "{} did not listen", node.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` of node `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The node named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
    }
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Appends records `from..from + per` of producers `1..=producers`, the
/// producers interleaved, timestamp `seq * 10`, payload [`payload`], and
/// syncs.
pub fn write_journal(
    dir: &Path,
    options: ringlog::journal::JournalOptions,
    producers: u32,
    per: u64,
    from: u64,
) {
    let mut j = ringlog::journal::Journal::open(dir, options).unwrap();
    for seq in from..from + per {
        for p in 1..=producers {
            j.append(p, seq, seq * 10, &payload(p, seq)).unwrap();
        }
    }
    j.sync().unwrap();
}

/// Pseudo-random payload bytes of record (producer, seq): 16 to 119 bytes.
pub fn payload(producer: u32, seq: u64) -> Vec<u8> {
    let mut x = (u64::from(producer) << 40) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let len = 16 + (x % 104) as usize;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
