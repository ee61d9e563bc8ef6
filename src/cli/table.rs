//! Plain-text tables for command output: columns padded to their widest cell, two spaces
//! apart, no trailing blanks.

/// Longest cell shown; the rest is cut with a marker.
const MAX_CELL_CHARS: usize = 512;

/// Render `header` and `rows` (each row as many cells as the header). Cells often hold text
/// from Azure: control characters are escaped, so no cell can move the cursor or add a line.
pub fn render<S: AsRef<str>>(header: &[&str], rows: &[Vec<S>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| crate::engine::text::display_text(c.as_ref(), MAX_CELL_CHARS))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn pads_to_widest_cell() {
        let out = super::render(&["A", "BB"], &[vec!["long", "x"], vec!["s", "yy"]]);
        assert_eq!(out, "A     BB\nlong  x\ns     yy\n");
    }

    #[test]
    fn control_characters_are_escaped() {
        let out = super::render(&["A"], &[vec!["x\u{1b}[2J\ny"]]);
        assert_eq!(out, "A\nx\\u{1b}[2J\\ny\n");
    }
}
