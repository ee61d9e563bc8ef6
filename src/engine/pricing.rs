//! Prices: what one hour of a compute instance costs, running and stopped.
//!
//! Two sources (`[pricing] source`): `table` (the config's `vm_hourly`) and `retail_api`
//! (the Azure Retail Prices API, `GET {endpoint}/api/retail/prices`). A `vm_hourly` entry
//! always wins over the API: it is the operator's own figure (a negotiated rate, say).
//!
//! The API is asked only for the (region, vm size) pairs actually seen, one query each:
//! `serviceName eq 'Virtual Machines' and armRegionName eq R and armSkuName eq S and
//! priceType eq 'Consumption'`, in the configured currency, following `NextPageLink`.
//! Of the items, only Linux pay-as-you-go meters count: Windows products, Spot and Low
//! Priority meters, and anything not priced per hour are ignored.
//!
//! Answers are cached on disk (`prices.json` under `state_dir`) and refreshed after
//! [`PRICE_REFRESH`]; when the API cannot be reached the cached price stays in use, however
//! old, and `lightsout_prices_age_seconds` says how old it is.
//!
//! Pure: [`PriceBook`] (lookups, and the cache document as text) and the API's page shapes.
//! The HTTP fetch, the `prices.json` file and the daemon's refresher task are in
//! `daemon::price_fetch`, so the cost math that reads this book needs no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::engine::config::{PriceSource, PricingSettings};

/// A retail price older than this is fetched again.
pub const PRICE_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// After a failed fetch, the next try waits this long (the cached price stays in use).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(15 * 60);
/// File name of the price cache inside the state directory.
pub const CACHE_FILE: &str = "prices.json";
/// Version of the cache file's format.
const CACHE_VERSION: u32 = 1;

/// Errors of the price source.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("cannot reach the retail prices API")]
    Http(#[source] reqwest::Error),
    #[error("the retail prices API answered HTTP {status}")]
    Status { status: u16 },
    #[error("cannot decode a retail prices page")]
    Decode(#[source] serde_json::Error),
    #[error("retail prices API: {reason}")]
    Protocol { reason: String },
    #[error("cannot read the price cache {path}")]
    CacheRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the price cache {path}")]
    CacheWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PriceError {
    /// Short stable name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            PriceError::Http(_) => "http",
            PriceError::Status { .. } => "status",
            PriceError::Decode(_) => "decode",
            PriceError::Protocol { .. } => "protocol",
            PriceError::CacheRead { .. } => "cache_read",
            PriceError::CacheWrite { .. } => "cache_write",
        }
    }
}

/// What is known of one vm size's compute price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Price {
    /// Per hour, in the configured currency.
    Known(f64),
    /// Not asked yet (retail source): no warning, but not priced either.
    Pending,
    /// No price: not in the table and (retail source) the API has no Linux
    /// pay-as-you-go meter for it, or the workspace has no region.
    Unknown,
}

impl Price {
    /// The hourly figure, if known.
    pub fn known(self) -> Option<f64> {
        match self {
            Price::Known(p) => Some(p),
            Price::Pending | Price::Unknown => None,
        }
    }
}

/// One cached answer of the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetailEntry {
    /// Lower-case region, as `armRegionName`.
    pub region: String,
    /// Lower-case vm size.
    pub vm_size: String,
    /// Per hour; `None` when the API had no matching meter.
    pub hourly: Option<f64>,
    /// When the API gave this answer.
    pub fetched_at: Timestamp,
}

/// The cache file.
#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    currency: String,
    endpoint: String,
    entries: Vec<RetailEntry>,
}

/// Every price lightsout knows, in one currency. Pure data: lookups do no I/O.
#[derive(Debug, Clone)]
pub struct PriceBook {
    settings: PricingSettings,
    /// Sum of `stopped_hourly`.
    stopped: f64,
    /// Retail answers by (region, vm size), both lower-case.
    retail: BTreeMap<(String, String), RetailEntry>,
    /// Pairs whose last fetch failed, with when to try again.
    failed: BTreeMap<(String, String), Timestamp>,
}

