//! The agent's Azure ML setup script. STUB (issue 15).

/// The creation/startup script, installing the binary from `from` (a URL or a path).
pub fn script(_from: Option<&str>) -> String {
    String::new()
}
