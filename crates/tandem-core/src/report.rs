//! The SCIM matching report: for the SSO users seen on a client and the
//! users of its SCIM connection, what every strategy would match — so an
//! admin picks a strategy with evidence instead of toggling until a list of
//! unmatched users empties.
//!
//! Both sides are reduced to match keys once and counted in hash maps, so a
//! report over 100k SSO users and 100k SCIM users is a few hash lookups per
//! user and strategy.

use crate::login::{decide_by_id, decide_shared_key, owner_of, Candidate, JoinOutcome, NotActiveReason};
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

/// What one strategy does to one SSO user, as its login would decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// One SCIM user, by its index (inactive ones included: the login
    /// finds them and refuses them as deactivated).
    Matched(usize),
    /// None, or only deleted ones.
    Unmatched,
    /// Several SCIM users, or (by local part) one live user and another
    /// person's tombstone: never a match.
    Ambiguous,
}

/// The SCIM users indexed by every key a strategy compares.
pub struct ScimIndex<'a> {
    users: &'a [ScimSide],
    by_key: HashMap<ScimKey, HashMap<String, Vec<usize>>>,
    /// Per lower-cased local part, the deleted userNames (lower-cased) and
    /// the id of each one's latest tombstone: the tombstones a local-part
    /// login weighs (see [`crate::login::decide_shared_key`]).
    deleted_by_local: HashMap<String, HashMap<String, String>>,
    /// `emails` values (any case) of the live users (by index) and
    /// tombstones (by id) that a local-part verdict needs: see
    /// [`ScimIndex::owners_needed`].
    live_emails: HashMap<usize, Vec<String>>,
    deleted_emails: HashMap<String, Vec<String>>,
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
        ScimIndex {
            users,
            by_key,
            deleted_by_local: HashMap::new(),
            live_emails: HashMap::new(),
            deleted_emails: HashMap::new(),
        }
    }

    /// Adds the connection's deleted users, oldest first (by id, as the
    /// login orders them): per userName, the latest tombstone is the one a
    /// local-part login weighs.
    pub fn add_deleted(&mut self, deleted: &[ScimSide]) {
        for d in deleted {
            let names = self.deleted_by_local.entry(local_part_lower(&d.user_name)).or_default();
            names.insert(d.user_name.to_lowercase(), d.id.clone());
        }
    }

    /// The deleted userNames under `user`'s local part other than its own,
    /// with their latest tombstones' ids: other people, under a shared key.
    fn others_deleted(&self, user: &ScimSide) -> impl Iterator<Item = (&String, &String)> {
        let own = user.user_name.to_lowercase();
        self.deleted_by_local
            .get(&local_part_lower(&user.user_name))
            .into_iter()
            .flatten()
            .filter(move |(name, _)| **name != own)
    }

    /// Whose `emails` the local-part verdicts of `sso` need: the live users
    /// (indexes) an SSO user's local part finds alone under another email
    /// than their userName, and those sharing their local part with another
    /// userName's tombstone, with those tombstones (ids). Such a login is
    /// decided by whose its full email is; give them with
    /// [`ScimIndex::set_live_emails`] and [`ScimIndex::set_deleted_emails`].
    /// Only a local part one live user has: several are ambiguous whoever
    /// signs in, so each tombstone is named at most once.
    pub fn owners_needed(&self, sso: &[SsoSide]) -> (Vec<usize>, Vec<String>) {
        let mut live = Vec::new();
        for s in sso {
            let email = s.email.as_deref().map(str::to_lowercase);
            if let [one] = self.lookup(MatchingStrategy::OidcEmailUsernameToScimUsername, s) {
                if email.as_deref() != Some(self.users[*one].user_name.to_lowercase().as_str()) {
                    live.push(*one);
                }
            }
        }
        let mut deleted = Vec::new();
        let by_local = self.by_key.get(&ScimKey::UserNameLocalLower);
        for (i, u) in self.users.iter().enumerate() {
            let sole = by_local.and_then(|m| m.get(&local_part_lower(&u.user_name))).is_some_and(|v| v.len() == 1);
            if !sole {
                continue;
            }
            let mut others = self.others_deleted(u).peekable();
            if others.peek().is_some() {
                live.push(i);
                deleted.extend(others.map(|(_, id)| id.clone()));
            }
        }
        live.sort_unstable();
        live.dedup();
        deleted.sort_unstable();
        deleted.dedup();
        (live, deleted)
    }

    /// A live user's `emails` values (any case).
    pub fn set_live_emails(&mut self, index: usize, emails: Vec<String>) {
        self.live_emails.insert(index, emails);
    }

    /// A tombstone's `emails` values (any case).
    pub fn set_deleted_emails(&mut self, id: &str, emails: Vec<String>) {
        self.deleted_emails.insert(id.to_string(), emails);
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

    /// The verdict of a strategy for one SSO user: the login's
    /// ([`crate::login::decide`], and [`crate::login::decide_shared_key`]
    /// by local part, where a tombstone of another userName is another
    /// person: the login's email then says whom it is).
    pub fn verdict(&self, strategy: MatchingStrategy, sso: &SsoSide) -> Verdict {
        match self.lookup(strategy, sso) {
            [] => Verdict::Unmatched,
            [one] if strategy == MatchingStrategy::OidcEmailUsernameToScimUsername => self.by_local_part(*one, sso),
            [one] => Verdict::Matched(*one),
            several if strategy.scim_key() == ScimKey::ExternalId => {
                let found: Vec<Candidate> =
                    several.iter().map(|&i| Candidate { live: true, active: self.users[i].active }).collect();
                match decide_by_id(&found) {
                    JoinOutcome::Matched(k) => Verdict::Matched(several[k]),
                    // Found, and refused as deactivated (counted as matched).
                    JoinOutcome::NotActive(_) => Verdict::Matched(several[0]),
                    JoinOutcome::Ambiguous(_) => Verdict::Ambiguous,
                }
            }
            _ => Verdict::Ambiguous,
        }
    }

    /// [`ScimIndex::verdict`] by local part when one live user matched:
    /// decided by the login's own rule, over the live user and the other
    /// userNames' tombstones, each owning the login's email or not.
    fn by_local_part(&self, one: usize, sso: &SsoSide) -> Verdict {
        let user = &self.users[one];
        let email = sso.email.as_deref().map(str::to_lowercase).unwrap_or_default();
        let owner = |name: &str, emails: Option<&Vec<String>>| {
            owner_of(name, emails.into_iter().flatten().map(String::as_str), &email)
        };
        let own = user.user_name.to_lowercase();
        let mut candidates = vec![Candidate { live: true, active: user.active }];
        let mut owns = vec![owner(&own, self.live_emails.get(&one))];
        let mut names = vec![own.as_str()];
        for (name, id) in self.others_deleted(user) {
            candidates.push(Candidate { live: false, active: false });
            owns.push(owner(name, self.deleted_emails.get(id)));
            names.push(name);
        }
        match decide_shared_key(&candidates, &names, &owns) {
            // Deactivated: found, and refused as such (counted as matched).
            JoinOutcome::Matched(_) | JoinOutcome::NotActive(NotActiveReason::Deactivated) => Verdict::Matched(one),
            JoinOutcome::NotActive(_) => Verdict::Unmatched,
            JoinOutcome::Ambiguous(_) => Verdict::Ambiguous,
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
            // Per SCIM user matched: how many SSO users, and their emails
            // (an identity without one is nobody else's: a person apart).
            let mut joined: HashMap<usize, (usize, Vec<Option<String>>)> = HashMap::new();
            for s in sso {
                match index.verdict(strategy, s) {
                    Verdict::Matched(i) => {
                        c.matched += 1;
                        let (n, emails) = joined.entry(i).or_default();
                        *n += 1;
                        match s.email.as_deref().map(str::to_lowercase) {
                            Some(e) if emails.contains(&Some(e.clone())) => {}
                            e => emails.push(e),
                        }
                        if !index.users[i].active {
                            c.matched_inactive += 1;
                        }
                    }
                    Verdict::Unmatched => c.unmatched += 1,
                    Verdict::Ambiguous => c.ambiguous += 1,
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
        // Two identities without an email are two people as far as anyone can tell.
        let no_email = |id: &str| SsoSide { email: None, ..sso(id, "", "admin") };
        let c = count_all(&ScimIndex::new(&[scim("1", "admin", None)]), &[no_email("a"), no_email("b")]);
        let pu = c.iter().find(|x| x.strategy == MatchingStrategy::OidcPreferredUsernameToScimUsername).unwrap();
        assert_eq!((pu.matched, pu.shared), (2, 2));
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

    /// By local part, a tombstone of another userName is another person:
    /// the login's email says whom it is, as the login decides.
    #[test]
    fn by_local_part_another_usernames_tombstone_is_weighed_as_the_login_does() {
        let users = [scim("live", "john@fabrikam.com", None), scim("upn", "mary@corp.example", None)];
        let gone = [
            scim("t1", "john@contoso.com", None),
            scim("t2", "John@Fabrikam.com", None),
            scim("t3", "mary@old.example", None),
        ];
        let mut idx = ScimIndex::new(&users);
        idx.add_deleted(&gone);
        let (live, deleted) = idx.owners_needed(&[]);
        assert_eq!(live, [0, 1]);
        assert_eq!(deleted, ["t1", "t3"], "the live user's own name deleted before is the same person");
        idx.set_live_emails(1, vec!["Mary@Contoso.com".into()]);
        idx.set_deleted_emails("t3", vec!["mary@old-alias.example".into()]);
        let local = MatchingStrategy::OidcEmailUsernameToScimUsername;
        let v = |email: &str| idx.verdict(local, &sso("s", email, "x"));
        assert_eq!(v("John@Fabrikam.com"), Verdict::Matched(0));
        assert_eq!(v("john@contoso.com"), Verdict::Unmatched, "the deleted user's login says deleted");
        assert_eq!(v("john@elsewhere.example"), Verdict::Ambiguous);
        assert_eq!(v("mary@contoso.com"), Verdict::Matched(1), "known by its emails");
        assert_eq!(v("mary@old-alias.example"), Verdict::Unmatched, "a tombstone is known by its emails too");
        assert_eq!(v("mary@elsewhere.example"), Verdict::Unmatched, "its own emails say it is someone else");
        // Other strategies are not affected.
        assert_eq!(
            idx.verdict(MatchingStrategy::OidcEmailToScimUsername, &sso("s", "john@fabrikam.com", "x")),
            Verdict::Matched(0)
        );
        let c = count_all(&idx, &[sso("a", "john@contoso.com", "x"), sso("b", "john@fabrikam.com", "x")]);
        assert_eq!(counts_of(&c, local), (1, 1, 0));
        // A local part two live users have is ambiguous whoever signs in: no emails needed.
        let users = [scim("a", "x@a.example", None), scim("b", "x@b.example", None)];
        let mut idx = ScimIndex::new(&users);
        idx.add_deleted(&[scim("t", "x@c.example", None)]);
        assert_eq!(idx.owners_needed(&[sso("s", "x@c.example", "x")]), (vec![], vec![]));
        assert_eq!(idx.verdict(local, &sso("s", "x@c.example", "x")), Verdict::Ambiguous);
    }

    /// By local part, one live user found under another email than its
    /// userName is known by its emails: someone else's email is not joined
    /// to it (an unprovisioned namesake of another domain).
    #[test]
    fn by_local_part_a_live_users_own_emails_say_whose_an_email_is() {
        let users =
            [scim("ad", "jsmith@corp.local", None), scim("bare", "mjones", None), scim("c", "ann@contoso.com", None)];
        let mut idx = ScimIndex::new(&users);
        let seen = [
            sso("1", "jsmith@acme.com", "x"),
            sso("2", "jsmith@vendor.example", "x"),
            sso("3", "mjones@acme.com", "x"),
            sso("4", "ann@contoso.com", "x"),
            sso("5", "ann@fabrikam.com", "x"),
        ];
        // Asked for: the users found under another email than their userName.
        assert_eq!(idx.owners_needed(&seen), (vec![0, 1, 2], vec![]));
        idx.set_live_emails(0, vec!["JSmith@Acme.com".into()]);
        idx.set_live_emails(1, vec![]);
        idx.set_live_emails(2, vec!["ann@contoso.com".into()]);
        let local = MatchingStrategy::OidcEmailUsernameToScimUsername;
        let v: Vec<Verdict> = seen.iter().map(|s| idx.verdict(local, s)).collect();
        assert_eq!(
            v,
            [Verdict::Matched(0), Verdict::Unmatched, Verdict::Matched(1), Verdict::Matched(2), Verdict::Unmatched],
            "no emails to go by: a match, as before"
        );
        assert_eq!(counts_of(&count_all(&idx, &seen), local), (3, 2, 0));
    }

    #[test]
    fn nothing_seen_recommends_nothing() {
        let users = [scim("1", "a", None)];
        let idx = ScimIndex::new(&users);
        assert_eq!(recommend(&count_all(&idx, &[]), &[MatchingStrategy::OidcEmailToScimUsername]), None);
    }
}
