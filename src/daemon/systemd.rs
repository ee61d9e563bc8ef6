//! systemd service notifications (`sd_notify`): readiness, watchdog pings, stopping.
//!
//! Written directly to `$NOTIFY_SOCKET` (a Unix datagram socket, possibly abstract) so no
//! C library is needed. Outside systemd every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A handle on the notification socket, if the process runs under systemd.
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Option<String>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// A notifier for this socket path (`@name` for an abstract socket) and watchdog timeout.
    pub fn new(socket: Option<String>, watchdog: Option<Duration>) -> Notifier {
        Notifier { socket, watchdog }
    }

    /// From `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (read once at start-up).
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&usec| usec > 0)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    /// How often to ping the watchdog (half its timeout), if systemd asked for pings.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    fn send(&self, state: &str) {
        let Some(path) = &self.socket else {
            return;
        };
        let result = UnixDatagram::unbound().and_then(|sock| {
            if let Some(name) = path.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                sock.send_to_addr(state.as_bytes(), &addr)
            } else {
                sock.send_to(state.as_bytes(), path)
            }
        });
        if let Err(e) = result {
            tracing::debug!(error = %crate::engine::text::chain(&e), state, "sd_notify failed");
        }
    }

    /// The service is up (first pass done).
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// The loop is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// Reloading the configuration.
    pub fn reloading(&self) {
        self.send("RELOADING=1");
    }

    /// Shutting down.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// A one-line status shown by `systemctl status`.
    pub fn status(&self, text: &str) {
        self.send(&format!("STATUS={text}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_states_to_the_socket_and_halves_the_watchdog() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let n = Notifier::new(
            Some(path.display().to_string()),
            Some(Duration::from_secs(30)),
        );
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(15)));
        let mut buf = [0u8; 64];
        for (send, want) in [
            (Notifier::ready as fn(&Notifier), "READY=1"),
            (Notifier::watchdog, "WATCHDOG=1"),
            (Notifier::reloading, "RELOADING=1"),
            (Notifier::stopping, "STOPPING=1"),
        ] {
            send(&n);
            let len = server.recv(&mut buf).unwrap();
            assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), want);
        }
        // Outside systemd: nothing to send to, nothing fails.
        Notifier::new(None, None).ready();
    }
}
