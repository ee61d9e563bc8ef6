//! Keeping retail prices fresh: the Azure Retail Prices API fetch (`GET
//! {endpoint}/api/retail/prices`, following `NextPageLink` on the same host) and the
//! daemon's refresher task, which fills the shared [`PriceBook`] for the (region, vm size)
//! pairs actually seen and writes the cache.
//!
//! The I/O side of `pricing`: the book, the page shapes and the cache format live there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::daemon::metrics::Metrics;
use crate::engine::pricing::{
    CACHE_FILE, PriceBook, PriceError, canonical_sku, filter_for, linux_hourly, parse_page,
};

/// Load `prices.json` of `state_dir` into `book`, if it is for the book's currency and
/// endpoint. A missing or unreadable cache is not an error: prices are fetched again.
pub fn load_cache(book: &mut PriceBook, state_dir: &Path) {
    let path = state_dir.join(CACHE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(source) => {
            let e = PriceError::CacheRead { path, source };
            tracing::warn!(error = %crate::engine::text::chain(&e), "ignoring the price cache");
            return;
        }
    };
    match book.apply_cache_text(&text) {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(path = %path.display(), "price cache is for another currency or endpoint; ignored")
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %crate::engine::text::chain(&e), "unreadable price cache; ignored")
        }
    }
}

/// Write the book's retail answers to `prices.json` (temporary file, then rename).
pub fn save_cache(book: &PriceBook, state_dir: &Path) -> Result<(), PriceError> {
    let path = state_dir.join(CACHE_FILE);
    let text = book.cache_text()?;
    let tmp = state_dir.join(format!("{CACHE_FILE}.tmp"));
    let write_err = |source| PriceError::CacheWrite {
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, text).map_err(write_err)?;
    std::fs::rename(&tmp, &path).map_err(write_err)?;
    Ok(())
}

/// Most pages one price query follows.
const MAX_PAGES: usize = 20;

/// Ask the API for the Linux pay-as-you-go price of `vm_size` in `region`, following
/// `NextPageLink` (same host only, at most [`MAX_PAGES`] pages).
pub async fn fetch_hourly(
    http: &reqwest::Client,
    endpoint: &Url,
    currency: &str,
    region: &str,
    vm_size: &str,
) -> Result<Option<f64>, PriceError> {
    let mut url = endpoint
        .join("/api/retail/prices")
        .map_err(|e| PriceError::Protocol {
            reason: format!("bad endpoint: {e}"),
        })?;
    url.query_pairs_mut()
        .append_pair("currencyCode", &format!("'{currency}'"))
        .append_pair("$filter", &filter_for(region, vm_size));
    let mut items = Vec::new();
    for page_no in 0.. {
        if page_no >= MAX_PAGES {
            return Err(PriceError::Protocol {
                reason: format!("more than {MAX_PAGES} pages"),
            });
        }
        let resp = http
            .get(url.clone())
            .send()
            .await
            .map_err(PriceError::Http)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(PriceError::Status { status });
        }
        let body = resp.bytes().await.map_err(PriceError::Http)?;
        let page = parse_page(&body)?;
        if let Some(c) = &page.billing_currency
            && !c.eq_ignore_ascii_case(currency)
        {
            return Err(PriceError::Protocol {
                reason: format!("asked for {currency}, got {c}"),
            });
        }
        items.extend(page.items);
        let Some(next) = page.next_page_link.filter(|l| !l.trim().is_empty()) else {
            break;
        };
        let next = Url::parse(next.trim()).map_err(|e| PriceError::Protocol {
            reason: format!("bad NextPageLink: {e}"),
        })?;
        if next.host_str() != endpoint.host_str() || next.scheme() != endpoint.scheme() {
            return Err(PriceError::Protocol {
                reason: "NextPageLink points to another host".into(),
            });
        }
        url = next;
    }
    Ok(linux_hourly(&items, &canonical_sku(vm_size), region))
}

/// The shared book: read by the accountant, written by the refresher.
pub type SharedBook = Arc<Mutex<PriceBook>>;

/// One refresh round: fetch the stale or missing prices of the `seen` (region, vm size)
/// pairs, keep the cached price on failure, and write the cache when anything changed.
/// Returns early (without writing) when `shutdown` is cancelled.
pub async fn refresh_round(
    book: &SharedBook,
    http: &reqwest::Client,
    state_dir: &Path,
    seen: &BTreeSet<(String, String)>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) {
    let now = crate::clock::now();
    let (wanted, endpoint, currency) = {
        let b = book.lock().unwrap_or_else(|p| p.into_inner());
        (
            b.wanted(seen, now),
            b.settings().retail_api_endpoint.clone(),
            b.currency().to_owned(),
        )
    };
    let mut changed = false;
    for (region, size) in wanted {
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            r = fetch_hourly(http, &endpoint, &currency, &region, &size) => r,
        };
        let at = crate::clock::now();
        let mut b = book.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(hourly) => {
                metrics.price_request("ok");
                if hourly.is_none() {
                    tracing::warn!(
                        region,
                        vm_size = size,
                        "the retail prices API has no Linux pay-as-you-go price for this size; it stays unpriced"
                    );
                } else {
                    tracing::debug!(region, vm_size = size, hourly, "price fetched");
                }
                b.insert(&region, &size, hourly, at);
                changed = true;
            }
            Err(e) => {
                metrics.price_request(e.kind());
                tracing::warn!(region, vm_size = size, error = %crate::engine::text::chain(&e), "cannot fetch a price; keeping the cached one");
                b.fetch_failed(&region, &size, at);
            }
        }
    }
    if changed {
        let b = book.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Err(e) = save_cache(&b, state_dir) {
            tracing::warn!(error = %crate::engine::text::chain(&e), "cannot write the price cache");
        }
    }
}

/// Keep retail prices fresh for the (region, vm size) pairs sent on `seen`, until
/// `shutdown`: a round at each change of `seen` and every minute (refreshes, retries).
pub fn spawn_refresher(
    book: SharedBook,
    http: reqwest::Client,
    state_dir: PathBuf,
    mut seen: watch::Receiver<BTreeSet<(String, String)>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let pairs = seen.borrow_and_update().clone();
            refresh_round(&book, &http, &state_dir, &pairs, &metrics, &shutdown).await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                r = seen.changed() => if r.is_err() { return },
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::{PriceSource, PricingSettings};
    use crate::engine::pricing::Price;
    use jiff::Timestamp;

    fn settings(source: PriceSource) -> PricingSettings {
        PricingSettings {
            source,
            ..PricingSettings::default()
        }
    }

    #[test]
    fn cache_round_trip_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let now: Timestamp = "2026-03-27T12:00:00Z".parse().unwrap();
        let mut book = PriceBook::new(&settings(PriceSource::RetailApi));
        book.insert("eastus", "Standard_NC6", Some(0.9), now);
        save_cache(&book, dir.path()).unwrap();
        let mut again = PriceBook::new(&settings(PriceSource::RetailApi));
        load_cache(&mut again, dir.path());
        assert_eq!(
            again.compute_hourly("Standard_NC6", Some("eastus")),
            Price::Known(0.9)
        );
        let mut eur = settings(PriceSource::RetailApi);
        eur.currency = "EUR".into();
        let mut other = PriceBook::new(&eur);
        load_cache(&mut other, dir.path());
        assert_eq!(
            other.compute_hourly("Standard_NC6", Some("eastus")),
            Price::Pending
        );
    }
}
