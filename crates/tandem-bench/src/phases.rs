//! The load phases, in order, and the bounded loop that drives each one:
//! a fixed number of operations at a fixed concurrency that stops issuing
//! requests at the phase's time limit. Warm-up and provisioning are not
//! measured.

use crate::client::{user_body, user_email, Api, Lookup, Scim};
use crate::measure::Probe;
use crate::report::{PhaseResult, Setup, Tally};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much load each phase gets.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    /// Users created in each of the two SCIM create phases.
    pub scim_users: usize,
    /// Lookups in each lookup phase.
    pub scim_gets: usize,
    /// Users the connection holds for the large lookup phases (0: skip them).
    pub lookup_users: usize,
    /// Membership PATCHes in each group phase.
    pub group_patches: usize,
    /// Logins in each login phase.
    pub logins: usize,
    pub concurrency: usize,
    pub phase_timeout_secs: u64,
    pub seed: u64,
}

/// Groups the membership phases spread over.
const GROUPS: usize = 10;
/// Index of the first warm-up user, far above any measured user.
const WARM_BASE: usize = 1_000_000_000;
/// Error messages kept per phase.
const SAMPLES: usize = 5;

type OpFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
type Op = Arc<dyn Fn(usize) -> OpFuture + Send + Sync>;

#[derive(Default)]
struct WorkerTally {
    latencies_us: Vec<f64>,
    ok: usize,
    errors: usize,
    samples: Vec<String>,
}

/// Runs `ops` operations on `concurrency` workers. Each worker takes `step`
/// consecutive indices at a time and runs them in order (so an operation
/// can rely on the one before it, e.g. add then remove a member). No new
/// operation starts after `limit`.
async fn drive(ops: usize, concurrency: usize, step: usize, limit: Duration, op: Op) -> Tally {
    let next = Arc::new(AtomicUsize::new(0));
    let timed_out = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + limit;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (next, timed_out, op) = (next.clone(), timed_out.clone(), op.clone());
        set.spawn(async move {
            let mut t = WorkerTally::default();
            'claim: loop {
                let first = next.fetch_add(step, Ordering::Relaxed);
                for i in first..(first + step).min(ops) {
                    if Instant::now() >= deadline {
                        timed_out.store(true, Ordering::Relaxed);
                        break 'claim;
                    }
                    let began = Instant::now();
                    let result = op(i).await;
                    t.latencies_us.push(began.elapsed().as_secs_f64() * 1e6);
                    match result {
                        Ok(()) => t.ok += 1,
                        Err(e) => {
                            t.errors += 1;
                            if t.samples.len() < SAMPLES {
                                t.samples.push(format!("{e:#}").chars().take(300).collect());
                            }
                        }
                    }
                }
                if first + step >= ops {
                    break;
                }
            }
            t
        });
    }
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(ops),
        ok: 0,
        errors: 0,
        error_samples: Vec::new(),
        timed_out: false,
        wall_s: 0.0,
    };
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(t) => {
                tally.latencies_us.extend(t.latencies_us);
                tally.ok += t.ok;
                tally.errors += t.errors;
                tally.error_samples.extend(t.samples);
            }
            Err(e) => {
                tally.errors += 1;
                tally.error_samples.push(format!("a load worker failed: {e}"));
            }
        }
    }
    tally.error_samples.truncate(SAMPLES);
    tally.timed_out = timed_out.load(Ordering::Relaxed);
    tally.wall_s = start.elapsed().as_secs_f64();
    tally
}

/// A small deterministic generator (SplitMix64) for picking users.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The phase name for a user count: `2k`, `100k`, or the count itself below 1000.
pub fn size_label(users: usize) -> String {
    if users >= 1000 {
        format!("{}k", (users + 500) / 1000)
    } else {
        users.to_string()
    }
}

/// The SCIM ids of the users created so far, by user index.
#[derive(Default)]
struct Users {
    ids: Mutex<Vec<(usize, String)>>,
}

impl Users {
    fn add(&self, index: usize, id: String) {
        self.ids.lock().unwrap_or_else(|p| p.into_inner()).push((index, id));
    }

    /// (index, id) of every user created so far, by index.
    fn snapshot(&self) -> Vec<(usize, String)> {
        let mut v = self.ids.lock().unwrap_or_else(|p| p.into_inner()).clone();
        v.sort_unstable();
        v
    }
}

/// Everything the phases share.
pub struct Bench {
    pub plan: Plan,
    pub api: Api,
    pub scim: Scim,
    pub probe: Probe,
    pub run_id: String,
    users: Arc<Users>,
    /// Called after each phase with its result (progress output).
    pub on_phase: fn(&PhaseResult),
}

/// What the phases produced.
#[derive(Default)]
pub struct Outcome {
    pub phases: Vec<PhaseResult>,
    pub setup: Vec<Setup>,
    /// The server's VmHWM (MiB) after the SCIM create and lookup phases.
    pub hwm_after_scim_mb: Option<f64>,
}

impl Bench {
    pub fn new(plan: Plan, api: Api, scim: Scim, probe: Probe, run_id: String, on_phase: fn(&PhaseResult)) -> Bench {
        Bench { plan, api, scim, probe, run_id, users: Arc::new(Users::default()), on_phase }
    }