impl PriceBook {
    /// An empty book for `settings` (no retail answers yet).
    pub fn new(settings: &PricingSettings) -> PriceBook {
        PriceBook {
            stopped: settings.stopped_hourly.values().sum(),
            settings: settings.clone(),
            retail: BTreeMap::new(),
            failed: BTreeMap::new(),
        }
    }

    /// The configured currency (ISO 4217 code).
    pub fn currency(&self) -> &str {
        &self.settings.currency
    }

    /// The settings in force.
    pub fn settings(&self) -> &PricingSettings {
        &self.settings
    }

    /// New settings (SIGHUP). Retail answers are kept when currency and endpoint are the same.
    pub fn reconfigure(&mut self, settings: &PricingSettings) {
        if settings.currency != self.settings.currency
            || settings.retail_api_endpoint != self.settings.retail_api_endpoint
        {
            self.retail.clear();
            self.failed.clear();
        }
        self.stopped = settings.stopped_hourly.values().sum();
        self.settings = settings.clone();
    }

    /// What a stopped instance still costs per hour (disk, public IP, load balancer).
    pub fn stopped_hourly(&self) -> f64 {
        self.stopped
    }

    /// The compute price per hour of `vm_size` in `region`.
    pub fn compute_hourly(&self, vm_size: &str, region: Option<&str>) -> Price {
        let size = vm_size.to_ascii_lowercase();
        if let Some(p) = self.settings.vm_hourly.get(&size) {
            return Price::Known(*p);
        }
        if self.settings.source != PriceSource::RetailApi {
            return Price::Unknown;
        }
        let Some(region) = region else {
            return Price::Unknown;
        };
        match self.retail.get(&(region.to_ascii_lowercase(), size)) {
            Some(RetailEntry {
                hourly: Some(p), ..
            }) => Price::Known(*p),
            Some(RetailEntry { hourly: None, .. }) => Price::Unknown,
            None => Price::Pending,
        }
    }

