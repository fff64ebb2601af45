//! Creating or checking the stream records are forwarded to.

use std::time::Duration;

use async_nats::jetstream::{self, stream::StorageType};

use crate::error::ForwardError;

/// The stream a forwarder writes to, and what it must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Stream name.
    pub name: String,
    /// Subject prefix `P`: records go to `P.<producer>`; the stream must
    /// take `P.>`.
    pub subject_prefix: String,
    /// Replicas. On creation 1 when `None`; on an existing stream, checked
    /// only when given.
    pub replicas: Option<usize>,
    /// Deduplication window (on `Nats-Msg-Id`). On creation the server's
    /// default (2 minutes) when `None`; checked only when given.
    pub duplicate_window: Option<Duration>,
    /// Create the stream when it does not exist.
    pub create: bool,
}

impl StreamSpec {
    /// A spec with the defaults: prefix `ringlog`, created when missing.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            subject_prefix: "ringlog".to_owned(),
            replicas: None,
            duplicate_window: None,
            create: true,
        }
    }

    /// The subject filter the stream must take.
    pub fn filter(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// Checks the names before anything is sent.
    pub(crate) fn validate(&self) -> Result<(), ForwardError> {
        let token_ok = |s: &str| {
            !s.is_empty()
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '*' | '>' | '.'))
        };
        if !token_ok(&self.name) || self.name.contains(['/', '\\']) {
            return Err(ForwardError::InvalidOption(format!(
                "stream name {:?}: must be non-empty, without spaces, '.', '*', '>', '/', '\\'",
                self.name
            )));
        }
        if self.subject_prefix.is_empty() || self.subject_prefix.split('.').any(|t| !token_ok(t)) {
            return Err(ForwardError::InvalidOption(format!(
                "subject prefix {:?}: must be dot-separated non-empty tokens without spaces, '*', '>'",
                self.subject_prefix
            )));
        }
        if self.replicas.is_some_and(|r| !(1..=5).contains(&r)) {
            return Err(ForwardError::InvalidOption(
                "replicas must be 1 to 5".to_owned(),
            ));
        }
        if self.duplicate_window.is_some_and(|d| d.is_zero()) {
            return Err(ForwardError::InvalidOption(
                "the duplicate window must be longer than 0".to_owned(),
            ));
        }
        Ok(())
    }
}

fn api<'a>(stream: &'a str, op: &'static str) -> impl FnOnce(NatsBox) -> ForwardError + 'a {
    move |source| ForwardError::Stream {
        stream: stream.to_owned(),
        op,
        source,
    }
}

type NatsBox = crate::error::NatsError;

/// Creates the stream or checks that the existing one matches `spec`:
/// takes `P.>`, has the replicas and duplicate window asked for.
///
/// # Errors
///
/// [`ForwardError::StreamConflict`] naming what differs,
/// [`ForwardError::Stream`] when the API fails.
pub async fn ensure_stream(
    js: &jetstream::Context,
    spec: &StreamSpec,
) -> Result<jetstream::stream::Stream, ForwardError> {
    ensure_stream_marked(js, spec, false).await
}

/// The stream metadata key saying that its only publisher is a forwarder
/// in strict order ([`crate::Order::Auto`] follows it).
pub const ORDER_METADATA: &str = "ringlog-order";

/// [`ensure_stream`], and when `strict` and the stream is created, marked
/// with [`ORDER_METADATA`] `strict` and allowing fast-ingest batches
/// (`allow_batched`).
pub(crate) async fn ensure_stream_marked(
    js: &jetstream::Context,
    spec: &StreamSpec,
    strict: bool,
) -> Result<jetstream::stream::Stream, ForwardError> {
    spec.validate()?;
    let existing = match js.get_stream(&spec.name).await {
        Ok(s) => Some(s),
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            None
        }
        Err(e) => return Err(api(&spec.name, "look up")(Box::new(e))),
    };
    let Some(stream) = existing else {
        if !spec.create {
            return Err(ForwardError::StreamConflict {
                stream: spec.name.clone(),
                what: "it does not exist (and creating it was not asked for)".to_owned(),
            });
        }
        let config = jetstream::stream::Config {
            name: spec.name.clone(),
            subjects: vec![spec.filter()],
            num_replicas: spec.replicas.unwrap_or(1),
            duplicate_window: spec.duplicate_window.unwrap_or(Duration::from_secs(120)),
            storage: StorageType::File,
            // Strict order publishes in fast-ingest batches where the stream
            // allows them (`ForwardOptions::batch`).
            allow_batch_publish: strict,
            metadata: if strict {
                [(ORDER_METADATA.to_owned(), "strict".to_owned())].into()
            } else {
                Default::default()
            },
            ..Default::default()
        };
        return js
            .create_stream(config)
            .await
            .map_err(|e| api(&spec.name, "create")(Box::new(e)));
    };
    let config = &stream.cached_info().config;
    let filter = spec.filter();
    let covers = config.subjects.iter().any(|s| {
        s == ">" || *s == filter || {
            // `a.>` covers `a.b.>`.
            s.strip_suffix('>')
                .is_some_and(|head| filter.starts_with(head))
        }
    });
    let mut what = Vec::new();
    if !covers {
        what.push(format!(
            "its subjects {:?} do not take {filter}",
            config.subjects
        ));
    }
    if let Some(r) = spec.replicas {
        if config.num_replicas != r {
            what.push(format!(
                "it has {} replicas, {r} asked for",
                config.num_replicas
            ));
        }
    }
    if let Some(d) = spec.duplicate_window {
        if config.duplicate_window != d {
            what.push(format!(
                "its duplicate window is {:?}, {d:?} asked for",
                config.duplicate_window
            ));
        }
    }
    if what.is_empty() {
        Ok(stream)
    } else {
        Err(ForwardError::StreamConflict {
            stream: spec.name.clone(),
            what: what.join("; "),
        })
    }
}
