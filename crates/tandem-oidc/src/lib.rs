//! Tandem's upstream OIDC: talking to each customer's identity provider.
//!
//! Every request goes through [`IdpHttp`], a client that follows no
//! redirects (an IdP-supplied URL must not lead Tandem elsewhere) and has
//! connect and total timeouts. Discovery documents and JWKS are cached per
//! issuer ([`cache`]); the authorization request and code exchange are in
//! [`flow`]; the ID token is validated in [`id_token`].

pub mod cache;
pub mod client_keys;
pub mod discovery;
pub mod flow;
pub mod id_token;
pub mod jwks;

use std::time::Duration;

/// The HTTP client used for every call to an identity provider.
///
/// A clone shares its connection pool. A pooled connection is driven by a
/// task on the runtime of the thread that opened it, so a request sent from
/// another actix worker wakes that thread twice (to send, and to hand the
/// answer back): each worker takes a client of its own
/// ([`IdpHttp::for_this_worker`]).
#[derive(Clone, Debug)]
pub struct IdpHttp {
    client: reqwest::Client,
    /// `oidc.block_private_addresses`: no call reaches a private, loopback
    /// or link-local address.
    block_private: bool,
    /// What the client was built with, to build another like it.
    timeout: Duration,
    extra_roots: std::sync::Arc<Vec<reqwest::Certificate>>,
}

/// Whether `ip` is an address an IdP on the internet never has: loopback,
/// private (RFC 1918, IPv6 unique local and site-local), link-local (cloud
/// metadata services live at 169.254.169.254), shared (100.64.0.0/10),
/// IETF protocol assignments (192.0.0.0/24), benchmarking (198.18.0.0/15),
/// reserved (240.0.0.0/4), unspecified, multicast or broadcast; and an IPv6
/// address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) when
/// that one is. Teredo and local-use NAT64 are refused whole.
pub fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => {
            let [first, second, third, _] = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || first == 0
                || first >= 240
                || (first == 100 && (second & 0xc0) == 64)
                || (first == 192 && second == 0 && third == 0)
                || (first == 198 && (second & 0xfe) == 18)
        }
        std::net::IpAddr::V6(a) => {
            let s = a.segments();
            let embedded =
                |hi: u16, lo: u16| std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                || a.to_ipv4().is_some_and(|v4| is_private(v4.into()))
                || (s[0] == 0x64
                    && s[1] == 0xff9b
                    && s[2..6] == [0, 0, 0, 0]
                    && is_private(embedded(s[6], s[7]).into()))
                || (s[0] == 0x2002 && is_private(embedded(s[1], s[2]).into()))
        }
    }
}

/// A resolver that keeps only public addresses: a host name that resolves
/// only to private ones (an internal service, the metadata service) is an
/// error naming the setting. No maintained crate filters reqwest's
/// resolution; this is a filter over tokio's `lookup_host`.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<std::net::SocketAddr> = found.filter(|a| !is_private(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves only to private, loopback or link-local addresses, which \
                     oidc.block_private_addresses refuses"
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

impl IdpHttp {
    /// Builds the client: no redirects, timeouts, rustls with the public
    /// (webpki) roots.
    pub fn new(timeout: Duration) -> Result<IdpHttp, String> {
        Self::with_roots(timeout, Vec::new())
    }

    /// Builds the client trusting `extra_roots` besides the public roots.
    pub fn with_roots(timeout: Duration, extra_roots: Vec<reqwest::Certificate>) -> Result<IdpHttp, String> {
        Self::build(timeout, extra_roots, false)
    }

    /// Builds the client; with `block_private`, no call reaches a private,
    /// loopback or link-local address ([`is_private`]): a host name is
    /// resolved to its public addresses only, and a URL naming such an
    /// address is refused before it is sent.
    pub fn build(
        timeout: Duration,
        extra_roots: Vec<reqwest::Certificate>,
        block_private: bool,
    ) -> Result<IdpHttp, String> {
        let extra_roots = std::sync::Arc::new(extra_roots);
        let client = Self::client_with(timeout, &extra_roots, block_private)?;
        Ok(IdpHttp { client, block_private, timeout, extra_roots })
    }

