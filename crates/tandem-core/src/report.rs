//! The SCIM matching report: for the SSO users seen on a client and the
//! users of its SCIM connection, what every strategy would match — so an
//! admin picks a strategy with evidence instead of toggling until a list of
//! unmatched users empties.
//!
//! Both sides are reduced to match keys once and counted in hash maps, so a
//! report over 100k SSO users and 100k SCIM users is a few hash lookups per
//! user and strategy.

use crate::matching::{local_part_lower, MatchingStrategy, ScimKey, SsoAttributes};
use serde::Serialize;
use std::collections::HashMap;

/// An SSO user as the report sees it.
#[derive(Clone, Debug)]
pub struct SsoSide {
    pub oidc_user_id: String,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    /// The IdP's `email_verified` at the user's last login.
    pub email_verified: Option<bool>,
}

/// A live SCIM user as the report sees it.
#[derive(Clone, Debug)]
pub struct ScimSide {
    pub id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
}

/// One strategy's counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StrategyCounts {
    pub strategy: MatchingStrategy,
    /// SSO users with exactly one SCIM user.
    pub matched: usize,
    /// Of those, how many matched an inactive SCIM user (they would be refused).
    pub matched_inactive: usize,
    /// SSO users with none.
    pub unmatched: usize,
    /// SSO users with several (never a match).
    pub ambiguous: usize,
    /// Matched SSO users whose SCIM user another SSO user, of another email,
    /// matches too: two people signing in as one account (`john@contoso.com`
    /// and `john@fabrikam.com` by local part). Identities of one email (a
    /// user the IdP made again under a new id) are one person, not counted.
    pub shared: usize,
}

/// What one strategy does to one SSO user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    Matched(usize),
    Unmatched,
    /// The SCIM users matched, in the index's order.
    Ambiguous(&'a [usize]),
}

/// The SCIM users indexed by every key a strategy compares.
pub struct ScimIndex<'a> {
    users: &'a [ScimSide],
    by_key: HashMap<ScimKey, HashMap<String, Vec<usize>>>,
}

impl<'a> ScimIndex<'a> {
    /// Indexes `users` by user name (exact and lower-cased), local part, and external id.
    pub fn new(users: &'a [ScimSide]) -> ScimIndex<'a> {
        let mut by_key: HashMap<ScimKey, HashMap<String, Vec<usize>>> = HashMap::new();
        for (i, u) in users.iter().enumerate() {
            let mut put = |k: ScimKey, v: String| by_key.entry(k).or_default().entry(v).or_default().push(i);
            put(ScimKey::UserName, u.user_name.clone());
            put(ScimKey::UserNameLower, u.user_name.to_lowercase());
            put(ScimKey::UserNameLocalLower, local_part_lower(&u.user_name));
            if let Some(x) = &u.external_id {
                put(ScimKey::ExternalId, x.clone());
            }
        }
        ScimIndex { users, by_key }
    }

    /// The SCIM users a strategy matches for one SSO user.
    pub fn lookup(&self, strategy: MatchingStrategy, sso: &SsoSide) -> &[usize] {
        let attrs = SsoAttributes {
            oidc_user_id: Some(&sso.oidc_user_id),
            email: sso.email.as_deref(),
            preferred_username: sso.preferred_username.as_deref(),
            email_verified: sso.email_verified,
        };
        strategy
            .sso_key(&attrs)
            .and_then(|k| self.by_key.get(&strategy.scim_key()).and_then(|m| m.get(&k)))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The verdict of a strategy for one SSO user.
    pub fn verdict(&self, strategy: MatchingStrategy, sso: &SsoSide) -> Verdict<'_> {
        match self.lookup(strategy, sso) {
            [] => Verdict::Unmatched,
            [one] => Verdict::Matched(*one),
            many => Verdict::Ambiguous(many),
        }
    }

    /// SCIM users any strategy would match for `sso`, with the strategies that would.
    /// In the order first found; a key thousands of SCIM users share (one
    /// local part, one externalId) costs one step per user, not per pair.
    pub fn candidates(&self, sso: &SsoSide) -> Vec<(usize, Vec<MatchingStrategy>)> {
        let mut found: Vec<(usize, Vec<MatchingStrategy>)> = Vec::new();
        let mut at: HashMap<usize, usize> = HashMap::new();
        for s in MatchingStrategy::ALL {
            for &i in self.lookup(s, sso) {
                match at.get(&i) {
                    Some(&k) => {
                        if let Some((_, under)) = found.get_mut(k) {
                            under.push(s);
                        }
                    }
                    None => {
                        at.insert(i, found.len());
                        found.push((i, vec![s]));
                    }
                }
            }
        }
        found
    }

    /// The users indexed.
    pub fn users(&self) -> &'a [ScimSide] {
        self.users
    }
}

