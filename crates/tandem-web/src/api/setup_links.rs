//! `/api/v1/setup-links`: links an app hands a customer's IT admin, who
//! then sets up the customer's IdP at `/setup/{token}` (see
//! [`crate::setup`]). The link's URL is answered once, at create.

use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use tandem_core::fields::FieldReader;
use tandem_core::format_time;
use tandem_core::oidc_client::{check_new_customer_id, check_url};
use tandem_store::audit;
use tandem_store::from_micros;
use tandem_store::setup_links::{self as repo, SetupLinkRow};

/// A link's lifetime when the create names none.
const DEFAULT_HOURS: u64 = 72;
/// The longest lifetime a link may have: 30 days.
const MAX_HOURS: u64 = 720;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("SetupLinkNotFound", format!("no setup link {id:?}"))
}

/// The fields of a client's create a link may set for a client it creates:
/// the app's decisions, which the page does not show.
pub(crate) const CLIENT_SETTINGS: [&str; 6] = [
    "email_domain_allowlist",
    "scim_matching_definition",
    "additional_scopes",
    "scopes",
    "accept_unverified_email",
    "scim_required",
];

/// Checks a link's `client` settings as a client's create checks them
/// (errors named `client.…`): an object of [`CLIENT_SETTINGS`] only.
fn check_client_settings(settings: &Value, state: &AppState) -> Result<(), Vec<tandem_core::fields::FieldError>> {
    let error = |field: String, message: String| tandem_core::fields::FieldError { field, message };
    let Some(object) = settings.as_object() else {
        return Err(vec![error("client".into(), "must be an object".into())]);
    };
    let unknown: Vec<_> = object
        .keys()
        .filter(|k| !CLIENT_SETTINGS.contains(&k.as_str()))
        .map(|k| {
            error(
                format!("client.{k}"),
                format!("is not a setting a link gives; it takes {}", CLIENT_SETTINGS.join(", ")),
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    // A create of a stand-in client with these settings, of each IdP type
    // the page offers (its admin picks one): settings one type refuses
    // (an Entra client's scopes need `profile`) would leave that admin a
    // page that cannot save.
    let stand_ins = [
        json!({"type": "Generic", "issuer": "https://idp.example.com", "client_id": "c", "client_secret": "s"}),
        json!({"type": "Okta", "sso_domain": "example.okta.com", "client_id": "c", "client_secret": "s"}),
        json!({"type": "MicrosoftEntra", "tenant_id": "11111111-2222-3333-4444-555555555555", "client_id": "c",
               "client_secret": "s"}),
    ];
    let (mut errors, mut seen) = (Vec::new(), std::collections::HashSet::new());
    for idp in stand_ins {
        let idp_type = idp["type"].as_str().unwrap_or_default().to_string();
        let mut body = json!({"customer_id": "setup-link-check", "redirect_url": "https://app.example.com/cb",
                              "idp": idp});
        for (k, v) in object {
            body[k] = v.clone();
        }
        if let Err(found) = tandem_core::oidc_client::parse_create(&body, state.settings.url_policy) {
            for e in found {
                let field = format!("client.{}", e.field);
                if !seen.insert((field.clone(), e.message.clone())) {
                    continue;
                }
                // A refusal only some types make says which.
                let message = if idp_type == "Generic" {
                    e.message
                } else {
                    format!("{} (the link's page lets its admin choose the IdP type {idp_type})", e.message)
                };
                errors.push(error(field, message));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A link's `client` settings, as the body of a client's create takes them.
pub(crate) fn client_settings(row: &SetupLinkRow) -> serde_json::Map<String, Value> {
    row.client_settings
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

fn turned_off() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::CONFLICT,
        "SetupLinksTurnedOff",
        "setup links let customers' admins enter issuers that Tandem then calls, so they need \
         oidc.block_private_addresses on (or, for IdPs inside your network, \
         oidc.setup_links_allow_private_issuers = true)",
    )
}

fn render(row: &SetupLinkRow, state: &AppState) -> Value {
    json!({
        "id": row.id,
        "customer_id": row.customer_id,
        "token_prefix": row.display_prefix,
        "redirect_url": row.redirect_url,
        "client": row.client_settings.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok()),
        "state": row.state(state.clock.now()),
        "created_by": row.created_by,
        "created_at": format_time(from_micros(row.created_at)),
        "expires_at": format_time(from_micros(row.expires_at)),
        "revoked_at": row.revoked_at.map(|t| format_time(from_micros(t))),
        "last_used_at": row.last_used_at.map(|t| format_time(from_micros(t))),
    })
}

/// `POST /api/v1/setup-links {customer_id, redirect_url?, expires_in_hours?}`
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = body::json(payload, &state.settings).await?;
    Ok(HttpResponse::Created().json(create_from(&state, caller, body, None).await?))
}

/// [`create`] of a body already read (the dashboard's form makes one too,
/// `via` it, as its audit record says): the new link's answer, with its URL.
pub(crate) async fn create_from(
    state: &AppState,
    caller: Caller,
    body: Value,
    via: Option<&'static str>,
) -> Result<Value, ApiError> {
    if !state.settings.setup_links {
        return Err(turned_off());
    }
    let mut r = FieldReader::new(&body, "");
    let customer_id = r.required_string("customer_id");
    let redirect_url = r.string("redirect_url");
    let hours = r.u64("expires_in_hours");
    let client = r.raw("client").filter(|v| !v.is_null()).cloned();
    r.reject_unknown();
    if let Some(Err(msg)) = customer_id.as_deref().map(check_new_customer_id) {
        r.error("customer_id", msg);
    }
    let redirect_url = match redirect_url.as_deref().map(|u| check_url(u, state.settings.url_policy, false)) {
        Some(Ok(u)) => Some(u),
        Some(Err(msg)) => {
            r.error("redirect_url", msg);
            None
        }
        None => None,
    };
    let client = match client {
        Some(settings) => match check_client_settings(&settings, state) {
            Ok(()) => Some(settings.to_string()),
            Err(errors) => {
                for e in errors {
                    r.error(&e.field, e.message);
                }
                None
            }
        },
        None => None,
    };
    let hours = hours.unwrap_or(DEFAULT_HOURS);
    if !(1..=MAX_HOURS).contains(&hours) {
        r.error("expires_in_hours", format!("must be 1 to {MAX_HOURS} (30 days)"));
    }
    if !r.is_ok() {
        return Err(ApiError::invalid_fields(r.into_errors()));
    }
    let customer = customer_id.unwrap_or_default();
    let now = state.clock.now();
    let expires = now + chrono::Duration::hours(hours as i64);
    let (row, token) = state
        .store
        .write(move |c| {
            let made =
                repo::create(c, &customer, (redirect_url.as_deref(), client.as_deref()), &caller.name, now, expires)?;
            audit::record(
                c,
                now,
                &caller.name,
                "setup_link.created",
                ("setup_link", &made.0.id),
                json!({"customer_id": customer, "expires_at": format_time(expires), "via": via}),
            )?;
            Ok(made)
        })
        .await?;
    let mut out = render(&row, state);
    out["url"] = json!(format!("{}/setup/{}", state.settings.public_url, token.0));
    Ok(out)
}

/// `GET /api/v1/setup-links[?customer_id=…&before=&limit=]`, newest first.
pub async fn list(state: web::Data<AppState>, _caller: Caller, query: super::Params) -> Result<HttpResponse, ApiError> {
    let (before, limit) = super::newest_first_page(&query, "setup links", &["customer_id"])?;
    let customer = query.get("customer_id").cloned();
    let rows = state.store.read(move |c| repo::list(c, customer.as_deref(), before.as_deref(), limit)).await?;
    let data = rows.iter().map(|r| render(r, &state)).collect();
    Ok(super::page_answer(&rows, limit, |r| r.id.as_str(), data))
}

/// `GET /api/v1/setup-links/{id}`
pub async fn get(state: web::Data<AppState>, _caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let key = id.clone();
    let row = state.store.read(move |c| repo::get(c, &key)).await?.ok_or_else(|| not_found(&id))?;
    Ok(HttpResponse::Ok().json(render(&row, &state)))
}

/// Revokes the links of `customer_id` still working at `now`, each recorded
/// as revoked by `actor` through `via` (the deletion or renaming of the
/// customer's client or connection: a link would otherwise set the customer
/// up again, under whatever IdP its holder enters).
pub(crate) fn revoke_working_of(
    c: &mut tandem_store::AnyConnection,
    customer_id: &str,
    now: chrono::DateTime<chrono::Utc>,
    actor: &str,
    via: &str,
) -> Result<(), tandem_store::StoreError> {
    for link in repo::working_of(c, customer_id, now)? {
        // Recorded by whichever revocation changed it (another may have meanwhile).
        if let Some((row, true)) = repo::revoke(c, &link.id, now)? {
            let details = json!({"customer_id": row.customer_id, "via": via});
            audit::record(c, now, actor, "setup_link.revoked", ("setup_link", &row.id), details)?;
        }
    }
    Ok(())
}

/// `DELETE /api/v1/setup-links/{id}`: the link stops working at once (a
/// form already sent through it is finished). Revoking a revoked link
/// changes nothing.
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    match revoke_as(&state, caller.name, None, id.clone()).await? {
        Some(_) => Ok(HttpResponse::NoContent().finish()),
        None => Err(not_found(&id)),
    }
}

/// Revokes the link `id` as `actor` (through `via`, the dashboard, if
/// not the API): the link as it was and whether this call revoked it, or
/// `None` when there is none.
pub(crate) async fn revoke_as(
    state: &AppState,
    actor: String,
    via: Option<&'static str>,
    id: String,
) -> Result<Option<(SetupLinkRow, bool)>, ApiError> {
    let now = state.clock.now();
    let revoked = state
        .store
        .write(move |c| {
            let row = repo::revoke(c, &id, now)?;
            if let Some((row, true)) = row.as_ref() {
                let mut details = json!({"customer_id": row.customer_id});
                if let Some(via) = via {
                    details["via"] = json!(via);
                }
                audit::record(c, now, &actor, "setup_link.revoked", ("setup_link", &row.id), details)?;
            }
            Ok(row)
        })
        .await?;
    Ok(revoked)
}
