//! `GET /api/v1/oidc-clients/{id}/scim-matching[?strategy=&limit=&seen_since=]`:
//! every strategy side by side over the SSO users seen (all, or those seen
//! since a time) and the SCIM users provisioned, who is unmatched or
//! ambiguous and why, and a recommendation.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use tandem_core::fields::FieldError;
use tandem_core::format_time;
use tandem_core::matching::MatchingStrategy;
use tandem_core::report::{count_all, recommend, ScimIndex, ScimSide, SsoSide, Verdict};
use tandem_store::scim::users;
use tandem_store::{from_micros, matching, micros, oidc_clients, scim_connections};

/// Reports computed at once on this node. One over 100k SSO users and 100k
/// SCIM users takes about a second and a few hundred MB, holding a pooled
/// connection while it reads: a second one waits its turn rather than
/// doubling the memory and taking another connection from logins and SCIM
/// requests (the dashboard computes one on every customer page view).
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Candidates listed per SSO user; `candidates_total` counts them all. A
/// key thousands of SCIM users share (one local part, one externalId)
/// would otherwise list every one of them for each of `limit` users.
const CANDIDATES_LISTED: usize = 20;

/// The first [`CANDIDATES_LISTED`] candidates of an SSO user, and how many
/// there are: only those listed are kept while the report is built.
fn listed_candidates(index: &ScimIndex<'_>, keys: &SsoSide) -> (Vec<(usize, Vec<MatchingStrategy>)>, usize) {
    let mut cands = index.candidates(keys);
    let total = cands.len();
    cands.truncate(CANDIDATES_LISTED);
    (cands, total)
}

/// Of tombstones alike (one userName, exactly, and externalId: a user the IdP
/// deleted and made again, over and over), the latest: they would fill an
/// SSO user's candidates with copies. `deleted`: oldest first.
fn latest_of_each(deleted: Vec<ScimSide>) -> Vec<ScimSide> {
    let mut at: HashMap<(String, Option<String>), usize> = HashMap::new();
    let mut kept: Vec<Option<ScimSide>> = Vec::with_capacity(deleted.len());
    for d in deleted {
        let key = (d.user_name.clone(), d.external_id.clone());
        if let Some(before) = at.insert(key, kept.len()) {
            kept[before] = None;
        }
        kept.push(Some(d));
    }
    kept.into_iter().flatten().collect()
}

