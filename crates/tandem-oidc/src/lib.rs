//! Tandem's upstream OIDC: talking to each customer's identity provider.
//!
//! Every request goes through [`IdpHttp`], a client that follows no
//! redirects (an IdP-supplied URL must not lead Tandem elsewhere) and has
//! connect and total timeouts. Discovery documents and JWKS are cached per
//! issuer ([`cache`]); the authorization request and code exchange are in
//! [`flow`]; the ID token is validated in [`id_token`].

pub mod cache;
pub mod discovery;
pub mod flow;
pub mod id_token;
pub mod jwks;

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

/// A transport failure in words an admin can act on.
pub fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        let cause = std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_else(|| e.to_string());
        format!("could not connect ({cause})")
    } else {
        e.to_string()
    }
}
