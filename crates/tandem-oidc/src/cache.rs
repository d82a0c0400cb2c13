//! Per-issuer caches of discovery metadata and signing keys, so a login
//! costs no extra round trips to the IdP once warm.

use crate::discovery::{discover, metadata_url, DiscoveryError, ProviderMetadata};
use crate::jwks::KeySet;
use crate::IdpHttp;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tandem_core::clock::Clock;

/// How long a discovery document is trusted before it is fetched again.
pub const METADATA_TTL: Duration = Duration::hours(1);

/// How long a document whose refresh failed is still used: an IdP's
/// discovery endpoint that is briefly down (or slow) does not stop its
/// customer's logins, which need only the endpoints it named an hour ago.
pub const METADATA_MAX_STALE: Duration = Duration::hours(24);

/// After a failed refresh, how long the document is used before the next try.
pub const METADATA_RETRY: Duration = Duration::minutes(1);

/// After a first fetch failed (no document held), how long logins are
/// refused with that failure before the IdP is asked again.
pub const FIRST_FETCH_RETRY: Duration = Duration::seconds(5);

struct Entry {
    metadata: Arc<ProviderMetadata>,
    keys: Arc<KeySet>,
    /// When the document was last fetched.
    fetched: DateTime<Utc>,
    /// What its age is counted from: `fetched`, or later after a failed
    /// refresh (so the next try waits [`METADATA_RETRY`]).
    checked: DateTime<Utc>,
}

/// Discovery metadata and key sets by metadata URL (an issuer's, or one
/// Entra application's). Ages are read off the deployment's clock (tests
/// move it); a clock that went back counts as the time being up.
pub struct IdpCache {
    entries: RwLock<HashMap<String, Entry>>,
    /// First fetches that failed, by metadata URL: answered again until
    /// [`FIRST_FETCH_RETRY`] has passed.
    failed: RwLock<HashMap<String, (DateTime<Utc>, DiscoveryError)>>,
    /// One lock per metadata URL, held while its document is fetched: logins
    /// arriving meanwhile wait for that fetch instead of each sending its own.
    fetching: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    clock: Arc<dyn Clock>,
}

/// Whether `interval` has passed since `since` (or the clock went back).
pub(crate) fn elapsed(clock: &dyn Clock, since: DateTime<Utc>, interval: Duration) -> bool {
    let now = clock.now();
    now < since || now - since >= interval
}

