//! Signed operation-status URLs, in the shape real ARM hands out in `Azure-AsyncOperation`.
//!
//! Evidence: `tests/fixtures/azure/recorded/real-ao-url-signed-2024-12.txt` (Dec 2024, a
//! stop on westus): `…/locations/{loc}/computeOperationsStatus/{id}?api-version={v}&service=new
//! &t={18-digit .NET ticks}&c={base64url certificate, 2575 chars}&s={base64url RSA signature,
//! 342 chars}&h={base64url SHA-256 hash, 43 chars}`, 3,231 bytes in all. The emulator has no
//! certificate or RSA key: `c` is filler of the recorded length derived from a per-run key,
//! and `h`/`s` are HMAC-SHA256 values over the path and the other parameters under that key.
//! A poll whose URL is not exactly the one handed out (reordered, re-encoded, altered or with
//! parameters missing) is refused: what real ARM answers then is not public, so the answer
//! chosen in [`Rejected`] is an assumption. Pure apart from the key drawn at construction.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;

/// Bytes behind `c` in the recording (a 1,931-byte X.509 certificate, 2,575 base64url chars).
const CERT_BYTES: usize = 1931;
/// Bytes behind `s` in the recording (a 256-byte RSA signature, 342 base64url chars).
const SIG_BYTES: usize = 256;
/// .NET ticks (100 ns) between 0001-01-01 and the Unix epoch; `t` counts ticks.
const TICKS_AT_UNIX_EPOCH: i128 = 621_355_968_000_000_000;

/// Why a poll URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// A signature parameter is missing or the query is not in the form handed out.
    NotVerbatim,
    /// The MAC does not match the path and parameters.
    BadSignature,
}

/// Makes and checks signed operation URLs with a key held by this emulator run.
#[derive(Debug)]
pub struct Signer {
    key: hmac::Key,
    cert: String,
}

impl Signer {
    /// A signer with a fresh random key.
    pub fn new() -> Signer {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
        let key = hmac::Key::new(hmac::HMAC_SHA256, &seed);
        let cert = URL_SAFE_NO_PAD.encode(expand(&key, b"cert", CERT_BYTES));
        Signer { key, cert }
    }

    /// The signed status URL of an operation. `path` starts at `/subscriptions/`.
    pub fn url(&self, endpoint: &str, path: &str, api_version: &str, now: Timestamp) -> String {
        let t = now.as_nanosecond() / 100 + TICKS_AT_UNIX_EPOCH;
        let unsigned = format!(
            "api-version={api_version}&service=new&t={t}&c={}",
            self.cert
        );
        let (s, h) = self.sign(path, &unsigned);
        format!("{endpoint}{path}?{unsigned}&s={s}&h={h}")
    }

    /// Checks that `raw_query` on `path` is exactly a query this signer produced.
    pub fn verify(&self, path: &str, raw_query: &str) -> Result<(), Rejected> {
        let (unsigned, sh) = raw_query.split_once("&s=").ok_or(Rejected::NotVerbatim)?;
        let (s, h) = sh.split_once("&h=").ok_or(Rejected::NotVerbatim)?;
        // The unsigned part must be in the form handed out, parameter by parameter.
        let mut parts = unsigned.split('&');
        let well_formed = parts
            .next()
            .is_some_and(|p| p.starts_with("api-version=") && p.len() > "api-version=".len())
            && parts.next() == Some("service=new")
            && parts.next().is_some_and(|p| {
                p.strip_prefix("t=")
                    .is_some_and(|t| t.len() == 18 && t.bytes().all(|b| b.is_ascii_digit()))
            })
            && parts.next().and_then(|p| p.strip_prefix("c=")) == Some(self.cert.as_str())
            && parts.next().is_none();
        if !well_formed {
            return Err(Rejected::NotVerbatim);
        }
        let (want_s, want_h) = self.sign(path, unsigned);
        if s == want_s && h == want_h {
            Ok(())
        } else {
            Err(Rejected::BadSignature)
        }
    }

    /// `(s, h)` for a path and the query before `&s=`.
    fn sign(&self, path: &str, unsigned: &str) -> (String, String) {
        let msg = format!("{path}\n{unsigned}");
        let h = hmac::sign(&self.key, msg.as_bytes());
        let s = expand(&self.key, h.as_ref(), SIG_BYTES);
        (
            URL_SAFE_NO_PAD.encode(s),
            URL_SAFE_NO_PAD.encode(h.as_ref()),
        )
    }
}

impl Default for Signer {
    fn default() -> Self {
        Signer::new()
    }
}

/// `n` bytes of HMAC output over `label` and a counter (HKDF-expand style).
fn expand(key: &hmac::Key, label: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut counter: u32 = 0;
    while out.len() < n {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(label);
        ctx.update(&counter.to_be_bytes());
        out.extend_from_slice(ctx.sign().as_ref());
        counter += 1;
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/subscriptions/s/providers/Microsoft.MachineLearningServices/locations/westus/computeOperationsStatus/57b0d3b1-d337-4e2d-9681-336898d4b9a8";

    fn query_of(url: &str) -> &str {
        url.split_once('?').unwrap().1
    }

    #[test]
    fn shape_matches_the_recording() {
        let recorded =
            include_str!("../../../tests/fixtures/azure/recorded/real-ao-url-signed-2024-12.txt")
                .trim();
        let signer = Signer::new();
        let now: Timestamp = "2024-12-18T09:08:05.5877451Z".parse().unwrap();
        let url = signer.url(
            "https://management.azure.com",
            "/subscriptions/00000000-0000-0000-0000-000000000/providers/Microsoft.MachineLearningServices/locations/westus/computeOperationsStatus/57b0d3b1-d337-4e2d-9681-336898d4b9a8",
            "2023-08-01-preview",
            now,
        );
        assert_eq!(url.len(), recorded.len());
        let names = |u: &str| -> Vec<(String, usize)> {
            url::Url::parse(u)
                .unwrap()
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.len()))
                .collect()
        };
        assert_eq!(names(&url), names(recorded));
        // The recorded ticks belong to the recorded time.
        assert!(url.contains("&t=638701096855877451&"), "{url}");
    }

    #[test]
    fn verifies_its_own_urls_only() {
        let signer = Signer::new();
        let now: Timestamp = "2026-03-30T09:00:00Z".parse().unwrap();
        let url = signer.url("https://e", PATH, "2025-12-01", now);
        let q = query_of(&url);
        assert_eq!(signer.verify(PATH, q), Ok(()));
        // Another path, another key, a changed parameter, a re-encoding, a missing part.
        let other = PATH.replace("westus", "eastus");
        assert_eq!(signer.verify(&other, q), Err(Rejected::BadSignature));
        assert_eq!(Signer::new().verify(PATH, q), Err(Rejected::NotVerbatim));
        let v = q.replace("2025-12-01", "2025-06-01");
        assert_eq!(signer.verify(PATH, &v), Err(Rejected::BadSignature));
        let enc = q.replacen('-', "%2D", 1);
        assert!(signer.verify(PATH, &enc).is_err());
        let cut = q.split("&h=").next().unwrap();
        assert_eq!(signer.verify(PATH, cut), Err(Rejected::NotVerbatim));
        assert_eq!(
            signer.verify(PATH, "api-version=2025-12-01"),
            Err(Rejected::NotVerbatim)
        );
    }
}
