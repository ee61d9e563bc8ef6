//! The snooze socket: open to every local user (mode 0666), one JSON line in, one out. The
//! asker's uid comes from the kernel (`SO_PEERCRED`), never from the request, and becomes the
//! snooze's `by`.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::agent::snooze::{Answer, Ask, MAX_LINE, SOCKET_TIMEOUT};

/// Binds the socket at `path`: its directory is made if missing (0755, so users reach it), a
/// stale socket from a previous run is replaced, anything else there is an error.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; remove it or set snooze_socket",
            path.display()
        ),
        Err(_) => {}
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// The name of local user `uid` from `passwd` (the text of `/etc/passwd`), else `uid N`.
pub fn user_name(passwd: &str, uid: u32) -> String {
    passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id: u32 = f.nth(1)?.parse().ok()?;
            (id == uid && !name.is_empty()).then_some(name)
        })
        .next()
        .map_or_else(|| format!("uid {uid}"), str::to_owned)
}

/// Reads one request from `stream` and who sent it; `None` when the peer sent nothing usable
/// (answered with the reason).
pub async fn read_ask(stream: &mut UnixStream) -> anyhow::Result<(Ask, String)> {
    let uid = stream.peer_cred()?.uid();
    let passwd = tokio::fs::read_to_string("/etc/passwd")
        .await
        .unwrap_or_default();
    let by = user_name(&passwd, uid);
    let mut line = String::new();
    let mut reader = BufReader::new(&mut *stream).take(MAX_LINE as u64);
    tokio::time::timeout(SOCKET_TIMEOUT, reader.read_line(&mut line)).await??;
    let ask: Ask =
        serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("not a snooze request ({e})"))?;
    Ok((ask, by))
}

/// Writes the answer line.
pub async fn answer(stream: &mut UnixStream, answer: &Answer) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(answer)?;
    line.push('\n');
    tokio::time::timeout(SOCKET_TIMEOUT, stream.write_all(line.as_bytes())).await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_asker_is_named_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nazureuser:x:1000:1000::/home/azureuser:/bin/bash\nbad line\n";
        assert_eq!(user_name(passwd, 1000), "azureuser");
        assert_eq!(user_name(passwd, 0), "root");
        assert_eq!(user_name(passwd, 1234), "uid 1234");
    }
}
