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
        IdpCache { entries: RwLock::default(), clock }
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
        let metadata = match discover(http, issuer, appid).await {
            Ok(found) => Arc::new(found),
            Err(e) => return self.stale(&source, e),
        };
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
        if !elapsed(&*self.clock, entry.fetched, METADATA_MAX_STALE) {
            entry.checked = self.clock.now() - METADATA_TTL + METADATA_RETRY;
        }
        None
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
    use tandem_core::clock::ShiftedClock;

    #[test]
    fn time_is_up_after_the_interval_or_when_the_clock_went_back() {
        let clock = ShiftedClock::default();
        let since = clock.now();
        assert!(!elapsed(&clock, since, Duration::minutes(1)));
        clock.advance(Duration::seconds(61));
        assert!(elapsed(&clock, since, Duration::minutes(1)));

        let clock = ShiftedClock::default();
        let since = clock.now();
        clock.advance(Duration::seconds(-5));
        assert!(elapsed(&clock, since, Duration::minutes(1)));
    }
}
