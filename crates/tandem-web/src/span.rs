//! The root span of each request, without the cost of an unused one.
//!
//! tracing-actix-web's default builder finds the route pattern by matching
//! every route's regex again and parses the connection info on every
//! request, even when the span is disabled (at the default `warn` level it
//! is). This builder records the method, path and request id, evaluated
//! only when the span is enabled, and leaves the end of the span (status,
//! errors) to the default builder.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage, HttpRequest};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

/// Tandem's root span builder.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.target = %safe_path(request.path(), request.match_info().as_str()),
            request_id = %request_id.map(|r| r.to_string()).unwrap_or_default(),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// A request's path as a log line or an error shows it: [`shown_path`],
/// read as routed (percent-decoded) when it holds escapes, with any key in
/// it cut to its prefix (`/scim/v2/tandem_scim_…/Users`: a key pasted
/// where an id goes, however encoded).
pub fn safe_path(path: &str, routed: &str) -> String {
    // Decoded, a control character (`%0A`) is escaped again: no forged log
    // line; so are spaces and quotes: no forged field (`x%20client=6.6.6.6`).
    let escaped;
    let routed = if routed.chars().any(breaks_a_field) {
        escaped = escape_controls(routed);
        escaped.as_str()
    } else {
        routed
    };
    let path = if path.contains('%') { routed } else { path };
    tandem_core::keys::redact_keys(&shown_path(path, routed)).into_owned()
}

/// Whether `c` would end a log line or a field of one.
fn breaks_a_field(c: char) -> bool {
    c.is_control() || c.is_whitespace() || c == '"'
}

/// `text` with each character that [`breaks_a_field`] percent-encoded (its UTF-8 bytes).
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if breaks_a_field(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A request's path as the span shows it: a setup link's token, a
/// credential, is left out wherever it is (`/setup/…/oidc`). `routed` is
/// the path as the router reads it (percent-decoded), so `/%73etup/…` and
/// `//setup/…`, which are served the page too, are caught as well.
pub fn shown_path<'a>(path: &'a str, routed: &str) -> std::borrow::Cow<'a, str> {
    const PREFIX: &str = "tandem_setup_";
    if !path.contains(PREFIX) && !routed.contains(PREFIX) && !routed.contains("/setup/") {
        return std::borrow::Cow::Borrowed(path);
    }
    // The segment after `setup` (empty ones skipped) is a token unless it is `assets`.
    let mut after_setup = false;
    let shown: Vec<&str> = routed
        .split('/')
        .map(|segment| {
            let token = segment.contains(PREFIX) || (after_setup && !segment.is_empty() && segment != "assets");
            after_setup = (after_setup && segment.is_empty()) || segment == "setup";
            if token {
                "…"
            } else {
                segment
            }
        })
        .collect();
    std::borrow::Cow::Owned(shown.join("/"))
}

/// Who sent a refused request, for its audit line: the connection's peer
/// address, and the `X-Forwarded-For` header as sent (only a proxy the
/// operator runs makes it true; it is logged, never trusted). fail2ban and
/// the like need the address; the header is cut to 200 characters.
pub struct Client {
    pub addr: Option<std::net::IpAddr>,
    pub forwarded_for: Option<String>,
}

impl Client {
    pub fn of(req: &HttpRequest) -> Client {
        let forwarded_for = req
            .headers()
            .get("x-forwarded-for")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).chars().take(200).collect());
        Client { addr: req.peer_addr().map(|a| a.ip()), forwarded_for }
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            Some(ip) => write!(f, "{ip}")?,
            None => f.write_str("unknown")?,
        }
        if let Some(x) = &self.forwarded_for {
            // Debug-escaped: a header may hold anything but line breaks.
            write!(f, " (X-Forwarded-For {x:?})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{safe_path, shown_path};

    #[test]
    fn a_key_in_a_path_is_cut_however_it_is_encoded() {
        let ik = "tandem_ik_AbC-d_e";
        for (raw, routed) in [
            (format!("/api/v1/oidc-clients/{ik}"), format!("/api/v1/oidc-clients/{ik}")),
            ("/api/v1/%74andem_ik_AbC-d_e".to_string(), format!("/api/v1/{ik}")),
            ("/scim/v2/tandem%5Fscim%5FXy/Users".to_string(), "/scim/v2/tandem_scim_Xy/Users".to_string()),
            (
                "/api/v1/webhook-endpoints/whsec_a+b/c=".to_string(),
                "/api/v1/webhook-endpoints/whsec_a+b/c=".to_string(),
            ),
        ] {
            let shown = safe_path(&raw, &routed);
            assert!(!shown.contains("AbC") && !shown.contains("Xy") && !shown.contains("a+b"), "{raw}: {shown}");
            assert!(shown.contains('…'), "{raw}: {shown}");
        }
        // (raw, routed, shown)
        for (raw, routed, shown) in [
            ("/scim/v2/c1/Users", "/scim/v2/c1/Users", "/scim/v2/c1/Users"),
            // No forged line: control characters stay escaped.
            ("/scim/v2/x%0AFORGED%C2%85/Users", "/scim/v2/x\nFORGED\u{85}/Users", "/scim/v2/x%0AFORGED%C2%85/Users"),
            ("/setup/%0Atandem_setup_ab/oidc", "/setup/\ntandem_setup_ab/oidc", "/setup/…/oidc"),
            ("/x%0A/setup/tandem_setup_ab", "/x\n/setup/tandem_setup_ab", "/x%0A/setup/…"),
            // No forged field: spaces and quotes stay escaped.
            (
                "/scim/v2/x%20client=6.6.6.6%22/Users",
                "/scim/v2/x client=6.6.6.6\"/Users",
                "/scim/v2/x%20client=6.6.6.6%22/Users",
            ),
            // A webhook secret percent-encoded (its `/` and `+` kept encoded by the router) is cut whole.
            ("/api/v1/whsec_1RZl%2FdXYu%2Bvb%3D", "/api/v1/whsec_1RZl%2FdXYu%2Bvb%3D", "/api/v1/whsec_…"),
        ] {
            assert_eq!(safe_path(raw, routed), shown, "{raw}");
        }
    }

    #[test]
    fn a_setup_links_token_is_left_out_of_the_path() {
        let shown = |p: &str| shown_path(p, p).into_owned();
        assert_eq!(shown("/setup/tandem_setup_abc"), "/setup/…");
        assert_eq!(shown("/setup/tandem_setup_abc/oidc"), "/setup/…/oidc");
        assert_eq!(shown("/setup/assets/setup.css"), "/setup/assets/setup.css");
        assert_eq!(shown("/scim/v2/c1/Users"), "/scim/v2/c1/Users");
        assert_eq!(shown_path("/%73etup/tandem_setup_abc", "/setup/tandem_setup_abc"), "/setup/…");
        assert_eq!(shown("//setup/tandem_setup_abc"), "//setup/…");
        assert_eq!(shown("/setup//tandem_setup_abc/oidc"), "/setup//…/oidc");
        assert_eq!(shown("/setup/not-a-token-but-hidden"), "/setup/…");
        assert_eq!(shown("/dashboard/customers/tandem_setup_pasted"), "/dashboard/customers/…");
    }
}