/// Counts for every strategy.
pub fn count_all(index: &ScimIndex<'_>, sso: &[SsoSide]) -> Vec<StrategyCounts> {
    MatchingStrategy::ALL
        .into_iter()
        .map(|strategy| {
            let mut c =
                StrategyCounts { strategy, matched: 0, matched_inactive: 0, unmatched: 0, ambiguous: 0, shared: 0 };
            // Per SCIM user matched: how many SSO users, and their emails.
            let mut joined: HashMap<usize, (usize, Vec<String>)> = HashMap::new();
            for s in sso {
                match index.verdict(strategy, s) {
                    Verdict::Matched(i) => {
                        c.matched += 1;
                        let (n, emails) = joined.entry(i).or_default();
                        *n += 1;
                        if let Some(e) = s.email.as_deref().map(str::to_lowercase).filter(|e| !emails.contains(e)) {
                            emails.push(e);
                        }
                        if !index.users[i].active {
                            c.matched_inactive += 1;
                        }
                    }
                    Verdict::Unmatched => c.unmatched += 1,
                    Verdict::Ambiguous(_) => c.ambiguous += 1,
                }
            }
            c.shared = joined.values().filter(|(n, emails)| *n > 1 && emails.len() > 1).map(|(n, _)| n).sum();
            c
        })
        .collect()
}

