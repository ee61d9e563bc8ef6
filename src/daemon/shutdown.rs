//! OS signals: SIGINT and SIGTERM both mean "stop".

/// Resolves at the first SIGINT or SIGTERM. If the handlers cannot be installed, it never
/// resolves on its own: the process can still be killed.
pub async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %crate::engine::text::chain(&e), "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                tracing::warn!(error = %crate::engine::text::chain(&e), "cannot listen for SIGINT");
                std::future::pending::<()>().await;
            }
        }
        () = term => {}
    }
}

/// Exit status when a second signal cuts the drain short (128 + SIGINT).
pub const EXIT_FORCED: i32 = 130;

/// A token cancelled at the first SIGINT or SIGTERM. A second signal ends the process at
/// once: the user asked twice, and the store is crash-safe by design.
pub fn install() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let first = token.clone();
    tokio::spawn(async move {
        signal().await;
        tracing::info!("shutting down (a second signal exits at once)");
        first.cancel();
        signal().await;
        tracing::warn!("second signal: exiting now");
        #[expect(clippy::exit, reason = "the documented behaviour of a second signal")]
        std::process::exit(EXIT_FORCED);
    });
    token
}
