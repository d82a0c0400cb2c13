//! Tandem's upstream OIDC: talking to each customer's identity provider.
//!
//! Every request goes through [`IdpHttp`], a client that follows no
//! redirects (an IdP-supplied URL must not lead Tandem elsewhere) and has
//! connect and total timeouts.

pub mod discovery;

use std::time::Duration;

/// The HTTP client used for every call to an identity provider.
#[derive(Clone, Debug)]
pub struct IdpHttp {
    client: reqwest::Client,
}

impl IdpHttp {
    /// Builds the client: no redirects, timeouts, rustls.
    pub fn new(timeout: Duration) -> Result<IdpHttp, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(IdpHttp { client })
    }

    /// The underlying client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}