    /// A client like this one with a connection pool of its own, for the
    /// actix worker that calls this (see [`IdpHttp`]).
    pub fn for_this_worker(&self) -> Result<IdpHttp, String> {
        let client = Self::client_with(self.timeout, &self.extra_roots, self.block_private)?;
        Ok(IdpHttp { client, ..self.clone() })
    }

    fn client_with(
        timeout: Duration,
        extra_roots: &[reqwest::Certificate],
        block_private: bool,
    ) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder();
        for root in extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        if block_private {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly)).no_proxy();
        }
        builder
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            // Below the 60 s idle timeout common in load balancers, so a pooled
            // connection is rarely one the IdP's side has just closed.
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))
    }

    /// Refuses a URL whose host is a private, loopback or link-local
    /// address when such addresses are blocked (a host name is checked when
    /// it is resolved).
    pub fn refuse_private(&self, url: &str) -> Result<(), String> {
        if !self.block_private {
            return Ok(());
        }
        let ip = match url::Url::parse(url).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
            Some(url::Host::Ipv4(a)) => std::net::IpAddr::V4(a),
            Some(url::Host::Ipv6(a)) => std::net::IpAddr::V6(a),
            _ => return Ok(()),
        };
        if is_private(ip) {
            return Err(format!(
                "{ip} is a private, loopback or link-local address, which oidc.block_private_addresses refuses"
            ));
        }
        Ok(())
    }

    /// The longest one request may take (`oidc.http_timeout_secs`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether calls to private, loopback and link-local addresses are refused.
    pub fn blocks_private(&self) -> bool {
        self.block_private
    }

    /// The underlying client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// GETs a JSON document (with a bearer token when given). A GET is safe
    /// to repeat, so one that failed on the way (a pooled connection the IdP
    /// had closed) is sent once more; a timeout or a refused connection is
    /// not. The error is in words (see [`describe_transport_error`]).
    pub async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<reqwest::Response, String> {
        self.refuse_private(url)?;
        let send = || {
            let mut req = self.client.get(url).header("accept", "application/json");
            if let Some(token) = bearer {
                req = req.bearer_auth(token);
            }
            req.send()
        };
        match send().await {
            Err(e) if !e.is_timeout() && !e.is_connect() && !e.is_builder() => send().await,
            other => other,
        }
        .map_err(|e| describe_transport_error(&e))
    }
}

/// The most characters of an IdP's own text (an error description, a
/// metadata value) that a message or a login event repeats.
pub const IDP_TEXT_CHARS: usize = 500;

/// `text` as a message repeats it: at most [`IDP_TEXT_CHARS`] characters,
/// and `…` when cut. An IdP's answers are read up to 256 KiB, and a message
/// goes to the login event and the server log.
pub fn idp_words(text: &str) -> String {
    match text.char_indices().nth(IDP_TEXT_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Reads a PEM file of CA certificates (`oidc.ca_file`): an unreadable
/// file, or one holding no certificate, is an error naming the file.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read oidc.ca_file {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("oidc.ca_file {} is not a PEM bundle of certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("oidc.ca_file {} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// A transport failure in words an admin can act on.
pub fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        // The root cause says what an admin can act on ("invalid peer
        // certificate: UnknownIssuer", "Connection refused"); the layers
        // above it only say "client error (Connect)".
        let mut cause: &dyn std::error::Error = e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        format!("could not connect ({cause})")
    } else {
        e.to_string()
    }
}

/// The most Tandem reads of a discovery document, token response or
/// userinfo answer (a JWKS may be larger: see `jwks`).
pub const DOCUMENT_LIMIT: usize = 256 * 1024;