/// Builds the report for a client; shared with the dashboard.
pub async fn report(
    state: &AppState,
    client_id: &str,
    strategy: Option<MatchingStrategy>,
    limit: usize,
    seen_since: Option<DateTime<Utc>>,
) -> Result<Value, ApiError> {
    let key = client_id.to_string();
    let client = state
        .store
        .read(move |c| oidc_clients::get(c, &key))
        .await?
        .ok_or_else(|| ApiError::not_found("ClientNotFound", format!("no OIDC client {client_id:?}")))?;
    let customer = client.customer_id.clone();
    // The SSO users logins saw are written behind their answers: this node's are written first.
    state.flush_logs().await;
    let connection =
        state.store.read(move |c| scim_connections::get_by_customer(c, &customer)).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "ClientNotPaired",
                format!(
                    "customer {:?} has no SCIM connection; the report compares SSO users with SCIM users",
                    client.customer_id
                ),
            )
        })?;
    let idp_type = client.idp_type()?;
    let (current, source) = match client.strategy()? {
        Some(s) => (s, "client"),
        None => state.settings.default_strategy(idp_type),
    };
    let shown = strategy.unwrap_or(current);
    let preferred = [current, state.settings.default_strategy(idp_type).0];
    // Never closed, so always a turn; held by the work itself, which goes on
    // if this request is dropped (the client went away).
    let turn = RUNNING.acquire().await.ok();
    let (client_key, conn_key) = (client.id.clone(), connection.id.clone());
    let state_for_block = state.clone();
    state
        .store
        .read(move |c| {
            let _turn = turn;
            let mut seen = matching::sso_side(c, &client_key, seen_since.map(micros))?;
            // Counted as the login counts them.
            let settings = &state_for_block.settings;
            let accepts = client.accept_unverified_email;
            seen.iter_mut()
                .for_each(|s| s.keys.email_verified = settings.email_verified_for_join(s.keys.email_verified, accepts));
            // A Google consumer account's email joins no one (see the login).
            if tandem_core::idp::is_google_issuer(&client.issuer) {
                let consumers = matching::sso_users_without_claim(c, &client_key, "hd")?;
                for s in seen.iter_mut().filter(|s| consumers.contains(&s.keys.oidc_user_id)) {
                    s.keys.email_verified = Some(false);
                }
            }
            // Logins the email allowlist refuses never reach the join: counted apart.
            let domains = client.domains();
            let (blocked, seen): (Vec<_>, Vec<_>) = seen.into_iter().partition(|s| {
                let (email, verified) = (s.keys.email.as_deref(), s.keys.email_verified);
                crate::login::complete::allowlist_refusal((idp_type, &client.issuer), &domains, email, verified)
                    .is_some()
            });
            let scim = matching::scim_side(c, &conn_key)?;
            // Deleted users count for no strategy, but by local part a
            // tombstone of another userName makes the live namesake's match
            // ambiguous unless the login's email says whom it is (as the
            // login decides); an unmatched SSO user lists the ones it would
            // match, which is why its login says `deleted`.
            let gone = latest_of_each(matching::deleted_side(c, &conn_key)?);
            let mut index = ScimIndex::new(&scim);
            index.add_deleted(&gone);
            let sso_keys: Vec<_> = seen.iter().map(|s| s.keys.clone()).collect();
            let (live_owners, deleted_owners) = index.owners_needed(&sso_keys);
            if !live_owners.is_empty() {
                let ids: Vec<String> =
                    live_owners.iter().map(|i| scim[*i].id.clone()).chain(deleted_owners.iter().cloned()).collect();
                let mut emails = matching::emails_of(c, &conn_key, &ids)?;
                for i in live_owners {
                    index.set_live_emails(i, emails.remove(&scim[i].id).unwrap_or_default());
                }
                for id in deleted_owners {
                    index.set_deleted_emails(&id, emails.remove(&id).unwrap_or_default());
                }
            }
            let counts = count_all(&index, &sso_keys);
            let recommended = recommend(&counts, &preferred);
            // Lists for the shown strategy.
            let mut unmatched = Vec::new();
            let mut ambiguous = Vec::new();
            let mut matched_scim: HashSet<usize> = HashSet::new();
            let mut candidate_ids: HashSet<String> = HashSet::new();
            for s in &seen {
                match index.verdict(shown, &s.keys) {
                    Verdict::Matched(i) => {
                        matched_scim.insert(i);
                    }
                    Verdict::Unmatched if unmatched.len() < limit => {
                        let (cands, total) = listed_candidates(&index, &s.keys);
                        candidate_ids.extend(cands.iter().map(|(i, _)| scim[*i].id.clone()));
                        unmatched.push((s.clone(), cands, total));
                    }
                    Verdict::Ambiguous if ambiguous.len() < limit => {
                        let (cands, total) = listed_candidates(&index, &s.keys);
                        candidate_ids.extend(cands.iter().map(|(i, _)| scim[*i].id.clone()));
                        ambiguous.push((s.clone(), cands, total));
                    }
                    _ => {}
                }
            }
            let gone_index = ScimIndex::new(&gone);
            let ids: Vec<String> = candidate_ids.into_iter().collect();
            let rows: HashMap<String, users::ScimUserRow> = users::by_ids(c, &conn_key, &ids)?.into_iter().map(|r| (r.id.clone(), r)).collect();
            let candidate_json = |u: &ScimSide, emails: Vec<Value>, under: &[MatchingStrategy]| {
                json!({"id": u.id, "user_name": u.user_name, "external_id": u.external_id, "active": u.active, "emails": emails,
                       "matches_under": under.iter().map(|s| s.as_str()).collect::<Vec<_>>()})
            };
            let scim_json = |i: usize, under: &[MatchingStrategy]| {
                let u = &scim[i];
                let doc = rows.get(&u.id).map(users::ScimUserRow::document).unwrap_or_default();
                let emails = tandem_scim::resource::email_values(&doc).map(|e| json!(e)).collect();
                candidate_json(u, emails, under)
            };
            let deleted_json = |(i, under): &(usize, Vec<MatchingStrategy>)| {
                let mut c = candidate_json(&gone[*i], Vec::new(), under);
                c["deleted"] = json!(true);
                c
            };
            let sso_json = |s: &matching::SeenUser, cands: &[(usize, Vec<MatchingStrategy>)], live_total: usize| {
                let live = cands.iter().map(|(i, under)| scim_json(*i, under));
                let (deleted, deleted_total) = listed_candidates(&gone_index, &s.keys);
                let total = live_total + deleted_total;
                json!({"oidc_user_id": s.keys.oidc_user_id, "email": s.keys.email,
                       "email_verified": s.keys.email_verified, "preferred_username": s.keys.preferred_username,
                       "last_login_at": format_time(from_micros(s.last_login_at)),
                       "candidates": live.chain(deleted.iter().map(deleted_json)).take(CANDIDATES_LISTED).collect::<Vec<_>>(),
                       "candidates_total": total})
            };
            let unmatched_scim: Vec<Value> = scim
                .iter()
                .enumerate()
                .filter(|(i, _)| !matched_scim.contains(i))
                .take(limit)
                .map(|(_, u)| json!({"id": u.id, "user_name": u.user_name, "external_id": u.external_id, "active": u.active}))
                .collect();
            let unmatched_scim_total = scim.len() - matched_scim.len();
            Ok(json!({
                "oidc_client_id": client.id,
                "customer_id": client.customer_id,
                "idp_type": client.idp_type,
                "scim_connection_id": conn_key,
                "sso_users_seen": seen.len() + blocked.len(),
                "blocked_by_allowlist": blocked.len(),
                "scim_users": scim.len(),
                "current_strategy": current.as_str(),
                "current_strategy_source": source,
                "recommended_strategy": recommended.map(|s| s.as_str()),
                "strategies": counts,
                "report_strategy": shown.as_str(),
                "unmatched_sso_users": unmatched.iter().map(|(s, c, n)| sso_json(s, c, *n)).collect::<Vec<_>>(),
                "ambiguous_sso_users": ambiguous.iter().map(|(s, c, n)| sso_json(s, c, *n)).collect::<Vec<_>>(),
                "unmatched_scim_users": unmatched_scim,
                "unmatched_scim_users_total": unmatched_scim_total,
                "limit": limit,
                "seen_since": seen_since.map(format_time),
                "generated_at": format_time(state_for_block.clock.now()),
            }))
        })
        .await
        .map_err(ApiError::from)
}

/// `GET /api/v1/oidc-clients/{id}/scim-matching`
pub async fn get(
    state: web::Data<AppState>,
    _c: Caller,
    id: web::Path<String>,
    query: super::Params,
) -> Result<HttpResponse, ApiError> {
    super::known_params(&query, &["strategy", "limit", "seen_since"])?;
    let mut errors = Vec::new();
    let strategy = match query.get("strategy").map(|s| s.parse::<MatchingStrategy>()) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            errors.push(FieldError { field: "strategy".into(), message: e.to_string() });
            None
        }
    };
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError { field: "limit".into(), message: "must be an integer from 1 to 1000".into() });
            100
        }
    };
    let seen_since = super::time_param(&query, "seen_since", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    Ok(HttpResponse::Ok().json(report(&state, &id.into_inner(), strategy, limit, seen_since).await?))
}
