//! Forwarding a journal into NATS JetStream: `ringlog_forward::Forwarder`
//! against a plain `async-nats` publish loop with the same window of
//! unacknowledged publishes, in the same run.
//!
//! Records of 64 B and 1 KiB from 4 producers (200,000 records, 20,000
//! with `--quick`; a fifth of that to the one-node server, bound by its
//! fsync per message), to a one-node server and to a three-node cluster
//! (R3 stream), both started by the scenario on 127.0.0.1 with
//! `sync_interval: always`, their stores under the work directory. The
//! forwarder reads the journal (synced), publishes, and keeps its cursor,
//! in relaxed order (`Ringlog-Record` and `Nats-Msg-Id`) and in strict
//! order (`Ringlog-Record` and `Nats-Expected-Last-Sequence`), the latter
//! with every publish acknowledged and in fast-ingest batches (the
//! default on a stream it creates). The plain
//! loop publishes the same payloads from memory, with no headers and with
//! each order's headers, so the server's cost of headers is told apart
//! from the forwarder's own. On the three-node cluster two more loops take
//! that cost apart: `Nats-Msg-Id` alone, and the five headers of earlier
//! versions (the one-node server is bound by its fsync per message, where
//! headers cost little). Two batch loops publish the same payloads in one
//! fast-ingest batch, with no headers and with strict order's, the peers
//! of the batched forwarder. Records per second from the first publish to the
//! last acknowledgement; each run uses a fresh stream, deleted afterwards,
//! and is checked to have every record acknowledged. Without
//! `nats-server` on PATH the scenario prints why and is skipped.

use crate::bench::{Bench, Case, Measured, Role, Unit};
use crate::check::CheckError;
use async_nats::jetstream;
use futures_util::stream::{FuturesOrdered, StreamExt};
use ringlog::journal::{Journal, JournalOptions};
use ringlog_forward::{ForwardOptions, Forwarder, Order, StreamSpec};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PRODUCERS: u32 = 4;
const WINDOW: usize = 1024;

