//! An identity provider's discovery document served over TLS with a
//! certificate from a private CA (`fixtures/enterprise-ca.pem`, made with
//! openssl for 127.0.0.1, valid until 2126), as an on-premises IdP under an
//! enterprise CA is. A blocking rustls server on its own threads: enough for
//! the discovery a client's create runs.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// The CA that signed the server's certificate, for `oidc.ca_file`.
pub const CA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/suite/fixtures/enterprise-ca.pem");

/// A running TLS IdP at `issuer` (`https://127.0.0.1:<port>`).
pub struct TlsIdp {
    pub issuer: String,
}

impl TlsIdp {
    pub fn start() -> TlsIdp {
        let cert = CertificateDer::from(include_bytes!("fixtures/enterprise-idp.crt.der").to_vec());
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(include_bytes!("fixtures/enterprise-idp.key.der").to_vec()));
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let iss = issuer.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, iss) = (config.clone(), iss.clone());
                std::thread::spawn(move || serve(tcp, config, &iss));
            }
        });
        TlsIdp { issuer }
    }
}

/// Answers one request, whatever its path, with the discovery document.
fn serve(tcp: TcpStream, config: Arc<ServerConfig>, iss: &str) {
    let Ok(conn) = ServerConnection::new(config) else { return };
    let mut tls = StreamOwned::new(conn, tcp);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
    })
    .to_string();
    let _ = write!(
        tls,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
