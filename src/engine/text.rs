//! Text of the Azure boundary made safe to keep, log and show: bounded in length, cut on
//! character boundaries, control characters escaped.
//!
//! A leaf: errors, wire shapes and names all use it, and it uses none of them.

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
