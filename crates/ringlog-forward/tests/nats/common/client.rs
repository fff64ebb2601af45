//! The client side the forwarder's tests share: a runtime and a look at a
//! stream. Apart from `mod.rs` because the CLI's tests include that file
//! without a tokio dependency.
#![allow(dead_code, unreachable_pub)]

use async_nats::jetstream;
use ringlog_forward::connect;

/// A two-thread runtime for the tests' async calls.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// How many messages `stream` on `server` holds.
pub async fn messages(server: &str, stream: &str) -> u64 {
    let js = jetstream::new(connect(server).await.unwrap());
    js.get_stream(stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}