impl IdpCache {
    /// An empty cache whose ages are read off `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> IdpCache {
        IdpCache { entries: RwLock::default(), failed: RwLock::default(), fetching: Default::default(), clock }
    }

    /// The metadata and key set of `issuer` (for one Entra application with
    /// `appid`: see [`crate::discovery::metadata_url`]), fetched when absent
    /// or stale. When a refresh fails, the document fetched before is used
    /// for up to [`METADATA_MAX_STALE`], tried again every [`METADATA_RETRY`].
    pub async fn get(
        &self,
        http: &IdpHttp,
        issuer: &str,
        appid: Option<&str>,
    ) -> Result<(Arc<ProviderMetadata>, Arc<KeySet>), DiscoveryError> {
        // Entries are kept by metadata URL: an Entra application's own
        // document (and keys) apart from its tenant's.
        let source = metadata_url(issuer, appid);
        if let Some(hit) = self.fresh(&source) {
            return Ok(hit);
        }
        if let Some(hit) = self.claim_refresh(&source) {
            return Ok(hit);
        }
        // A first fetch (a refresh is claimed by one call above) is made by
        // one call at a time; one that waited for another's takes its
        // result, or its failure for a while.
        if self.held(&source) {
            return self.fetch(http, issuer, appid, source).await;
        }
        let lock = {
            let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            fetching.entry(source.clone()).or_default().clone()
        };
        let found = {
            let _fetching = lock.lock().await;
            match (self.fresh(&source), self.failed_lately(&source)) {
                (Some(hit), _) => Ok(hit),
                (None, Some(e)) => Err(e),
                (None, None) => self.fetch(http, issuer, appid, source.clone()).await,
            }
        };
        // The lock goes once no other call holds or waits for it (the map's
        // and this call's are the only references): the map keeps no entry
        // per issuer ever asked for.
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&lock) <= 2 {
            fetching.remove(&source);
        }
        found
    }

    /// Fetches the document at `source` and keeps it (or, when that fails,
    /// the failure, and answers the document held before if not too old).
    async fn fetch(
        &self,
        http: &IdpHttp,
        issuer: &str,
        appid: Option<&str>,
        source: String,
    ) -> Result<(Arc<ProviderMetadata>, Arc<KeySet>), DiscoveryError> {
        let metadata = match discover(http, issuer, appid).await {
            Ok(found) => Arc::new(found),
            Err(e) => {
                let mut failed = self.failed.write().unwrap_or_else(|p| p.into_inner());
                failed.retain(|_, (at, _)| !elapsed(&*self.clock, *at, FIRST_FETCH_RETRY));
                failed.insert(source.clone(), (self.clock.now(), e.clone()));
                drop(failed);
                return self.stale(&source, e);
            }
        };
        self.failed.write().unwrap_or_else(|p| p.into_inner()).remove(&source);
        let keys = Arc::new(KeySet::new(metadata.jwks_uri.clone(), self.clock.clone()));
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        // Keep the keys already fetched for this document when the JWKS URI is unchanged.
        let keys = match map.get(&source) {
            Some(old) if old.keys.uri() == keys.uri() => old.keys.clone(),
            _ => keys,
        };
        let now = self.clock.now();
        map.insert(source, Entry { metadata: metadata.clone(), keys: keys.clone(), fetched: now, checked: now });
        Ok((metadata, keys))
    }

    /// The failure of a first fetch of `source` less than
    /// [`FIRST_FETCH_RETRY`] ago, when no document is held.
    fn failed_lately(&self, source: &str) -> Option<DiscoveryError> {
        if self.held(source) {
            return None;
        }
        let failed = self.failed.read().unwrap_or_else(|p| p.into_inner());
        failed.get(source).filter(|(at, _)| !elapsed(&*self.clock, *at, FIRST_FETCH_RETRY)).map(|(_, e)| e.clone())
    }

    fn fresh(&self, source: &str) -> Option<(Arc<ProviderMetadata>, Arc<KeySet>)> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.get(source)
            .filter(|e| !elapsed(&*self.clock, e.checked, METADATA_TTL))
            .map(|e| (e.metadata.clone(), e.keys.clone()))
    }

    /// Before this call refreshes a stale document: the document, when
    /// another call claimed its refresh meanwhile; otherwise `None`, and the
    /// document (if one not too old is held) counts as fresh for
    /// [`METADATA_RETRY`], so that the logins arriving during the refresh
    /// use it instead of each fetching it too and waiting out a slow IdP.
    fn claim_refresh(&self, source: &str) -> Option<(Arc<ProviderMetadata>, Arc<KeySet>)> {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = map.get_mut(source)?;
        if !elapsed(&*self.clock, entry.checked, METADATA_TTL) {
            return Some((entry.metadata.clone(), entry.keys.clone()));
        }
        // One too old to answer with is left as it is: the next fetch is a
        // first one (see [`IdpCache::held`]).
        if !elapsed(&*self.clock, entry.fetched, METADATA_MAX_STALE) {
            entry.checked = self.clock.now() - METADATA_TTL + METADATA_RETRY;
        }
        None
    }

    /// Whether a document of `source` young enough to answer with is held.
    /// One older than [`METADATA_MAX_STALE`] counts as none: its fetch is a
    /// first one, made by one call at a time and its failure kept a while,
    /// and the entry stays only so that the keys fetched for it are kept
    /// when the document comes back with the same JWKS URI.
    fn held(&self, source: &str) -> bool {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.get(source).is_some_and(|e| !elapsed(&*self.clock, e.fetched, METADATA_MAX_STALE))
    }

    /// After a refresh of the document at `source` failed with `e`: the
    /// document fetched before, when it is not too old, else the error.
    fn stale(&self, source: &str, e: DiscoveryError) -> Result<(Arc<ProviderMetadata>, Arc<KeySet>), DiscoveryError> {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = map.get_mut(source).filter(|old| !elapsed(&*self.clock, old.fetched, METADATA_MAX_STALE))
        else {
            return Err(e);
        };
        tracing::warn!(%source, error = %e, fetched = %entry.fetched, "could not refresh an issuer's discovery document; using the one fetched before");
        entry.checked = self.clock.now() - METADATA_TTL + METADATA_RETRY;
        Ok((entry.metadata.clone(), entry.keys.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tandem_core::clock::ShiftedClock;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Logins arriving while an issuer's discovery is being fetched wait for
    /// that fetch, and its failure is answered for a few seconds without
    /// asking the IdP again.
    #[tokio::test]
    async fn a_first_discovery_is_fetched_once_and_its_failure_kept_for_a_while() {
        let (issuer, asked) = flaky_issuer(Arc::new(std::sync::atomic::AtomicBool::new(false))).await;
        let clock = Arc::new(ShiftedClock::default());
        // Stands still but for the advance below: the failure is kept for
        // FIRST_FETCH_RETRY however slowly the test runs on a busy machine.
        clock.freeze();
        let cache = IdpCache::new(clock.clone());
        // Long enough for the issuer's answer (after 200 ms) on a busy machine:
        // a request that timed out would fail for another reason than its 503.
        let http = IdpHttp::new(std::time::Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
        let (a, b, c) = tokio::join!(
            cache.get(&http, &issuer, None),
            cache.get(&http, &issuer, None),
            cache.get(&http, &issuer, None)
        );
        assert!(a.is_err() && b.is_err() && c.is_err());
        assert_eq!(asked.load(Ordering::SeqCst), 1, "one fetch for three logins");
        let again = cache.get(&http, &issuer, None).await.err().unwrap_or_else(|| panic!("fetched"));
        assert!(again.reason.contains("503"), "{again}");
        assert_eq!(asked.load(Ordering::SeqCst), 1, "the failure is answered again");
        clock.advance(FIRST_FETCH_RETRY + Duration::seconds(1));
        assert!(cache.get(&http, &issuer, None).await.is_err());
        assert_eq!(asked.load(Ordering::SeqCst), 2, "asked again once the time is up");
        assert!(cache.fetching.lock().unwrap_or_else(|p| p.into_inner()).is_empty(), "no lock is kept");
    }

    /// An issuer whose discovery answers, after a pause, its document while
    /// `up` is set, else 503, and how many requests it was sent.
    async fn flaky_issuer(up: Arc<std::sync::atomic::AtomicBool>) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let issuer = format!("http://{}", listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
        let asked = Arc::new(AtomicUsize::new(0));
        let (count, base) = (asked.clone(), issuer.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (count, up, base) = (count.clone(), up.clone(), base.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    count.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    let answer = if up.load(Ordering::SeqCst) {
                        let doc = serde_json::json!({
                            "issuer": base, "authorization_endpoint": format!("{base}/authorize"),
                            "token_endpoint": format!("{base}/token"), "jwks_uri": format!("{base}/jwks"),
                            "response_types_supported": ["code"], "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                        })
                        .to_string();
                        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}", doc.len())
                    } else {
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
                    };
                    let _ = sock.write_all(answer.as_bytes()).await;
                });
            }
        });
        (issuer, asked)
    }

    /// A document too old to answer with counts as none: while its IdP
    /// still fails, logins fetch it as a first fetch, one at a time, and its
    /// failure is kept a while, instead of each login fetching it; once it
    /// is back, the keys fetched before are kept.
    #[tokio::test]
    async fn a_document_too_old_to_use_is_fetched_like_a_first_one() {
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (issuer, asked) = flaky_issuer(up.clone()).await;
        let clock = Arc::new(ShiftedClock::default());
        clock.freeze();
        let cache = IdpCache::new(clock.clone());
        let http = IdpHttp::new(std::time::Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
        let (_, keys) = cache.get(&http, &issuer, None).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        up.store(false, Ordering::SeqCst);
        clock.advance(METADATA_MAX_STALE + Duration::hours(1));
        let (a, b, c) = tokio::join!(
            cache.get(&http, &issuer, None),
            cache.get(&http, &issuer, None),
            cache.get(&http, &issuer, None)
        );
        assert!(a.is_err() && b.is_err() && c.is_err());
        assert_eq!(asked.load(Ordering::SeqCst), 2, "one fetch for three logins");
        assert!(cache.get(&http, &issuer, None).await.is_err());
        assert_eq!(asked.load(Ordering::SeqCst), 2, "the failure is answered again");
        up.store(true, Ordering::SeqCst);
        clock.advance(FIRST_FETCH_RETRY + Duration::seconds(1));
        let (_, kept) = cache.get(&http, &issuer, None).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(asked.load(Ordering::SeqCst), 3, "fetched again once the time is up");
        assert!(Arc::ptr_eq(&keys, &kept), "the keys fetched before are kept");
    }

    #[test]
    fn time_is_up_after_the_interval_or_when_the_clock_went_back() {
        // Frozen clocks: only the advances move them, however slowly the test runs.
        let clock = ShiftedClock::default();
        clock.freeze();
        let since = clock.now();
        assert!(!elapsed(&clock, since, Duration::minutes(1)));
        clock.advance(Duration::seconds(61));
        assert!(elapsed(&clock, since, Duration::minutes(1)));

        let clock = ShiftedClock::default();
        clock.freeze();
        let since = clock.now();
        clock.advance(Duration::seconds(-5));
        assert!(elapsed(&clock, since, Duration::minutes(1)));
    }
}