    /// The (region, vm size) pairs to ask the API about at `now`: seen, not in the table,
    /// and never asked or older than [`PRICE_REFRESH`], unless a recent try failed.
    pub fn wanted(
        &self,
        seen: &BTreeSet<(String, String)>,
        now: Timestamp,
    ) -> Vec<(String, String)> {
        if self.settings.source != PriceSource::RetailApi {
            return Vec::new();
        }
        let refresh = jiff::SignedDuration::try_from(PRICE_REFRESH).unwrap_or_default();
        seen.iter()
            .map(|(r, s)| (r.to_ascii_lowercase(), s.to_ascii_lowercase()))
            .filter(|(_, s)| !self.settings.vm_hourly.contains_key(s))
            .filter(|k| self.failed.get(k).is_none_or(|t| *t <= now))
            .filter(|k| {
                self.retail
                    .get(k)
                    .is_none_or(|e| now.duration_since(e.fetched_at) >= refresh)
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Record an answer of the API.
    pub fn insert(&mut self, region: &str, vm_size: &str, hourly: Option<f64>, at: Timestamp) {
        let key = (region.to_ascii_lowercase(), vm_size.to_ascii_lowercase());
        self.failed.remove(&key);
        self.retail.insert(
            key.clone(),
            RetailEntry {
                region: key.0,
                vm_size: key.1,
                hourly,
                fetched_at: at,
            },
        );
    }

    /// Record a failed fetch: the cached answer (if any) stays; the next try waits.
    pub fn fetch_failed(&mut self, region: &str, vm_size: &str, now: Timestamp) {
        let retry = jiff::SignedDuration::try_from(RETRY_AFTER_FAILURE).unwrap_or_default();
        self.failed.insert(
            (region.to_ascii_lowercase(), vm_size.to_ascii_lowercase()),
            now.checked_add(retry).unwrap_or(now),
        );
    }

    /// Age of the oldest retail price in use, in seconds; 0 for the table source (its
    /// prices are as fresh as the config) and when nothing has been fetched yet.
    pub fn age_seconds(&self, now: Timestamp) -> f64 {
        if self.settings.source != PriceSource::RetailApi {
            return 0.0;
        }
        self.retail
            .values()
            .map(|e| now.duration_since(e.fetched_at).as_secs_f64())
            .fold(0.0, f64::max)
    }

    /// The retail answers as the cache document that `price_fetch` keeps in `prices.json`.
    pub fn cache_text(&self) -> Result<String, PriceError> {
        let file = CacheFile {
            version: CACHE_VERSION,
            currency: self.settings.currency.clone(),
            endpoint: self.settings.retail_api_endpoint.to_string(),
            entries: self.retail.values().cloned().collect(),
        };
        serde_json::to_string_pretty(&file).map_err(PriceError::Decode)
    }

    /// Take the retail answers of a cache document. `Ok(false)`: the document is for
    /// another format version, currency or endpoint, and is ignored.
    pub fn apply_cache_text(&mut self, text: &str) -> Result<bool, serde_json::Error> {
        let c = serde_json::from_str::<CacheFile>(text)?;
        if c.version != CACHE_VERSION
            || c.currency != self.settings.currency
            || c.endpoint != self.settings.retail_api_endpoint.as_str()
        {
            return Ok(false);
        }
        for e in c.entries {
            self.retail.insert((e.region.clone(), e.vm_size.clone()), e);
        }
        Ok(true)
    }
}

/// One item of a retail prices page (only the fields used; unknown ones are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetailItem {
    #[serde(default)]
    pub currency_code: String,
    pub retail_price: f64,
    #[serde(default)]
    pub arm_region_name: String,
    #[serde(default)]
    pub arm_sku_name: String,
    #[serde(default)]
    pub meter_name: String,
    #[serde(default)]
    pub sku_name: String,
    #[serde(default)]
    pub product_name: String,
    #[serde(default)]
    pub service_name: String,
    #[serde(default)]
    pub unit_of_measure: String,
    /// `Consumption`, `DevTestConsumption`, `Reservation`.
    #[serde(rename = "type", default)]
    pub price_type: String,
    #[serde(default)]
    pub effective_start_date: Option<String>,
}

impl RetailItem {
    /// A Linux pay-as-you-go hourly meter: Consumption, per hour, not Windows, not Spot,
    /// not Low Priority.
    pub fn is_linux_consumption(&self) -> bool {
        let spot_or_low = |s: &str| {
            let s = s.to_ascii_lowercase();
            s.contains("spot") || s.contains("low priority")
        };
        self.price_type == "Consumption"
            && self.service_name == "Virtual Machines"
            && self.unit_of_measure.eq_ignore_ascii_case("1 Hour")
            && !self.product_name.to_ascii_lowercase().contains("windows")
            && !spot_or_low(&self.meter_name)
            && !spot_or_low(&self.sku_name)
    }
}

/// One page of the API.
#[derive(Debug, Clone, Deserialize)]
pub struct RetailPage {
    #[serde(rename = "BillingCurrency", default)]
    pub billing_currency: Option<String>,
    #[serde(rename = "Items", default)]
    pub items: Vec<RetailItem>,
    #[serde(rename = "NextPageLink", default)]
    pub next_page_link: Option<String>,
}

/// Parse one page.
pub fn parse_page(body: &[u8]) -> Result<RetailPage, PriceError> {
    serde_json::from_slice(body).map_err(PriceError::Decode)
}

/// The Linux pay-as-you-go hourly price of `vm_size` in `region` among `items`: the meter
/// with the latest `effectiveStartDate`; `None` when no item qualifies.
pub fn linux_hourly(items: &[RetailItem], vm_size: &str, region: &str) -> Option<f64> {
    items
        .iter()
        .filter(|i| i.is_linux_consumption())
        .filter(|i| i.arm_sku_name.eq_ignore_ascii_case(vm_size))
        .filter(|i| i.arm_region_name.eq_ignore_ascii_case(region))
        .max_by(|a, b| a.effective_start_date.cmp(&b.effective_start_date))
        .map(|i| i.retail_price)
}

/// `STANDARD_DS3_V2` → `Standard_DS3_v2`: the API spells sizes with `Standard_` and a
/// lower-case version suffix, and its filter compares exactly.
pub fn canonical_sku(vm_size: &str) -> String {
    let rest = match vm_size.split_once('_') {
        Some((p, rest)) if p.eq_ignore_ascii_case("standard") => rest,
        _ => return vm_size.to_owned(),
    };
    let mut out = String::from("Standard_");
    let parts: Vec<&str> = rest.split('_').collect();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('_');
        }
        let is_version = i > 0
            && part.len() >= 2
            && part.starts_with(['v', 'V'])
            && part[1..].chars().all(|c| c.is_ascii_digit());
        if is_version {
            out.push('v');
            out.push_str(&part[1..]);
        } else {
            out.push_str(part);
        }
    }
    out
}

