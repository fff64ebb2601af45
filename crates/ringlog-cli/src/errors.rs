//! Turning errors into the one line the CLI prints.

/// `e` and every error in its `source()` chain, joined with `": "`, so a
/// message always ends with the OS error that caused it (for example
/// `I/O error: list directory J: No such file or directory (os error 2)`):
/// the library's [`ringlog::error_chain`], which the pipeline and the
/// forwarder use too.
pub(crate) use ringlog::error_chain as chain;

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("list directory J")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_ends_with_the_os_error() {
        let e = Outer(std::io::Error::from_raw_os_error(2));
        let line = chain(&e);
        assert!(line.starts_with("list directory J: "), "{line}");
        assert!(line.ends_with("(os error 2)"), "{line}");
    }
}
