//! Turning errors into the one line the CLI prints.

use std::error::Error;

/// `e` and every error in its `source()` chain, joined with `": "`, so a
/// message always ends with the OS error that caused it (for example
/// `I/O error: list directory J: No such file or directory (os error 2)`).
/// A source whose text the previous message already ends with is not
/// repeated.
pub(crate) fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

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