fn nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Servers killed on drop.
struct Servers {
    children: Vec<Child>,
    urls: String,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(bin: &Path, dir: &Path, n: usize) -> Result<Servers, CheckError> {
    let err = |e: std::io::Error| CheckError::new(format!("start nats-server: {e}"));
    let ports: Vec<(u16, u16)> = (0..n)
        .map(|_| Ok((free_port()?, free_port()?)))
        .collect::<std::io::Result<_>>()
        .map_err(err)?;
    let mut servers = Servers {
        children: Vec::new(),
        urls: ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{}", p.0))
            .collect::<Vec<_>>()
            .join(","),
    };
    for (i, &(client, route)) in ports.iter().enumerate() {
        let store = dir.join(format!("n{i}"));
        std::fs::create_dir_all(&store).map_err(err)?;
        let mut text = format!(
            "server_name: n{i}\nlisten: 127.0.0.1:{client}\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
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
                "cluster {{\n  name: bench\n  listen: 127.0.0.1:{route}\n  routes: [{}]\n}}\n",
                routes.join(", ")
            ));
        }
        let config = dir.join(format!("n{i}.conf"));
        std::fs::write(&config, text).map_err(err)?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(err)?;
        servers.children.push(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            if Instant::now() > deadline {
                return Err(CheckError::new(format!("nats-server n{i} did not listen")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(servers)
}

fn payload(size: usize, p: u32, seq: u64) -> Vec<u8> {
    let mut v = vec![b'a' + (p as u8 % 26); size];
    v[..8].copy_from_slice(&seq.to_le_bytes());
    v
}

fn build(dir: &Path, size: usize, per: u64) -> Result<(), CheckError> {
    let err = |e: ringlog::journal::JournalError| CheckError::new(format!("journal: {e}"));
    let mut j = Journal::open(dir, JournalOptions::default()).map_err(err)?;
    for seq in 0..per {
        for p in 1..=PRODUCERS {
            j.append(p, seq, seq, &payload(size, p, seq)).map_err(err)?;
        }
    }
    j.sync().map_err(err)?;
    Ok(())
}

async fn fresh_stream(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
) -> Result<(), CheckError> {
    fresh_stream_with(js, name, replicas, false).await
}

async fn fresh_stream_with(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
    batched: bool,
) -> Result<(), CheckError> {
    let _ = js.delete_stream(name).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = js
            .create_stream(jetstream::stream::Config {
                name: name.to_owned(),
                subjects: vec![format!("{name}.>")],
                num_replicas: replicas,
                allow_batch_publish: batched,
                ..Default::default()
            })
            .await;
        match r {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(CheckError::new(format!("create stream {name}: {e}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Messages in the stream `name`.
async fn stream_messages(js: &jetstream::Context, name: &str) -> Result<u64, CheckError> {
    let mut stream = js
        .get_stream(name)
        .await
        .map_err(|e| CheckError::new(format!("stream {name}: {e}")))?;
    let info = stream
        .info()
        .await
        .map_err(|e| CheckError::new(format!("stream {name}: {e}")))?;
    Ok(info.state.messages)
}

/// A publish acknowledgement being waited for.
type AckFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
            > + Send,
    >,
>;

/// The headers a plain loop sends with each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Headers {
    None,
    /// The forwarder's in relaxed order: `Ringlog-Record` and a unique
    /// `Nats-Msg-Id`.
    Relaxed,
    /// The forwarder's in strict order: `Ringlog-Record` and the right
    /// `Nats-Expected-Last-Sequence`.
    Strict,
    /// A unique `Nats-Msg-Id` and nothing else.
    MsgIdOnly,
    /// Earlier versions': four `Ringlog-*` headers and `Nats-Msg-Id`.
    Legacy,
}

impl Headers {
    fn describe(self) -> &'static str {
        match self {
            Headers::None => "async-nats publish loop (memory, no headers)",
            Headers::Relaxed => {
                "async-nats publish loop (memory, relaxed order's Ringlog-Record and Nats-Msg-Id)"
            }
            Headers::Strict => {
                "async-nats publish loop (memory, strict order's Ringlog-Record and Nats-Expected-Last-Sequence)"
            }
            Headers::MsgIdOnly => "async-nats publish loop (memory, Nats-Msg-Id only)",
            Headers::Legacy => {
                "async-nats publish loop (memory, the four headers of earlier versions and Nats-Msg-Id)"
            }
        }
    }
}

/// The journal's records as (subject, payload), in its order.
fn messages(name: &str, size: usize, per: u64) -> Vec<(String, bytes::Bytes)> {
    (0..per)
        .flat_map(|seq| {
            (1..=PRODUCERS).map(move |p| (format!("{name}.{p}"), payload(size, p, seq).into()))
        })
        .collect()
}

async fn plain_loop(
    js: &jetstream::Context,
    name: &str,
    size: usize,
    per: u64,
    headers: Headers,
) -> Result<Measured, CheckError> {
    let payloads = messages(name, size, per);
    let t = Instant::now();
    let mut acks: FuturesOrdered<AckFuture> = FuturesOrdered::new();
    let mut acked = 0u64;
    for (subject, body) in payloads {
        if acks.len() >= WINDOW {
            if let Some(r) = acks.next().await {
                r.map_err(|e| CheckError::new(format!("ack: {e}")))?;
                acked += 1;
            }
        }
        // Unique per message: the publishes so far.
        let n = acks.len() as u64 + acked;
        let mut h = async_nats::HeaderMap::new();
        // The forwarder's values, of the same shape.
        let record = || {
            ringlog_forward::RecordHeaders {
                producer: 1,
                seq: n,
                timestamp: 1_700_000_000_000_000_000,
                crc: 0x1234_5678,
            }
            .value()
        };
        match headers {
            Headers::None => {}
            Headers::Relaxed => {
                h.insert(ringlog_forward::HEADER_RECORD, record().as_str());
                h.insert("Nats-Msg-Id", format!("{subject}-{n}").as_str());
            }
            Headers::Strict => {
                h.insert(ringlog_forward::HEADER_RECORD, record().as_str());
                // A fresh stream, one publisher: message n follows n.
                h.insert("Nats-Expected-Last-Sequence", n.to_string().as_str());
            }
            Headers::MsgIdOnly => h.insert("Nats-Msg-Id", format!("{subject}-{n}").as_str()),
            Headers::Legacy => {
                h.insert(ringlog_forward::HEADER_PRODUCER, "1");
                h.insert(ringlog_forward::HEADER_SEQ, n.to_string().as_str());
                h.insert(ringlog_forward::HEADER_TIMESTAMP, "1700000000000000000");
                h.insert(ringlog_forward::HEADER_CRC, "0x12345678");
                h.insert("Nats-Msg-Id", format!("{subject}-{n}").as_str());
            }
        }
        let fut = if headers == Headers::None {
            js.publish(subject, body).await
        } else {
            js.publish_with_headers(subject, h, body).await
        };
        let fut = fut.map_err(|e| CheckError::new(format!("publish: {e}")))?;
        acks.push_back(Box::pin(std::future::IntoFuture::into_future(fut)));
    }
    while let Some(r) = acks.next().await {
        r.map_err(|e| CheckError::new(format!("ack: {e}")))?;
        acked += 1;
    }
    let elapsed = t.elapsed();
    let want = per * u64::from(PRODUCERS);
    if acked != want {
        return Err(CheckError::new(format!("{acked} acknowledged of {want}")));
    }
    Ok(Measured::rate(want, elapsed))
}

/// The same in one fast-ingest batch (JetStream 2.14, `allow_batched`):
/// every message a publish whose reply subject names the batch and the
/// message's place in it, one flow acknowledgement per 500 messages, the
/// window counted in messages not acknowledged, and the batch's end
/// answered with how many of its messages were stored.
async fn batch_loop(
    client: &async_nats::Client,
    name: &str,
    size: usize,
    per: u64,
    headers: Headers,
) -> Result<Measured, CheckError> {
    let e = |what: &str, x: String| CheckError::new(format!("{what}: {x}"));
    let payloads = messages(name, size, per);
    let inbox = client.new_inbox();
    let batch = "B1";
    let mut sub = client
        .subscribe(format!("{inbox}.>"))
        .await
        .map_err(|x| e("subscribe", x.to_string()))?;
    let t = Instant::now();
    let mut persisted = 0u64;
    let mut final_count = None;
    let total = payloads.len() as u64;
    // Flow acknowledgements ({"type":"ack","seq":n}: messages 1 to n
    // stored), and the final one ({"stream":…,"seq":…,"count":n}).
    let handle = |m: async_nats::Message,
                  persisted: &mut u64,
                  fin: &mut Option<u64>|
     -> Result<(), CheckError> {
        let v: serde_json::Value =
            serde_json::from_slice(&m.payload).map_err(|x| e("json", x.to_string()))?;
        match v.get("type").and_then(|t| t.as_str()) {
            Some("ack") => *persisted = (*persisted).max(v["seq"].as_u64().unwrap_or(0)),
            Some(other) => return Err(e("batch", format!("{other}: {v}"))),
            None => {
                if v.get("error").is_some() {
                    return Err(e("batch", v.to_string()));
                }
                *fin = v["count"].as_u64();
            }
        }
        Ok(())
    };
    for (i, (subject, body)) in payloads.into_iter().enumerate() {
        let seq = i as u64 + 1;
        while seq - persisted > WINDOW as u64 {
            let m = sub.next().await.ok_or_else(|| e("sub", "closed".into()))?;
            handle(m, &mut persisted, &mut final_count)?;
        }
        let op = if seq == 1 { 0 } else { 1 };
        let reply = format!("{inbox}.{batch}.500.fail.{seq}.{op}.$FI");
        let mut h = async_nats::HeaderMap::new();
        let record = ringlog_forward::RecordHeaders {
            producer: 1,
            seq,
            timestamp: 1_700_000_000_000_000_000,
            crc: 0x1234_5678,
        }
        .value();
        if headers == Headers::Strict {
            h.insert(ringlog_forward::HEADER_RECORD, record.as_str());
            // A fresh stream, one publisher: message n follows n - 1.
            h.insert(
                "Nats-Expected-Last-Sequence",
                (seq - 1).to_string().as_str(),
            );
        }
        let r = if headers == Headers::None {
            client.publish_with_reply(subject, reply, body).await
        } else {
            client
                .publish_with_reply_and_headers(subject, reply, h, body)
                .await
        };
        r.map_err(|x| e("publish", x.to_string()))?;
    }
    let reply = format!("{inbox}.{batch}.500.fail.{}.3.$FI", total + 1);
    client
        .publish_with_reply(format!("{name}.1"), reply, bytes::Bytes::new())
        .await
        .map_err(|x| e("commit", x.to_string()))?;
    while final_count.is_none() {
        let m = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .map_err(|_| e("commit", format!("no pub ack, persisted {persisted}")))?
            .ok_or_else(|| e("sub", "closed".into()))?;
        handle(m, &mut persisted, &mut final_count)?;
    }
    let elapsed = t.elapsed();
    if final_count != Some(total) {
        return Err(e("batch", format!("{final_count:?} of {total}")));
    }
    Ok(Measured::rate(total, elapsed))
}

/// Runs every case of the scenario.
pub fn run(b: &mut Bench) {
    b.scenario("forward");
    let Some(bin) = nats_server() else {
        b.note("forward: skipped: nats-server is not on PATH (ci/nats.sh installs it)");
        return;
    };
    let records = b.settings.size(200_000, 20_000, 400);
    let root = b.settings.work_dir.join("forward");
    let _ = std::fs::remove_dir_all(&root);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            b.note(&format!("forward: skipped: no async runtime: {e}"));
            return;
        }
    };
    for nodes in [1usize, 3] {
        // One node fsyncs every message (about 4,000 a second here, the
        // same for every case): a fifth of the records says as much in a
        // fifth of the time.
        let per = if nodes == 1 { records / 5 } else { records }.div_ceil(u64::from(PRODUCERS));
        let servers = start(&bin, &root.join(format!("nats{nodes}")), nodes);
        let servers = match servers {
            Ok(s) => s,
            Err(e) => {
                b.failed(
                    Case::new(
                        format!("{nodes}-node"),
                        "start servers",
                        Role::Limit,
                        Unit::ItemsPerSec,
                        1,
                    ),
                    e.to_string(),
                );
                continue;
            }
        };
        let js = rt.block_on(async {
            ringlog_forward::connect(&servers.urls)
                .await
                .map(jetstream::new)
        });
        let js = match js {
            Ok(js) => js,
            Err(e) => {
                b.note(&format!("forward: connect: {e}"));
                continue;
            }
        };
        for size in [64usize, 1024] {
            let dir = root.join(format!("journal-{size}"));
            let _ = std::fs::remove_dir_all(&dir);
            if let Err(e) = build(&dir, size, per) {
                b.note(&format!("forward: {e}"));
                continue;
            }
            let group = format!(
                "{} records of {size} B to {nodes} node{} (R{nodes}), window {WINDOW}",
                per * u64::from(PRODUCERS),
                if nodes == 1 { "" } else { "s" }
            );
            let mut n = 0u32;
            for (order, batched, what) in [
                (
                    Order::Relaxed,
                    false,
                    "ringlog_forward::Forwarder, relaxed order (journal, synced, headers, cursor)",
                ),
                (
                    Order::Strict,
                    false,
                    "ringlog_forward::Forwarder, strict order, every publish acknowledged",
                ),
                (
                    Order::Strict,
                    true,
                    "ringlog_forward::Forwarder, strict order, fast-ingest batches (the default)",
                ),
            ] {
                b.case(
                    Case::new(&group, what, Role::Ringlog, Unit::ItemsPerSec, 2),
                    || {
                        n += 1;
                        let name = format!("FWD{n}");
                        rt.block_on(fresh_stream_with(&js, &name, nodes, batched))?;
                        let mut spec = StreamSpec::new(&name);
                        spec.subject_prefix = name.clone();
                        let mut o = ForwardOptions::new(&dir, servers.urls.clone(), spec);
                        o.window = WINDOW;
                        o.order = order;
                        o.batch = batched;
                        o.cursor_file = Some(root.join(format!("cursor-{name}")));
                        let t = Instant::now();
                        let r = rt.block_on(Forwarder::new(o).run());
                        let elapsed = t.elapsed();
                        let _ = std::fs::remove_file(root.join(format!("cursor-{name}")));
                        // What counts is that the stream holds every record
                        // once.
                        let stored = rt.block_on(stream_messages(&js, &name));
                        let _ = rt.block_on(js.delete_stream(&name));
                        let r = r.map_err(|e| CheckError::new(format!("forward: {e}")))?;
                        let want = per * u64::from(PRODUCERS);
                        let stored = stored?;
                        if stored != want
                            || r.metrics.forwarded != want
                            // A record stored with its acknowledgement lost
                            // (timed out) is acknowledged as a duplicate when
                            // published again in relaxed order, and settled
                            // from the stream's last message in strict order.
                            || r.metrics.acknowledged + r.metrics.already_in_stream != want
                            || r.metrics.batched != batched
                        {
                            return Err(CheckError::new(format!(
                                "{stored} messages in the stream, {:?}, {want} expected",
                                r.metrics
                            )));
                        }
                        let m = Measured::rate(want, elapsed);
                        // Records per batch, where there are batches.
                        Ok(if batched {
                            m.with_per_call(want, r.metrics.batches)
                        } else {
                            m
                        })
                    },
                );
            }
            let loops: &[Headers] = if nodes == 1 {
                &[Headers::None, Headers::Relaxed, Headers::Strict]
            } else {
                &[
                    Headers::None,
                    Headers::Relaxed,
                    Headers::Strict,
                    Headers::MsgIdOnly,
                    Headers::Legacy,
                ]
            };
            for &headers in loops {
                b.case(
                    Case::new(&group, headers.describe(), Role::Peer, Unit::ItemsPerSec, 2),
                    || {
                        n += 1;
                        let name = format!("PLAIN{n}");
                        rt.block_on(fresh_stream(&js, &name, nodes))?;
                        let r = rt.block_on(plain_loop(&js, &name, size, per, headers));
                        let _ = rt.block_on(js.delete_stream(&name));
                        r
                    },
                );
            }
            for headers in [Headers::None, Headers::Strict] {
                let what = match headers {
                    Headers::None => {
                        "async-nats batch loop (memory, no headers, fast-ingest batch)"
                    }
                    _ => {
                        "async-nats batch loop (memory, strict order's headers, fast-ingest batch)"
                    }
                };
                b.case(
                    Case::new(&group, what, Role::Peer, Unit::ItemsPerSec, 2),
                    || {
                        n += 1;
                        let name = format!("BATCH{n}");
                        rt.block_on(fresh_stream_with(&js, &name, nodes, true))?;
                        let r = rt.block_on(batch_loop(&js.client(), &name, size, per, headers));
                        let _ = rt.block_on(js.delete_stream(&name));
                        r
                    },
                );
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        drop(servers);
    }
    let _ = std::fs::remove_dir_all(&root);
}
