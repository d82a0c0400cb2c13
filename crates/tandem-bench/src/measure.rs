//! Measurement: latency percentiles, and CPU time and memory read from
//! `/proc` (the server, this process, the stub IdP's threads, PostgreSQL
//! backends, the whole machine) as snapshots taken around each phase.

use std::collections::HashMap;
use std::time::Instant;

/// The nearest-rank percentile `p` (0–100] of ascending `sorted` values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The fields of `/proc/<pid>/stat` (or `/proc/<pid>/task/<tid>/stat`) used here, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    pub ppid: u32,
    pub utime: u64,
    pub stime: u64,
    /// CPU of reaped children.
    pub cutime: u64,
    pub cstime: u64,
}

impl ProcStat {
    /// utime + stime.
    pub fn own(&self) -> u64 {
        self.utime + self.stime
    }
}

/// Parses a `stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        ppid: u32::try_from(num(4)?).ok()?,
        utime: num(14)?,
        stime: num(15)?,
        cutime: num(16)?,
        cstime: num(17)?,
    })
}

/// The command name (field 2) of a `stat` line.
pub fn stat_comm(line: &str) -> Option<&str> {
    Some(&line[line.find('(')? + 1..line.rfind(')')?])
}

/// A `kB` value of `/proc/<pid>/status`, e.g. `VmRSS`.
pub fn status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let value = l.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Busy clock ticks of the whole machine from the `cpu` line of `/proc/stat`
/// (everything except idle and iowait; guest time is already in user).
pub fn parse_machine_busy(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
    let total: u64 = f.iter().take(8).sum();
    Some(total - f.get(3)? - f.get(4).copied().unwrap_or(0))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux in practice).
pub fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// utime + stime of a process (all its threads, live and exited), in ticks.
pub fn process_ticks(pid: u32) -> Option<u64> {
    parse_stat(&read(&format!("/proc/{pid}/stat"))?).map(|s| s.own())
}

/// Resident memory of a process: (VmRSS, VmHWM) in kB.
pub fn process_memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = read(&format!("/proc/{pid}/status"))?;
    Some((status_kb(&status, "VmRSS")?, status_kb(&status, "VmHWM")?))
}

/// Nanoseconds on CPU, the first field of `/proc/<pid>/task/<tid>/schedstat`.
pub fn parse_schedstat(line: &str) -> Option<u64> {
    line.split_whitespace().next()?.parse().ok()
}

/// CPU seconds of this process's threads whose name satisfies `pick`: from
/// `schedstat` (nanoseconds) where the kernel provides it, else from ticks.
pub fn own_threads_secs(pick: impl Fn(&str) -> bool, ticks_per_sec: f64) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let (mut ns, mut ticks, mut all_ns) = (0u64, 0u64, true);
    for task in dir.flatten().map(|e| e.path()) {
        let Some(stat) = read(&format!("{}/stat", task.display())) else { continue };
        if !stat_comm(&stat).is_some_and(&pick) {
            continue;
        }
        ticks += parse_stat(&stat).map(|s| s.own()).unwrap_or(0);
        match read(&format!("{}/schedstat", task.display())).as_deref().and_then(parse_schedstat) {
            Some(n) => ns += n,
            None => all_ns = false,
        }
    }
    if all_ns {
        ns as f64 / 1e9
    } else {
        ticks as f64 / ticks_per_sec
    }
}

/// Whether a PostgreSQL process title (its `cmdline`) is a backend connected to `db`:
/// `postgres: [<cluster_name>: ]<user> <db> <host>(<port>) <state>`.
pub fn is_backend_of(cmdline: &str, db: &str) -> bool {
    let title = cmdline.trim_end_matches('\0').replace('\0', " ");
    let Some(rest) = title.strip_prefix("postgres: ") else { return false };
    let mut words = rest.split_whitespace().peekable();
    if words.peek().is_some_and(|w| w.ends_with(':')) {
        words.next();
    }
    let _user = words.next();
    words.next() == Some(db) && words.next().is_some_and(|w| w.contains('('))
}

