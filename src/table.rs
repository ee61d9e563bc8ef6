//! Plain-text tables for command output: columns padded to their widest cell, two spaces
//! apart, no trailing blanks.

/// Render `header` and `rows` (each row as many cells as the header).
pub fn render<S: AsRef<str>>(header: &[&str], rows: &[Vec<S>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.as_ref().chars().count());
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
    for row in rows {
        line(row.iter().map(AsRef::as_ref).collect());
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
}
