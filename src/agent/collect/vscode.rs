//! Connected VS Code windows: one extension host process (`--type=extensionHost`) per
//! attached window, run from the user's `~/.vscode-server` in either layout
//! (`bin/<commit>/…`, older; `cli/servers/Stable-<commit>/server/…`, newer). The server
//! itself lingers for hours after the last window closes, so it is not the probe
//! (AGENT.md 1.4; an inference, unverified on a compute instance).

use crate::agent::collect::User;
use crate::agent::collect::procs::Scan;
use crate::engine::activity::VscodeSeen;

/// Counts the user's extension host processes.
pub fn seen(scan: &Scan, user: &User) -> VscodeSeen {
    let server = user.home.join(".vscode-server");
    let server = server.to_string_lossy();
    let windows = scan
        .procs
        .values()
        .filter(|p| p.uid == user.uid)
        .filter(|p| {
            std::fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|c| is_extension_host(&c, &server))
        })
        .count();
    VscodeSeen {
        windows: u32::try_from(windows).unwrap_or(u32::MAX),
    }
}

/// A NUL-separated command line with `--type=extensionHost` and an argument under `server`.
fn is_extension_host(cmdline: &[u8], server: &str) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let prefix = format!("{server}/");
    args.contains(&&b"--type=extensionHost"[..])
        && args.iter().any(|a| a.starts_with(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_match_and_the_lingering_server_does_not() {
        let s = "/home/azureuser/.vscode-server";
        let old = b"/home/azureuser/.vscode-server/bin/abc/node\0/home/azureuser/.vscode-server/bin/abc/out/bootstrap-fork\0--type=extensionHost\0--transformURIs\0";
        let new = b"/home/azureuser/.vscode-server/cli/servers/Stable-abc/server/node\0--dns-result-order=ipv4first\0/home/azureuser/.vscode-server/cli/servers/Stable-abc/server/out/bootstrap-fork\0--type=extensionHost\0";
        let server = b"/home/azureuser/.vscode-server/cli/servers/Stable-abc/server/node\0/home/azureuser/.vscode-server/cli/servers/Stable-abc/server/out/server-main.js\0--connection-token=x\0";
        let elsewhere = b"/opt/node\0/opt/bootstrap-fork\0--type=extensionHost\0";
        assert!(is_extension_host(old, s));
        assert!(is_extension_host(new, s));
        assert!(!is_extension_host(server, s));
        assert!(!is_extension_host(elsewhere, s));
    }
}