/// The strategy to recommend: most matched among those that neither find
/// several SCIM users for anyone nor join two SSO users to one; ties go to
/// the first of `preferred` among them (the strategy in effect, then the
/// default for the IdP type: a tie is no reason to change), then to the
/// contract's order. `None` when every strategy is ambiguous or shared for
/// someone, or nobody was seen.
pub fn recommend(counts: &[StrategyCounts], preferred: &[MatchingStrategy]) -> Option<MatchingStrategy> {
    let clean = |c: &&StrategyCounts| c.ambiguous == 0 && c.shared == 0;
    let best = counts.iter().filter(clean).map(|c| c.matched).max()?;
    if best == 0 {
        return None;
    }
    let tied: Vec<MatchingStrategy> =
        counts.iter().filter(clean).filter(|c| c.matched == best).map(|c| c.strategy).collect();
    preferred.iter().find(|p| tied.contains(p)).or(tied.first()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sso(id: &str, email: &str, pu: &str) -> SsoSide {
        SsoSide {
            oidc_user_id: id.into(),
            email: Some(email.into()),
            preferred_username: Some(pu.into()),
            email_verified: None,
        }
    }

    fn scim(id: &str, user_name: &str, ext: Option<&str>) -> ScimSide {
        ScimSide { id: id.into(), user_name: user_name.into(), external_id: ext.map(str::to_string), active: true }
    }

    fn counts_of(c: &[StrategyCounts], s: MatchingStrategy) -> (usize, usize, usize) {
        let x = c.iter().find(|x| x.strategy == s).unwrap();
        (x.matched, x.unmatched, x.ambiguous)
    }

    #[test]
    fn emails_that_differ_by_case_still_match_by_email() {
        let users = [scim("1", "Alice@Acme.com", None)];
        let idx = ScimIndex::new(&users);
        let c = count_all(&idx, &[sso("00u1", "alice@ACME.com", "alice")]);
        assert_eq!(counts_of(&c, MatchingStrategy::OidcEmailToScimUsername), (1, 0, 0));
        assert_eq!(counts_of(&c, MatchingStrategy::OidcSubToScimUsername), (0, 1, 0));
    }

    /// Two people whose emails share a local part both join the one SCIM
    /// user by local part: counted, and never recommended.
    #[test]
    fn two_sso_users_joining_one_scim_user_are_shared_and_not_recommended() {
        let users = [scim("1", "john@contoso.com", None)];
        let idx = ScimIndex::new(&users);
        let seen = [sso("oid-1", "john@contoso.com", "j1"), sso("oid-2", "john@fabrikam.com", "j2")];
        let c = count_all(&idx, &seen);
        let of = |s| c.iter().find(|x| x.strategy == s).unwrap();
        let local = of(MatchingStrategy::OidcEmailUsernameToScimUsername);
        assert_eq!((local.matched, local.shared), (2, 2));
        let email = of(MatchingStrategy::OidcEmailToScimUsername);
        assert_eq!((email.matched, email.unmatched, email.shared), (1, 1, 0));
        assert_eq!(
            recommend(&c, &[MatchingStrategy::OidcEmailUsernameToScimUsername]),
            Some(MatchingStrategy::OidcEmailToScimUsername)
        );
        // One person under two ids (the IdP made the account again): not shared.
        let again = [sso("00u-old", "john@contoso.com", "j"), sso("00u-new", "John@Contoso.com", "j")];
        let c = count_all(&idx, &again);
        let email = c.iter().find(|x| x.strategy == MatchingStrategy::OidcEmailToScimUsername).unwrap();
        assert_eq!((email.matched, email.shared), (2, 0));
        assert_eq!(recommend(&c, &[]), Some(MatchingStrategy::OidcEmailToScimUsername));
    }

    #[test]
    fn local_parts_colliding_across_domains_are_ambiguous() {
        let users = [scim("1", "alice@acme.com", None), scim("2", "alice@other.org", None)];
        let idx = ScimIndex::new(&users);
        let c = count_all(&idx, &[sso("x", "alice@acme.com", "alice")]);
        assert_eq!(counts_of(&c, MatchingStrategy::OidcEmailUsernameToScimUsername), (0, 0, 1));
        assert_eq!(counts_of(&c, MatchingStrategy::OidcEmailToScimUsername), (1, 0, 0));
        assert_eq!(
            recommend(&c, &[MatchingStrategy::OidcEmailToScimUsername]),
            Some(MatchingStrategy::OidcEmailToScimUsername)
        );
    }

    #[test]
    fn entra_pairwise_sub_matches_nothing_by_username_and_external_id_wins() {
        // The SSO user id is oid (what the report receives); userName is the UPN.
        let users = [scim("1", "alice@contoso.com", Some("oid-1")), scim("2", "bob@contoso.com", Some("oid-2"))];
        let idx = ScimIndex::new(&users);
        let seen = [
            sso("oid-1", "alice@contoso.com", "alice@contoso.com"),
            sso("oid-2", "bob@contoso.com", "bob@contoso.com"),
        ];
        let c = count_all(&idx, &seen);
        assert_eq!(counts_of(&c, MatchingStrategy::OidcSubToScimUsername), (0, 2, 0));
        assert_eq!(counts_of(&c, MatchingStrategy::OidcSubToScimExternalId), (2, 0, 0));
        assert_eq!(
            recommend(&c, &[MatchingStrategy::OidcSubToScimExternalId]),
            Some(MatchingStrategy::OidcSubToScimExternalId)
        );
    }

    #[test]
    fn the_strategy_matching_the_most_wins_even_against_the_default() {
        let users = [scim("1", "alice", None), scim("2", "bob", None)];
        let idx = ScimIndex::new(&users);
        let seen = [sso("s1", "alice@acme.com", "alice"), sso("s2", "bob@acme.com", "bob")];
        let c = count_all(&idx, &seen);
        assert_eq!(counts_of(&c, MatchingStrategy::OidcEmailToScimUsername), (0, 2, 0));
        // local part and preferred_username both match all; the default (email) matches none.
        let r = recommend(&c, &[MatchingStrategy::OidcEmailToScimUsername]).unwrap();
        assert!(matches!(
            r,
            MatchingStrategy::OidcEmailUsernameToScimUsername | MatchingStrategy::OidcPreferredUsernameToScimUsername
        ));
    }

    #[test]
    fn a_tie_goes_to_the_strategy_in_effect_then_to_the_default() {
        let users = [scim("1", "alice", None)];
        let idx = ScimIndex::new(&users);
        let c = count_all(&idx, &[sso("s1", "alice@acme.com", "alice")]);
        let (local, preferred) =
            (MatchingStrategy::OidcEmailUsernameToScimUsername, MatchingStrategy::OidcPreferredUsernameToScimUsername);
        assert_eq!(recommend(&c, &[preferred, local]), Some(preferred));
        assert_eq!(recommend(&c, &[local, preferred]), Some(local));
        // The strategy in effect matches less: the default among the tied.
        assert_eq!(recommend(&c, &[MatchingStrategy::OidcEmailToScimUsername, preferred]), Some(preferred));
        // Neither among the tied: the contract's order.
        let first_tied = MatchingStrategy::ALL.into_iter().find(|s| *s == local || *s == preferred);
        assert_eq!(recommend(&c, &[MatchingStrategy::OidcEmailToScimUsername]), first_tied);
    }

    #[test]
    fn candidates_say_which_strategies_would_match() {
        let users = [scim("1", "alice@acme.com", Some("00u1"))];
        let idx = ScimIndex::new(&users);
        let cands = idx.candidates(&sso("00u1", "alice@acme.com", "nobody"));
        assert_eq!(cands.len(), 1);
        assert!(cands[0].1.contains(&MatchingStrategy::OidcSubToScimExternalId));
        assert!(cands[0].1.contains(&MatchingStrategy::OidcEmailToScimUsername));
        assert!(!cands[0].1.contains(&MatchingStrategy::OidcPreferredUsernameToScimUsername));
    }

    #[test]
    fn nothing_seen_recommends_nothing() {
        let users = [scim("1", "a", None)];
        let idx = ScimIndex::new(&users);
        assert_eq!(recommend(&count_all(&idx, &[]), &[MatchingStrategy::OidcEmailToScimUsername]), None);
    }
}