/// Finds the PostgreSQL backends serving one database on this machine, by
/// their process titles, and the postmaster they belong to.
#[derive(Clone, Debug)]
pub struct PgWatch {
    pub database: String,
}

/// CPU of the PostgreSQL processes at one instant.
#[derive(Clone, Debug, Default)]
pub struct PgSample {
    /// Ticks per backend of the watched database.
    pub backends: HashMap<u32, u64>,
    /// Ticks of the postmaster, its reaped children and its live children (the whole cluster).
    pub cluster: Option<u64>,
}

impl PgWatch {
    /// The current backends' ticks, and the cluster's.
    pub fn sample(&self) -> PgSample {
        let mut sample = PgSample::default();
        let mut postmaster = None;
        let mut all: Vec<(u32, ProcStat)> = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else { return sample };
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Some(stat) = read(&format!("/proc/{pid}/stat")).and_then(|l| parse_stat(&l)) else { continue };
            all.push((pid, stat));
            let Some(cmdline) = read(&format!("/proc/{pid}/cmdline")) else { continue };
            if is_backend_of(&cmdline, &self.database) {
                sample.backends.insert(pid, stat.own());
                postmaster = Some(stat.ppid);
            }
        }
        if let Some(pm) = postmaster {
            let root = all.iter().find(|(p, _)| *p == pm).map(|(_, s)| s.own() + s.cutime + s.cstime);
            let children: u64 = all.iter().filter(|(_, s)| s.ppid == pm).map(|(_, s)| s.own()).sum();
            sample.cluster = root.map(|r| r + children);
        }
        sample
    }
}

impl PgSample {
    /// Backend ticks spent between `self` and the later `after`: backends
    /// present in both count their difference, new ones all their time
    /// (a backend that exited in between is not counted).
    pub fn backend_ticks_until(&self, after: &PgSample) -> u64 {
        after.backends.iter().map(|(pid, t)| t.saturating_sub(self.backends.get(pid).copied().unwrap_or(0))).sum()
    }
}

/// What is measured around a phase.
#[derive(Clone, Debug)]
pub struct Probe {
    pub server_pid: Option<u32>,
    pub pg: Option<PgWatch>,
    pub ticks_per_sec: f64,
    /// Whether a thread of this process belongs to the stub IdP.
    pub idp_thread: fn(&str) -> bool,
}

/// One snapshot.
#[derive(Clone, Debug)]
pub struct Snapshot {
    at: Instant,
    server: Option<u64>,
    bench: Option<u64>,
    idp_s: f64,
    pg: Option<PgSample>,
    machine: Option<u64>,
}

/// CPU seconds between two snapshots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuDelta {
    pub wall_s: f64,
    pub server_s: Option<f64>,
    /// This whole process: load driver, HTTP client, stub IdP.
    pub bench_s: Option<f64>,
    /// The stub IdP's threads alone (part of `bench_s`), at nanosecond resolution where available.
    pub idp_s: f64,
    /// PostgreSQL backends of the watched database.
    pub pg_s: Option<f64>,
    /// The whole PostgreSQL cluster (postmaster and all its children).
    pub pg_cluster_s: Option<f64>,
    /// Busy CPU of everything else on the machine.
    pub other_s: Option<f64>,
}