/// Reads a response body of at most `limit` bytes, a chunk at a time, so an
/// IdP that sends a huge (or endless) body is cut off at the limit instead of
/// being held in memory whole. `what` names the document in the error.
pub async fn read_limited(mut resp: reqwest::Response, limit: usize, what: &str) -> Result<Vec<u8>, String> {
    let too_large = || format!("{what} is larger than {} KiB", limit / 1024);
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe_transport_error(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn private_loopback_and_link_local_addresses_are_told_apart_from_public_ones() {
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::10.0.0.5",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2001:0::1",
            "fec0::1",
            "192.0.0.192",
            "198.18.0.1",
            "240.0.0.1",
        ];
        let public = [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
            "198.20.0.1",
            "192.0.2.1",
        ];
        for a in private {
            assert!(super::is_private(a.parse().unwrap()), "{a}");
        }
        for a in public {
            assert!(!super::is_private(a.parse().unwrap()), "{a}");
        }
        let http = super::IdpHttp::build(std::time::Duration::from_secs(1), Vec::new(), true).unwrap();
        assert!(http.refuse_private("http://169.254.169.254/latest/meta-data").is_err());
        assert!(http.refuse_private("https://[fd00::1]/").is_err());
        assert!(http.refuse_private("https://[64:ff9b::a00:5]/").is_err(), "NAT64 of a private address");
        assert!(http.refuse_private("http://0x7f.1/").is_err(), "an IPv4 address in hex is read as one");
        assert!(http.refuse_private("https://acme.okta.com/.well-known/openid-configuration").is_ok());
        let open = super::IdpHttp::build(std::time::Duration::from_secs(1), Vec::new(), false).unwrap();
        assert!(open.refuse_private("http://169.254.169.254/").is_ok());
    }

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_ca_file_that_cannot_be_used_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("tandem-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        assert!(read_ca_file(&missing).unwrap_err().contains("missing.pem"));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        assert!(read_ca_file(&empty).unwrap_err().contains("no PEM certificate"));
        // The crate's directory as cargo gives it to the test when it runs: a
        // test binary reused from a build in another checkout (one target
        // directory shared) would otherwise look in that checkout.
        let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
        let ca = std::path::Path::new(&crate_dir).join("../../tests/suite/fixtures/enterprise-ca.pem");
        assert_eq!(read_ca_file(&ca).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A server that answers 200 with `head` and then 64 KiB chunks until the client leaves.
    async fn endless(head: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    if sock.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
                    while sock.write_all(chunk.as_bytes()).await.is_ok() {}
                });
            }
        });
        format!("http://{addr}/")
    }

    #[test]
    fn an_idps_words_are_cut_at_a_character_boundary() {
        assert_eq!(idp_words("short"), "short");
        let long = "é".repeat(IDP_TEXT_CHARS + 10);
        let cut = idp_words(&long);
        assert_eq!(cut.chars().count(), IDP_TEXT_CHARS + 1);
        assert!(cut.ends_with("é…"));
        assert_eq!(idp_words(&"x".repeat(IDP_TEXT_CHARS)), "x".repeat(IDP_TEXT_CHARS));
    }

    #[tokio::test]
    async fn a_get_cut_off_on_the_way_is_sent_once_more() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move {
            // The first connection is closed after the request, unanswered
            // (as a keep-alive connection the IdP dropped); the second answers.
            for answer in [None, Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")] {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                if let Some(a) = answer {
                    sock.write_all(a.as_bytes()).await.unwrap();
                }
            }
        });
        let http = IdpHttp::new(Duration::from_secs(10)).unwrap();
        let resp = http.get_json(&url, None).await.expect("answered on the second try");
        assert_eq!(resp.status(), 200);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_cut_off_not_held() {
        let http = IdpHttp::new(Duration::from_secs(10)).unwrap();
        let url = endless("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").await;
        let resp = http.client().get(&url).send().await.unwrap();
        let err = read_limited(resp, DOCUMENT_LIMIT, "the document").await.unwrap_err();
        assert_eq!(err, "the document is larger than 256 KiB");

        let url = endless("HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\n").await;
        let resp = http.client().get(&url).send().await.unwrap();
        assert!(read_limited(resp, DOCUMENT_LIMIT, "the document").await.is_err());
    }
}
