//! Text of the Azure boundary made safe to keep, log and show: bounded in length, cut on
//! character boundaries, control characters escaped.
//!
//! A leaf: errors, wire shapes and names all use it, and it uses none of them.

use std::error::Error;

/// Maximum number of body characters kept in errors.
pub const BODY_SNIPPET_CHARS: usize = 200;
/// Most characters of an ARM-provided text (error code, message, target) kept or shown: a
/// 5 MB message must not become a 5 MB log line.
pub const ARM_TEXT_CHARS: usize = 2048;

/// At most [`BODY_SNIPPET_CHARS`] characters of `text`, cut on a char boundary, with `…` when
/// cut.
pub fn snippet(text: &str) -> String {
    truncate_chars(text, BODY_SNIPPET_CHARS)
}

/// At most `max` characters of `text`, then `… [N more characters]` when cut.
pub(crate) fn cut_counted(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => {
            let rest = text[idx..].chars().count();
            format!("{}… [{rest} more characters]", &text[..idx])
        }
        None => text.to_owned(),
    }
}

/// `text` made safe to print on a terminal or in a one-line log record: control characters
/// (ESC, CR, LF, DEL, C1 and the like) are written as escapes (`\u{1b}`, `\n`), and the result
/// is cut to `max` characters with a marker saying how much was left out.
pub fn display_text(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (shown, (i, ch)) in text.char_indices().enumerate() {
        if shown >= max {
            out.push_str(&cut_counted(&text[i..], 0));
            break;
        }
        if ch.is_control()
            || matches!(ch, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

/// At most `max` characters of `text`, with `…` appended when cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_owned(),
    }
}

/// Longest error chain put in one log line, in bytes (a 5 MB ARM message was one line).
const MAX_CHAIN_BYTES: usize = 2048;

/// An error and every source under it on one line, `top: cause: root cause`: the one
/// rendering of an error for logs, the audit log's `error` column and the CLI (`{e:#}` of a
/// `thiserror` type is only the top line, which hid "connection refused" and `AADSTS…`
/// codes). A cause whose text its parent already shows is left out (azure_core and reqwest
/// repeat their source's message now and then). Control characters are escaped, as ARM's text
/// already is in `AzureError`'s own message, so that one error stays one line; the whole is
/// cut at `MAX_CHAIN_BYTES` (2 KiB).
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = escaped(&err.to_string());
    let mut source = err.source();
    while let Some(s) = source {
        let text = escaped(&s.to_string());
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    if out.len() > MAX_CHAIN_BYTES {
        let mut end = MAX_CHAIN_BYTES;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// `text` with control characters (and the invisible line and direction marks) written as
/// escapes (`\n`, `\u{1b}`), as [`display_text`] writes ARM's text: text
/// that is already escaped comes back unchanged, so a cause its parent quotes is still found.
fn escaped(text: &str) -> String {
    // The same escaping as ARM's text, with no length limit (the chain has its own).
    display_text(text, usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_joins_sources_and_is_bounded() {
        #[derive(Debug, thiserror::Error)]
        #[error("list_computes: connection failed talking to Azure Resource Manager")]
        struct Top(#[source] std::io::Error);
        let e = Top(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ));
        assert_eq!(
            chain(&e),
            "list_computes: connection failed talking to Azure Resource Manager: Connection refused (os error 111)"
        );
        let long = Top(std::io::Error::other("é".repeat(5_000)));
        let text = chain(&long);
        assert!(
            text.len() <= MAX_CHAIN_BYTES + '…'.len_utf8(),
            "{}",
            text.len()
        );
        assert!(text.ends_with('…'));
    }

    #[test]
    fn chain_renders_every_level_once_and_on_one_line() {
        #[derive(Debug, thiserror::Error)]
        #[error("start: connection failed talking to Azure Resource Manager")]
        struct Top(#[source] Middle);
        #[derive(Debug, thiserror::Error)]
        #[error("error sending request")]
        struct Middle(#[source] std::io::Error);
        let e = Top(Middle(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        )));
        assert_eq!(
            chain(&e),
            "start: connection failed talking to Azure Resource Manager: error sending request: \
             Connection refused (os error 111)"
        );

        // A cause its parent already quotes is said once, escaped or not.
        #[derive(Debug, thiserror::Error)]
        #[error("token request failed: {0}")]
        struct Quotes(#[source] std::io::Error);
        let e = Quotes(std::io::Error::other(
            "AADSTS7000215\nInvalid secret\u{1b}[2J",
        ));
        let text = chain(&e);
        assert_eq!(
            text,
            "token request failed: AADSTS7000215\\nInvalid secret\\u{1b}[2J"
        );
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }
}