    fn limit(&self) -> Duration {
        Duration::from_secs(self.plan.phase_timeout_secs)
    }

    fn c(&self) -> usize {
        self.plan.concurrency
    }

    /// Runs one measured phase.
    async fn measured(&self, out: &mut Outcome, name: &str, ops: usize, conc: usize, step: usize, op: Op) {
        let before = self.probe.snapshot();
        let tally = drive(ops, conc, step, self.limit(), op).await;
        let after = self.probe.snapshot();
        let cpu = self.probe.delta(&before, &after);
        let result = PhaseResult::new(name, ops, conc, tally, &cpu, self.probe.server_memory_mb());
        (self.on_phase)(&result);
        out.phases.push(result);
    }

    /// Runs an unmeasured step.
    async fn unmeasured(&self, out: &mut Outcome, step: &str, ops: usize, conc: usize, op: Op) {
        let t = drive(ops, conc, 1, self.limit(), op).await;
        let s =
            Setup { step: step.into(), ok: t.ok, errors: t.errors, wall_s: t.wall_s, error_samples: t.error_samples };
        eprintln!("  setup {step}: {} ok, {} errors in {:.1} s", s.ok, s.errors, s.wall_s);
        out.setup.push(s);
    }

    /// Creating user `first + i`, remembering its id.
    fn create_op(&self, first: usize) -> Op {
        let (scim, users, run) = (self.scim.clone(), self.users.clone(), self.run_id.clone());
        Arc::new(move |i| {
            let (scim, users, run) = (scim.clone(), users.clone(), run.clone());
            Box::pin(async move {
                let id = scim.create_user(&user_body(&run, first + i)).await?;
                users.add(first + i, id);
                Ok(())
            })
        })
    }

    /// `GET /healthz`: the floor every request pays (HTTP parsing and
    /// answering, loopback TCP, wake-ups) with no work behind it.
    fn health_op(&self) -> Op {
        let api = self.api.clone();
        Arc::new(move |_| {
            let api = api.clone();
            Box::pin(async move { api.healthz().await })
        })
    }

    /// Looking up `n` users picked at random among those created so far.
    fn lookup_op(&self, n: usize, rng: &mut SplitMix) -> Op {
        let created = self.users.snapshot();
        let picks: Arc<Vec<Lookup>> = Arc::new(if created.is_empty() {
            Vec::new()
        } else {
            (0..n).map(|_| self.scim.lookup(&user_email(&self.run_id, created[rng.below(created.len())].0))).collect()
        });
        let scim = self.scim.clone();
        Arc::new(move |i| {
            let (scim, picks) = (scim.clone(), picks.clone());
            Box::pin(async move {
                let Some(lookup) = picks.get(i) else { anyhow::bail!("no users to look up") };
                scim.find_user(lookup).await
            })
        })
    }

    /// Pair `p` = ops `2p` (add) and `2p + 1` (remove): member `users[first + p]` of group `p % GROUPS`.
    fn membership_op(&self, groups: &Arc<Vec<String>>, first: usize) -> Op {
        let members: Arc<Vec<String>> = Arc::new(self.users.snapshot().into_iter().map(|(_, id)| id).collect());
        let (scim, groups) = (self.scim.clone(), groups.clone());
        Arc::new(move |i| {
            let (scim, groups, members) = (scim.clone(), groups.clone(), members.clone());
            Box::pin(async move {
                let pair = i / 2;
                if members.is_empty() || groups.is_empty() {
                    anyhow::bail!("no users or groups to patch");
                }
                let member = &members[(first + pair) % members.len()];
                scim.patch_membership(&groups[pair % groups.len()], member, i % 2 == 0).await
            })
        })
    }

    /// Logging in users `first..` among those created (each exists in SCIM).
    fn login_op(&self, first: usize) -> Op {
        let created: Arc<Vec<String>> =
            Arc::new(self.users.snapshot().into_iter().map(|(i, _)| user_email(&self.run_id, i)).collect());
        let api = self.api.clone();
        Arc::new(move |i| {
            let (api, created) = (api.clone(), created.clone());
            Box::pin(async move {
                if created.is_empty() {
                    anyhow::bail!("no users to log in");
                }
                api.login(&created[(first + i) % created.len()]).await
            })
        })
    }