/// The `$filter` for one (region, size) query.
pub fn filter_for(region: &str, vm_size: &str) -> String {
    let q = |s: &str| s.replace('\'', "''");
    format!(
        "serviceName eq 'Virtual Machines' and armRegionName eq '{}' and armSkuName eq '{}' and priceType eq 'Consumption'",
        q(&region.to_ascii_lowercase()),
        q(&canonical_sku(vm_size))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/azure/retail-prices"
    );

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}/{name}")).unwrap()
    }

    fn item(name: &str) -> RetailItem {
        serde_json::from_slice(&fixture(name)).unwrap()
    }

    fn settings(source: PriceSource) -> PricingSettings {
        let mut s = PricingSettings {
            source,
            ..PricingSettings::default()
        };
        s.vm_hourly.insert("standard_ds3_v2".into(), 0.293);
        s.stopped_hourly.insert("disk".into(), 0.02);
        s.stopped_hourly.insert("public_ip".into(), 0.005);
        s
    }

    #[test]
    fn parses_the_documented_page_shape() {
        let page = parse_page(&fixture("page-sample-truncated.holgerjs.json")).unwrap();
        assert_eq!(page.billing_currency.as_deref(), Some("USD"));
        assert_eq!(page.items.len(), 1);
        assert!(page.next_page_link.unwrap().contains("$skip=100"));
        let i = &page.items[0];
        assert_eq!(i.arm_sku_name, "Standard_E64-32ds_v4");
        assert_eq!(i.retail_price, 5.536);
        // DevTest and Windows: not a Linux pay-as-you-go meter.
        assert!(!i.is_linux_consumption());
    }

    #[test]
    fn documented_items_are_classified() {
        // Windows Spot, in EUR.
        let eur = item("item-consumption-eur.doc.json");
        assert_eq!(eur.currency_code, "EUR");
        assert_eq!(eur.price_type, "Consumption");
        assert!(!eur.is_linux_consumption());
        // DevTest and reservations never count.
        assert!(!item("item-devtestconsumption.doc.json").is_linux_consumption());
        let res = item("item-reservation.doc.json");
        assert_eq!(res.retail_price, 25007.0);
        assert!(!res.is_linux_consumption());
        // The same shape as a Linux Consumption meter does.
        let mut linux = eur.clone();
        linux.meter_name = "F16s".into();
        linux.sku_name = "F16s".into();
        linux.product_name = "Virtual Machines FS Series".into();
        assert!(linux.is_linux_consumption());
        assert_eq!(
            linux_hourly(&[eur, linux], "standard_f16s", "WestEurope"),
            Some(0.6176)
        );
    }

    #[test]
    fn latest_meter_wins_and_no_match_is_none() {
        let mut a = item("item-consumption-eur.doc.json");
        a.meter_name = "F16s".into();
        a.sku_name = "F16s".into();
        a.product_name = "Virtual Machines FS Series".into();
        let mut b = a.clone();
        b.retail_price = 0.7;
        b.effective_start_date = Some("2023-01-01T00:00:00Z".into());
        assert_eq!(
            linux_hourly(&[a.clone(), b], "Standard_F16s", "westeurope"),
            Some(0.7)
        );
        assert_eq!(linux_hourly(&[a], "Standard_F16s", "eastus"), None);
    }

    #[test]
    fn sku_spelling_and_filter() {
        assert_eq!(canonical_sku("STANDARD_DS3_V2"), "Standard_DS3_v2");
        assert_eq!(canonical_sku("Standard_NC6"), "Standard_NC6");
        assert_eq!(canonical_sku("standard_e4ds_v4"), "Standard_e4ds_v4");
        assert_eq!(canonical_sku("Basic_A1"), "Basic_A1");
        assert_eq!(
            filter_for("WestEurope", "STANDARD_DS3_V2"),
            "serviceName eq 'Virtual Machines' and armRegionName eq 'westeurope' and armSkuName eq 'Standard_DS3_v2' and priceType eq 'Consumption'"
        );
    }

    #[test]
    fn table_then_retail_then_unknown() {
        let now: Timestamp = "2026-03-27T12:00:00Z".parse().unwrap();
        let table = PriceBook::new(&settings(PriceSource::Table));
        assert_eq!(
            table.compute_hourly("Standard_DS3_v2", None),
            Price::Known(0.293)
        );
        assert_eq!(
            table.compute_hourly("Standard_NC6", Some("eastus")),
            Price::Unknown
        );
        assert!((table.stopped_hourly() - 0.025).abs() < 1e-12);
        assert_eq!(table.age_seconds(now), 0.0);

        let mut retail = PriceBook::new(&settings(PriceSource::RetailApi));
        // The table still wins; unseen sizes are pending until asked.
        assert_eq!(
            retail.compute_hourly("STANDARD_DS3_V2", Some("eastus")),
            Price::Known(0.293)
        );
        assert_eq!(
            retail.compute_hourly("Standard_NC6", Some("eastus")),
            Price::Pending
        );
        assert_eq!(retail.compute_hourly("Standard_NC6", None), Price::Unknown);
        let seen: BTreeSet<_> = [
            ("eastus".to_owned(), "Standard_NC6".to_owned()),
            ("eastus".to_owned(), "Standard_DS3_v2".to_owned()),
        ]
        .into();
        assert_eq!(
            retail.wanted(&seen, now),
            vec![("eastus".into(), "standard_nc6".into())]
        );
        retail.insert("eastus", "Standard_NC6", Some(0.9), now);
        retail.insert("eastus", "Standard_X1", None, now);
        assert_eq!(
            retail.compute_hourly("standard_nc6", Some("EastUS")),
            Price::Known(0.9)
        );
        assert_eq!(
            retail.compute_hourly("Standard_X1", Some("eastus")),
            Price::Unknown
        );
        assert!(retail.wanted(&seen, now).is_empty());
        let later = now
            .checked_add(jiff::SignedDuration::from_hours(25))
            .unwrap();
        assert_eq!(retail.wanted(&seen, later).len(), 1);
        assert_eq!(retail.age_seconds(later), 25.0 * 3600.0);
        // A failed refresh keeps the old price and waits before trying again.
        retail.fetch_failed("eastus", "Standard_NC6", later);
        assert!(retail.wanted(&seen, later).is_empty());
        assert_eq!(
            retail.compute_hourly("standard_nc6", Some("eastus")),
            Price::Known(0.9)
        );
    }
}
