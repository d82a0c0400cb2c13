//! Per-issuer caches of discovery metadata and signing keys, so a login
//! costs no extra round trips to the IdP once warm.

use crate::discovery::{discover, DiscoveryError, ProviderMetadata};
use crate::jwks::KeySet;
use crate::IdpHttp;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a discovery document is trusted before it is fetched again.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);

struct Entry {
    metadata: Arc<ProviderMetadata>,
    keys: Arc<KeySet>,
    fetched: Instant,
}

/// Discovery metadata and key sets by issuer.
#[derive(Default)]
pub struct IdpCache {
    entries: RwLock<HashMap<String, Entry>>,
}

impl IdpCache {
    /// The metadata and key set of `issuer`, fetched when absent or stale.
    pub async fn get(
        &self,
        http: &IdpHttp,
        issuer: &str,
    ) -> Result<(Arc<ProviderMetadata>, Arc<KeySet>), DiscoveryError> {
        if let Some(hit) = self.fresh(issuer) {
            return Ok(hit);
        }
        let metadata = Arc::new(discover(http, issuer).await?);
        let keys = Arc::new(KeySet::new(metadata.jwks_uri.clone()));
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        // Keep the keys already fetched for this issuer when the JWKS URI is unchanged.
        let keys = match map.get(issuer) {
            Some(old) if old.keys.uri() == keys.uri() => old.keys.clone(),
            _ => keys,
        };
        map.insert(
            issuer.to_string(),
            Entry { metadata: metadata.clone(), keys: keys.clone(), fetched: Instant::now() },
        );
        Ok((metadata, keys))
    }

    fn fresh(&self, issuer: &str) -> Option<(Arc<ProviderMetadata>, Arc<KeySet>)> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.get(issuer).filter(|e| e.fetched.elapsed() < METADATA_TTL).map(|e| (e.metadata.clone(), e.keys.clone()))
    }

    /// Forgets an issuer (its configuration changed).
    pub fn forget(&self, issuer: &str) {
        self.entries.write().unwrap_or_else(|p| p.into_inner()).remove(issuer);
    }
}
