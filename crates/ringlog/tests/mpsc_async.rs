//! The async API on a real executor (tokio, multi-threaded): tasks as
//! producers and consumer, and cancellation that loses and duplicates
//! nothing.
#![cfg(not(loom))]
#![cfg_attr(miri, allow(unused))]

use ringlog::mpsc::{self, Policy};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(miri, ignore = "tokio runtime and timers")]
async fn tasks_send_and_recv_in_order() {
    const PER: u64 = 20_000;
    let (tx, mut rx) = mpsc::channel::<u64>(64, Policy::BLOCK).unwrap();
    let mut tasks = Vec::new();
    for p in 0..4u64 {
        let mut tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER {
                tx.send(p << 32 | i).await.unwrap();
            }
        }));
    }
    drop(tx);
    let consumer = tokio::spawn(async move {
        let mut next = [0u64; 4];
        let mut out = Vec::new();
        loop {
            out.clear();
            if rx.take_batch_async(100, &mut out).await == 0 {
                break;
            }
            for v in &out {
                let (p, i) = ((v >> 32) as usize, v & 0xffff_ffff);
                assert_eq!(i, next[p]);
                next[p] += 1;
            }
        }
        next
    });
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("producer hung")
            .unwrap();
    }
    let next = tokio::time::timeout(Duration::from_secs(60), consumer)
        .await
        .expect("consumer hung")
        .unwrap();
    assert_eq!(next, [PER; 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(miri, ignore = "tokio runtime and timers")]
async fn cancelled_futures_lose_and_duplicate_nothing() {
    const N: u64 = 2_000;
    let (mut tx, mut rx) = mpsc::channel::<u64>(4, Policy::BLOCK).unwrap();
    let producer = tokio::spawn(async move {
        let mut i = 0;
        let mut cancelled = 0u64;
        while i < N {
            // A short timeout cancels many sends while the ring is full; a
            // cancelled send never entered the ring, so it is retried.
            match tokio::time::timeout(Duration::from_micros(50), tx.send(i)).await {
                Ok(r) => {
                    r.unwrap();
                    i += 1;
                }
                Err(_) => cancelled += 1,
            }
        }
        cancelled
    });
    let mut got = Vec::new();
    let mut cancelled_recv = 0u64;
    loop {
        match tokio::time::timeout(Duration::from_micros(30), rx.recv()).await {
            Ok(Some(v)) => got.push(v),
            Ok(None) => break,
            Err(_) => cancelled_recv += 1,
        }
        if got.len() % 64 == 0 {
            tokio::time::sleep(Duration::from_micros(200)).await; // let the ring fill
        }
    }
    let cancelled_send = tokio::time::timeout(Duration::from_secs(60), producer)
        .await
        .expect("producer hung")
        .unwrap();
    assert_eq!(
        got,
        (0..N).collect::<Vec<_>>(),
        "nothing lost or duplicated"
    );
    eprintln!("cancelled sends {cancelled_send}, cancelled recvs {cancelled_recv}");
}