impl Probe {
    /// Takes a snapshot now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            server: self.server_pid.and_then(process_ticks),
            bench: process_ticks(std::process::id()),
            idp_s: own_threads_secs(self.idp_thread, self.ticks_per_sec),
            pg: self.pg.as_ref().map(PgWatch::sample),
            machine: read("/proc/stat").and_then(|s| parse_machine_busy(&s)),
        }
    }

    /// The CPU spent between `before` and `after`.
    pub fn delta(&self, before: &Snapshot, after: &Snapshot) -> CpuDelta {
        let secs = |t: u64| t as f64 / self.ticks_per_sec;
        let diff = |a: Option<u64>, b: Option<u64>| Some(secs(b?.saturating_sub(a?)));
        let server_s = diff(before.server, after.server);
        let bench_s = diff(before.bench, after.bench);
        let (pg_s, pg_cluster_s) = match (&before.pg, &after.pg) {
            (Some(a), Some(b)) => (Some(secs(a.backend_ticks_until(b))), diff(a.cluster, b.cluster)),
            _ => (None, None),
        };
        let machine = diff(before.machine, after.machine);
        let other_s = machine.map(|m| m - server_s.unwrap_or(0.0) - bench_s.unwrap_or(0.0) - pg_s.unwrap_or(0.0));
        CpuDelta {
            wall_s: after.at.duration_since(before.at).as_secs_f64(),
            server_s,
            bench_s,
            idp_s: (after.idp_s - before.idp_s).max(0.0),
            pg_s,
            pg_cluster_s,
            other_s,
        }
    }

    /// The server's (VmRSS, VmHWM) in MiB.
    pub fn server_memory_mb(&self) -> Option<(f64, f64)> {
        let (rss, hwm) = process_memory_kb(self.server_pid?)?;
        Some((rss as f64 / 1024.0, hwm as f64 / 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.1), Some(1.0));
        let few = [1.0, 2.0, 3.0];
        assert_eq!(percentile(&few, 50.0), Some(2.0));
        assert_eq!(percentile(&few, 99.0), Some(3.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line = "4242 (tokio (runtime) w) S 1 4242 4242 0 -1 4194560 1234 0 0 0 731 129 5 7 20 0 9 0 \
                    12345 1048576000 5120 18446744073709551615 1 1 0 0 0 0 0 4096 17663 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s, ProcStat { ppid: 1, utime: 731, stime: 129, cutime: 5, cstime: 7 });
        assert_eq!(s.own(), 860);
        assert_eq!(stat_comm(line), Some("tokio (runtime) w"));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_values_are_read_in_kb() {
        let status = "Name:\ttandem\nVmPeak:\t  900000 kB\nVmHWM:\t   48128 kB\nVmRSS:\t   17408 kB\nThreads:\t9\n";
        assert_eq!(status_kb(status, "VmRSS"), Some(17408));
        assert_eq!(status_kb(status, "VmHWM"), Some(48128));
        assert_eq!(status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn machine_busy_excludes_idle_and_iowait() {
        let s = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\nintr 1\n";
        assert_eq!(parse_machine_busy(s), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(parse_machine_busy("intr 1"), None);
    }

    #[test]
    fn schedstat_gives_nanoseconds_on_cpu() {
        assert_eq!(parse_schedstat("384150 110276 1\n"), Some(384150));
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn postgres_backends_are_recognised_by_database() {
        assert!(is_backend_of("postgres: postgres bench_x 127.0.0.1(51234) idle\0\0\0", "bench_x"));
        assert!(is_backend_of("postgres: app bench_x 127.0.0.1(51234) SELECT", "bench_x"));
        assert!(!is_backend_of("postgres: postgres bench_y 127.0.0.1(51234) idle", "bench_x"));
        assert!(is_backend_of("postgres: 15/main: postgres bench_x 127.0.0.1(40012) idle", "bench_x"));
        assert!(!is_backend_of("postgres: 15/main: checkpointer", "bench_x"));
        assert!(!is_backend_of("postgres: checkpointer ", "bench_x"));
        assert!(!is_backend_of("postgres: walwriter bench_x", "bench_x"));
        assert!(!is_backend_of("/usr/lib/postgresql/15/bin/postgres\0-D\0/var/lib/x\0", "bench_x"));
    }

    #[test]
    fn backend_cpu_counts_new_backends_whole() {
        let before = PgSample { backends: HashMap::from([(10, 100), (11, 50)]), cluster: Some(1000) };
        let after = PgSample { backends: HashMap::from([(10, 130), (11, 50), (12, 7)]), cluster: Some(1100) };
        assert_eq!(before.backend_ticks_until(&after), 30 + 7);
    }
}
