//! The forwarding tests against a real NATS server, in one test binary: each
//! file is a module, so async-nats and tokio are compiled and linked once
//! for all of them, not once per file. Each test starts servers of its own
//! on free ports, so the tests may run in parallel.

#[path = "common/client.rs"]
mod client;
mod common;

mod cluster;
mod import;
mod lost;
mod replay;
mod restart;