    /// Runs every phase in order.
    pub async fn run(&self) -> Outcome {
        let mut out = Outcome::default();
        let (n, c) = (self.plan.scim_users, self.c());
        let mut rng = SplitMix::new(self.plan.seed);

        // Warm-up: users of their own, lookups and logins of them.
        self.unmeasured(&mut out, "warm-up SCIM creates", 20, 1, self.create_op(WARM_BASE)).await;
        self.unmeasured(&mut out, "warm-up lookups", 20, 1, self.lookup_op(20, &mut rng)).await;
        self.unmeasured(&mut out, "warm-up logins", 5, 1, self.login_op(0)).await;

        let gets = self.plan.scim_gets;
        self.measured(&mut out, "healthz_seq", gets, 1, 1, self.health_op()).await;
        self.measured(&mut out, &format!("healthz_c{c}"), gets, c, 1, self.health_op()).await;

        self.measured(&mut out, "scim_post_seq", n, 1, 1, self.create_op(0)).await;
        self.measured(&mut out, &format!("scim_post_c{c}"), n, c, 1, self.create_op(n)).await;

        self.measured(&mut out, "scim_get_seq", gets, 1, 1, self.lookup_op(gets, &mut rng)).await;
        self.measured(&mut out, &format!("scim_get_c{c}"), gets, c, 1, self.lookup_op(gets, &mut rng)).await;
        out.hwm_after_scim_mb = self.probe.server_memory_mb().map(|m| (m.1 * 10.0).round() / 10.0);

        if self.plan.lookup_users > 0 {
            let have = self.users.snapshot().len();
            if self.plan.lookup_users > have {
                let more = self.plan.lookup_users - have;
                self.unmeasured(&mut out, &format!("provision {more} users"), more, c, self.create_op(2 * n)).await;
            }
            let size = size_label(self.users.snapshot().len());
            self.measured(&mut out, &format!("scim_get_{size}_seq"), gets, 1, 1, self.lookup_op(gets, &mut rng)).await;
            let name = format!("scim_get_{size}_c{c}");
            self.measured(&mut out, &name, gets, c, 1, self.lookup_op(gets, &mut rng)).await;
        }

        let groups = Arc::new(self.create_groups(&mut out).await);
        let last = self.users.snapshot().len().saturating_sub(1);
        self.unmeasured(&mut out, "warm-up group patches", 2, 1, self.membership_op(&groups, last)).await;
        let m = self.plan.group_patches;
        self.measured(&mut out, "group_patch_seq", m, 1, 2, self.membership_op(&groups, 0)).await;
        let op = self.membership_op(&groups, m / 2 + 1);
        self.measured(&mut out, &format!("group_patch_c{c}"), m, c, 2, op).await;

        let l = self.plan.logins;
        self.measured(&mut out, "login_seq", l, 1, 1, self.login_op(5)).await;
        self.measured(&mut out, &format!("login_c{c}"), l, c, 1, self.login_op(5 + l)).await;
        out
    }

    async fn create_groups(&self, out: &mut Outcome) -> Vec<String> {
        let start = Instant::now();
        let mut ids = Vec::new();
        let mut setup = Setup { step: format!("create {GROUPS} groups"), ..Default::default() };
        for g in 0..GROUPS {
            match self.scim.create_group(&format!("bench-{}-group-{g}", self.run_id)).await {
                Ok(id) => ids.push(id),
                Err(e) => {
                    setup.errors += 1;
                    setup.error_samples.push(format!("{e:#}"));
                }
            }
        }
        setup.ok = ids.len();
        setup.wall_s = start.elapsed().as_secs_f64();
        out.setup.push(setup);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(seen: Arc<Mutex<Vec<usize>>>, fail_every: usize) -> Op {
        Arc::new(move |i| {
            let seen = seen.clone();
            Box::pin(async move {
                seen.lock().unwrap().push(i);
                if fail_every > 0 && i % fail_every == 0 {
                    anyhow::bail!("op {i} failed");
                }
                Ok(())
            })
        })
    }

    #[tokio::test]
    async fn every_index_runs_once_and_failures_are_counted() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let t = drive(103, 8, 1, Duration::from_secs(30), recording(seen.clone(), 10)).await;
        let mut s = seen.lock().unwrap().clone();
        s.sort_unstable();
        assert_eq!(s, (0..103).collect::<Vec<_>>());
        assert_eq!((t.ok, t.errors, t.latencies_us.len(), t.timed_out), (92, 11, 103, false));
        assert_eq!(t.error_samples.len(), SAMPLES);
    }

    #[tokio::test]
    async fn steps_keep_pairs_on_one_worker_in_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        drive(40, 4, 2, Duration::from_secs(30), recording(seen.clone(), 0)).await;
        let s = seen.lock().unwrap().clone();
        for pair in 0..20 {
            let a = s.iter().position(|&i| i == 2 * pair).unwrap();
            let b = s.iter().position(|&i| i == 2 * pair + 1).unwrap();
            assert!(a < b, "add of pair {pair} ran after its remove");
        }
    }

    #[tokio::test]
    async fn no_operation_starts_after_the_limit() {
        let op: Op = Arc::new(|_| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(())
            })
        });
        let t = drive(1_000_000, 2, 1, Duration::from_millis(100), op).await;
        assert!(t.timed_out);
        assert!(t.ok < 30, "{} ops ran", t.ok);
    }

    #[test]
    fn sizes_are_labelled_in_thousands() {
        assert_eq!(size_label(100_040), "100k");
        assert_eq!(size_label(2_040), "2k");
        assert_eq!(size_label(640), "640");
    }

    #[test]
    fn picks_are_deterministic_and_in_range() {
        let mut a = SplitMix::new(42);
        let mut b = SplitMix::new(42);
        for _ in 0..1000 {
            let x = a.below(7);
            assert_eq!(x, b.below(7));
            assert!(x < 7);
        }
    }
}
