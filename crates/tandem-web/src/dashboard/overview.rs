//! `GET /dashboard`: every customer with its OIDC client and SCIM connection
//! side by side, paired or not, and each SCIM key's expiry.

use super::layout::{key_badge, page, store_failure};
use super::session::require;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use std::collections::BTreeMap;
use tandem_core::format_time;
use tandem_core::scim_connection::warning_level;
use tandem_store::oidc_clients::{self, OidcClientRow};
use tandem_store::scim_connections::{self, ScimApiKeyRow, ScimConnectionRow};

/// One customer's two halves.
#[derive(Default)]
struct Customer {
    client: Option<OidcClientRow>,
    connection: Option<(ScimConnectionRow, Option<ScimApiKeyRow>)>,
}

/// `GET /dashboard`
pub async fn page_handler(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let admin = match require(&req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let now_read = state.clock.now();
    let loaded = state
        .store
        .read(move |c| {
            // One more than shown, to know whether there are more.
            let mut clients = oidc_clients::list(c, None, LISTED + 1)?;
            let mut conns = scim_connections::list(c, None, LISTED + 1)?;
            let cut = clients.len() as i64 > LISTED || conns.len() as i64 > LISTED;
            clients.truncate(LISTED as usize);
            conns.truncate(LISTED as usize);
            let mut with_keys = Vec::with_capacity(conns.len());
            for conn in conns {
                let key = scim_connections::current_key(c, &conn.id)?;
                with_keys.push((conn, key));
            }
            let links = tandem_store::setup_links::working(c, now_read, LINKS_LISTED)?;
            Ok((clients, with_keys, cut, links))
        })
        .await;
    let (clients, conns, cut, links) = match loaded {
        Ok(found) => found,
        Err(e) => return store_failure(&e, Some(&admin)),
    };
    let mut customers: BTreeMap<String, Customer> = BTreeMap::new();
    for c in clients {
        let id = c.customer_id.clone();
        customers.entry(id).or_default().client = Some(c);
    }
    for (conn, key) in conns {
        let id = conn.customer_id.clone();
        customers.entry(id).or_default().connection = Some((conn, key));
    }
    let now = state.clock.now();
    let body = html! {
        h1 { "Customers" }
        @if cut {
            p.notice {
                "Showing the customers of the first " (LISTED) " OIDC clients and " (LISTED)
                " SCIM connections (oldest first). Open any other customer at "
                span.mono { "/dashboard/customers/<customer ID>" } ", or list them all through the management API."
            }
        }
        @if customers.is_empty() {
            p { "No customers yet. Create an OIDC client and a SCIM connection through the management API, or make a setup link below for a customer's admin." }
        } @else {
            table {
                caption.muted { (customers.len()) " customers" }
                thead { tr {
                    th scope="col" { "Customer" } th scope="col" { "Identity provider" } th scope="col" { "Matching strategy" }
                    th scope="col" { "SCIM connection" } th scope="col" { "SCIM key" } th scope="col" { "Paired" }
                } }
                tbody {
                    @for (id, c) in &customers {
                        tr {
                            td { a href=(format!("/dashboard/customers/{}", urlencode(id))) { (id) } }
                            td {
                                @if let Some(cl) = &c.client { (cl.idp_type) br; span.mono.muted { (cl.issuer) } }
                                @else { span.muted { "no OIDC client" } }
                            }
                            td {
                                @if let Some(cl) = &c.client {
                                    @let (s, from) = effective(&state, cl);
                                    (s) @if from != "client" { " " span.muted { "(default)" } }
                                }
                            }
                            td {
                                @if let Some((conn, _)) = &c.connection { span.mono { (conn.id) } }
                                @else { span.muted { "no SCIM connection" } }
                            }
                            td {
                                @if let Some((_, Some(key))) = &c.connection {
                                    @let exp = key.expires();
                                    (key_badge(warning_level(exp, now))) " "
                                    span.muted { @match exp { Some(t) => { "expires " (format_time(t)) }, None => { "never expires" } } }
                                }
                            }
                            td {
                                @if c.client.is_some() && c.connection.is_some() { span.badge.ok { "paired" } }
                                // Only when every connection was read: one past the first thousand is no absence.
                                @else if !cut && c.client.as_ref().is_some_and(|cl| cl.scim_required) { span.badge.critical { "no SCIM connection: logins refused" } }
                                @else { span.muted { "no" } }
                            }
                        }
                    }
                }
            }
        }
        (setup_link_form(&state, &admin, &links))
    };
    page(StatusCode::OK, "Customers", Some(&admin), body)
}

/// The form that makes a setup link for a customer (see `crate::setup`),
/// and the links that still work, each with a button that revokes it.
fn setup_link_form(
    state: &AppState,
    admin: &super::session::Admin,
    links: &[tandem_store::setup_links::SetupLinkRow],
) -> maud::Markup {
    let time = |us: i64| format_time(tandem_store::from_micros(us));
    html! {
        h2 #setup-link { "Setup link" }
        @if !links.is_empty() {
            table {
                caption.muted {
                    "Setup links that work now" @if links.len() as i64 == LINKS_LISTED { " (the newest " (LINKS_LISTED) ")" }
                    ": anyone holding one can change that customer's IdP settings. Revoke a link once its setup is done."
                }
                thead { tr {
                    th scope="col" { "Customer" } th scope="col" { "Link" } th scope="col" { "Made by" }
                    th scope="col" { "Works until" } th scope="col" { "Last used" } th scope="col" { "" }
                } }
                tbody {
                    @for link in links {
                        tr {
                            td { a href=(format!("/dashboard/customers/{}", urlencode(&link.customer_id))) { (link.customer_id) } }
                            td.mono { (link.display_prefix) "…" }
                            td { (link.created_by) }
                            td { (time(link.expires_at)) }
                            td { @match link.last_used_at { Some(t) => { (time(t)) }, None => { span.muted { "never" } } } }
                            td {
                                form method="post" action=(format!("/dashboard/setup-links/{}/revoke", urlencode(&link.id))) {
                                    (super::layout::csrf_field(admin))
                                    button type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if state.settings.setup_links {
            p {
                "A link for a customer's IT admin, who then sets up the customer's IdP (sign-in and SCIM) \
                 on a page of its own. The link is shown once; revoke it above once the setup is done."
            }
            form method="post" action="/dashboard/setup-links" {
                (super::layout::csrf_field(admin))
                p.row { label for="customer_id" { "Customer ID" } input type="text" id="customer_id" name="customer_id"; }
                p.row {
                    label for="redirect_url" { "Redirect URL" }
                    input type="text" id="redirect_url" name="redirect_url" placeholder="https://app.example.com/sso/callback/acme";
                    span.muted { "for a customer without an OIDC client" }
                }
                p.row { label for="expires_in_hours" { "Works for (hours)" } input type="text" id="expires_in_hours" name="expires_in_hours" value="72"; }
                p { button type="submit" { "Make a setup link" } }
            }
        } @else {
            p.muted {
                "Setup links are turned off: they need oidc.block_private_addresses on (or \
                 oidc.setup_links_allow_private_issuers)."
            }
        }
    }
}

/// Most OIDC clients, and most SCIM connections, the overview reads.
const LISTED: i64 = 1000;
/// Most working setup links the overview lists.
const LINKS_LISTED: i64 = 100;

/// The effective strategy of a client and where it comes from.
pub fn effective(state: &AppState, client: &OidcClientRow) -> (String, &'static str) {
    match (client.strategy(), client.idp_type()) {
        (Ok(Some(s)), _) => (s.as_str().to_string(), "client"),
        (_, Ok(t)) => {
            let (s, from) = state.settings.default_strategy(t);
            (s.as_str().to_string(), from)
        }
        _ => ("?".into(), "unknown"),
    }
}

/// Percent-encodes a path segment.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}
