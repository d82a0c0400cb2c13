//! What a run reports: one result per phase, memory, the targets Tandem is
//! held to, printed as a table and written as JSON.

use crate::measure::{percentile, CpuDelta};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One measured phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PhaseResult {
    pub phase: String,
    pub requested: usize,
    pub concurrency: usize,
    pub ok: usize,
    pub errors: usize,
    /// The phase stopped issuing requests at its time limit.
    pub timed_out: bool,
    pub wall_s: f64,
    pub ops_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Tandem's CPU (utime + stime of its process) over the phase.
    pub server_cpu_s: Option<f64>,
    pub server_cpu_us_per_op: Option<f64>,
    /// PostgreSQL backends serving Tandem's database.
    pub pg_cpu_s: Option<f64>,
    pub pg_cpu_us_per_op: Option<f64>,
    /// The whole PostgreSQL cluster (postmaster and all children, other databases included).
    pub pg_cluster_cpu_s: Option<f64>,
    /// The stub IdP's threads in this process.
    pub idp_cpu_s: f64,
    pub idp_cpu_us_per_op: Option<f64>,
    /// This whole process: load driver, HTTP client and stub IdP.
    pub bench_cpu_s: Option<f64>,
    pub bench_cpu_us_per_op: Option<f64>,
    /// Busy CPU of every other process on the machine during the phase.
    pub other_cpu_s: Option<f64>,
    pub server_vmrss_mb: Option<f64>,
    pub server_vmhwm_mb: Option<f64>,
    pub error_samples: Vec<String>,
}

/// What a phase's load loop returns.
pub struct Tally {
    /// Latency of each finished operation, in microseconds (any order).
    pub latencies_us: Vec<f64>,
    pub ok: usize,
    pub errors: usize,
    pub error_samples: Vec<String>,
    pub timed_out: bool,
    pub wall_s: f64,
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

impl PhaseResult {
    /// Builds the result from the load loop's tally, the CPU spent and the server's (VmRSS, VmHWM).
    pub fn new(
        phase: &str,
        requested: usize,
        concurrency: usize,
        mut tally: Tally,
        cpu: &CpuDelta,
        memory: Option<(f64, f64)>,
    ) -> PhaseResult {
        tally.latencies_us.sort_by(f64::total_cmp);
        let ms = |p: f64| percentile(&tally.latencies_us, p).map(|us| round(us / 1000.0, 3));
        let ok = tally.ok;
        let per_op = |s: Option<f64>| s.filter(|_| ok > 0).map(|s| round(s * 1e6 / ok as f64, 1));
        let secs = |s: Option<f64>| s.map(|s| round(s, 3));
        PhaseResult {
            phase: phase.to_string(),
            requested,
            concurrency,
            ok,
            errors: tally.errors,
            timed_out: tally.timed_out,
            wall_s: round(tally.wall_s, 3),
            ops_per_s: if tally.wall_s > 0.0 { round(ok as f64 / tally.wall_s, 1) } else { 0.0 },
            p50_ms: ms(50.0),
            p90_ms: ms(90.0),
            p99_ms: ms(99.0),
            max_ms: tally.latencies_us.last().map(|us| round(us / 1000.0, 3)),
            server_cpu_s: secs(cpu.server_s),
            server_cpu_us_per_op: per_op(cpu.server_s),
            pg_cpu_s: secs(cpu.pg_s),
            pg_cpu_us_per_op: per_op(cpu.pg_s),
            pg_cluster_cpu_s: secs(cpu.pg_cluster_s),
            idp_cpu_s: round(cpu.idp_s, 3),
            idp_cpu_us_per_op: per_op(Some(cpu.idp_s)),
            bench_cpu_s: secs(cpu.bench_s),
            bench_cpu_us_per_op: per_op(cpu.bench_s),
            other_cpu_s: secs(cpu.other_s),
            server_vmrss_mb: memory.map(|m| round(m.0, 1)),
            server_vmhwm_mb: memory.map(|m| round(m.1, 1)),
            error_samples: tally.error_samples,
        }
    }
}

/// Tandem's resident memory over the run, in MiB.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Memory {
    /// VmRSS once started and set up, before any load.
    pub idle_rss_mb: Option<f64>,
    /// VmHWM after the SCIM create and lookup phases (≈ 2 × scim_users users).
    pub hwm_after_scim_mb: Option<f64>,
    /// VmHWM (peak RSS) at the end.
    pub hwm_final_mb: Option<f64>,
    pub rss_final_mb: Option<f64>,
}

/// Untimed work done to reach a phase's starting point.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Setup {
    pub step: String,
    pub ok: usize,
    pub errors: usize,
    pub wall_s: f64,
    pub error_samples: Vec<String>,
}

/// One target Tandem is held to, and whether the run meets it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub what: String,
    pub measured: f64,
    pub limit: f64,
    /// `true`: the measured value must be at most the limit; `false`: at least.
    pub at_most: bool,
    pub met: bool,
}

/// A whole run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub label: String,
    pub mode: String,
    pub backend: String,
    pub started: String,
    pub cpus: usize,
    pub clk_tck: f64,
    pub server_pid: Option<u32>,
    pub plan: serde_json::Value,
    /// The ID-token signing algorithm of the stub IdP.
    #[serde(default)]
    pub id_token_alg: String,
    pub memory: Memory,
    pub setup: Vec<Setup>,
    pub phases: Vec<PhaseResult>,
    pub targets: Vec<Target>,
    /// Failed operations over all phases and setup steps.
    pub errors: usize,
}

fn target(what: &str, measured: Option<f64>, limit: f64, at_most: bool) -> Option<Target> {
    let measured = measured?;
    let met = if at_most { measured <= limit } else { measured >= limit };
    Some(Target { what: what.to_string(), measured, limit, at_most, met })
}

/// The targets that apply to the phases this run has.
pub fn targets(phases: &[PhaseResult], memory: &Memory, backend: &str, conc: usize) -> Vec<Target> {
    let find = |name: &str| phases.iter().find(|p| p.phase == name);
    let mut out = Vec::new();
    for name in ["login_seq".to_string(), format!("login_c{conc}")] {
        if let Some(p) = find(&name) {
            out.extend(target(&format!("{name}: Tandem CPU µs per full login"), p.server_cpu_us_per_op, 300.0, true));
        }
    }
    for name in ["scim_post_seq".to_string(), format!("scim_post_c{conc}")] {
        if let Some(p) = find(&name) {
            out.extend(target(&format!("{name}: Tandem CPU µs per SCIM create"), p.server_cpu_us_per_op, 100.0, true));
        }
    }
    if backend == "sqlite" {
        if let Some(p) = find(&format!("scim_post_c{conc}")) {
            out.extend(target(&format!("scim_post_c{conc}: creates/s on SQLite"), Some(p.ops_per_s), 8000.0, false));
        }
    }
    for (name, throughput) in [("scim_get_100k_seq".to_string(), false), (format!("scim_get_100k_c{conc}"), true)] {
        if let Some(p) = find(&name) {
            if throughput {
                out.extend(target(&format!("{name}: userName lookups/s"), Some(p.ops_per_s), 15000.0, false));
            }
            out.extend(target(&format!("{name}: p99 ms"), p.p99_ms, 5.0, true));
        }
    }
    // The targets are in MB (10^6 bytes); RSS is read in MiB.
    let mib = |mb: f64| mb * 1e6 / 1_048_576.0;
    out.extend(target("idle RSS MiB (20 MB)", memory.idle_rss_mb, mib(20.0), true));
    out.extend(target("peak RSS (VmHWM) MiB (64 MB)", memory.hwm_final_mb, mib(64.0), true));
    out
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "-".into())
}

/// Lays out rows under a header with `|` separators, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.to_vec());
    out.push_str(&format!("|{}|\n", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|")));
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

impl Report {
    /// The human-readable report.
    pub fn render(&self) -> String {
        let header = [
            "phase",
            "ok/req",
            "err",
            "wall_s",
            "ops/s",
            "p50_ms",
            "p99_ms",
            "max_ms",
            "tandem_cpu_us/op",
            "pg_cpu_us/op",
            "idp_cpu_us/op",
            "bench_cpu_us/op",
            "HWM_MiB",
            "other_cpu_s",
        ];
        let rows: Vec<Vec<String>> = self
            .phases
            .iter()
            .map(|p| {
                vec![
                    p.phase.clone(),
                    format!("{}/{}{}", p.ok, p.requested, if p.timed_out { "*" } else { "" }),
                    p.errors.to_string(),
                    format!("{:.2}", p.wall_s),
                    format!("{:.1}", p.ops_per_s),
                    opt(p.p50_ms, 2),
                    opt(p.p99_ms, 2),
                    opt(p.max_ms, 2),
                    opt(p.server_cpu_us_per_op, 1),
                    opt(p.pg_cpu_us_per_op, 1),
                    opt(p.idp_cpu_us_per_op, 1),
                    opt(p.bench_cpu_us_per_op, 1),
                    opt(p.server_vmhwm_mb, 1),
                    opt(p.other_cpu_s, 2),
                ]
            })
            .collect();
        let mut out = format!(
            "tandem-bench {} ({} mode, {}, {} ID tokens, {} CPUs, server pid {})\n\n",
            self.label,
            self.mode,
            self.backend,
            self.id_token_alg,
            self.cpus,
            self.server_pid.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into())
        );
        out.push_str(&table(&header, &rows));
        let _ = writeln!(
            out,
            "\nmemory (Tandem): idle RSS {} MiB, VmHWM after SCIM {} MiB, VmHWM final {} MiB, VmRSS final {} MiB",
            opt(self.memory.idle_rss_mb, 1),
            opt(self.memory.hwm_after_scim_mb, 1),
            opt(self.memory.hwm_final_mb, 1),
            opt(self.memory.rss_final_mb, 1)
        );
        for s in &self.setup {
            let _ =
                writeln!(out, "setup {}: {} ok, {} errors in {:.1} s (not measured)", s.step, s.ok, s.errors, s.wall_s);
        }
        if !self.targets.is_empty() {
            out.push_str("\ntargets:\n");
            for t in &self.targets {
                let _ = writeln!(
                    out,
                    "  {} {}: {:.1} (target {} {:.2})",
                    if t.met { "met " } else { "MISS" },
                    t.what,
                    t.measured,
                    if t.at_most { "≤" } else { "≥" },
                    t.limit
                );
            }
        }
        let _ = write!(
            out,
            "\n* = the phase hit its time limit. CPU is utime+stime from /proc in 1/{} s ticks per process and phase.\n\
             tandem = the server process; pg = PostgreSQL backends of Tandem's database; idp = the stub IdP's threads;\n\
             bench = this whole process (load driver, HTTP client, JSON, stub IdP); other_cpu_s = busy CPU of everything\n\
             else on the machine during the phase (high = contended numbers).\n",
            self.clk_tck
        );
        for p in self.phases.iter().filter(|p| !p.error_samples.is_empty()) {
            let _ = writeln!(out, "errors in {}: {:?}", p.phase, p.error_samples);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(lat: Vec<f64>, ok: usize, wall_s: f64) -> Tally {
        Tally { latencies_us: lat, ok, errors: 0, error_samples: vec![], timed_out: false, wall_s }
    }

    #[test]
    fn per_op_cpu_and_percentiles_come_from_the_tally() {
        let lat: Vec<f64> = (1..=200).rev().map(|i| f64::from(i) * 100.0).collect();
        let cpu = CpuDelta { wall_s: 2.0, server_s: Some(0.05), bench_s: Some(0.1), idp_s: 0.01, ..Default::default() };
        let r = PhaseResult::new("scim_post_seq", 200, 1, tally(lat, 200, 2.0), &cpu, Some((15.04, 40.26)));
        assert_eq!(r.ops_per_s, 100.0);
        assert_eq!(r.p50_ms, Some(10.0));
        assert_eq!(r.p99_ms, Some(19.8));
        assert_eq!(r.max_ms, Some(20.0));
        assert_eq!(r.server_cpu_us_per_op, Some(250.0));
        assert_eq!(r.idp_cpu_us_per_op, Some(50.0));
        assert_eq!(r.pg_cpu_us_per_op, None);
        assert_eq!((r.server_vmrss_mb, r.server_vmhwm_mb), (Some(15.0), Some(40.3)));
    }

    #[test]
    fn no_successes_means_no_per_op_cost() {
        let cpu = CpuDelta { server_s: Some(1.0), ..Default::default() };
        let r = PhaseResult::new("x", 5, 1, tally(vec![], 0, 1.0), &cpu, None);
        assert_eq!((r.server_cpu_us_per_op, r.p99_ms), (None, None));
    }

    #[test]
    fn targets_apply_only_to_phases_present() {
        let phases = vec![
            PhaseResult { phase: "login_seq".into(), server_cpu_us_per_op: Some(420.0), ..Default::default() },
            PhaseResult {
                phase: "scim_post_c8".into(),
                ops_per_s: 9000.0,
                server_cpu_us_per_op: Some(80.0),
                ..Default::default()
            },
        ];
        let memory = Memory { idle_rss_mb: Some(12.0), hwm_final_mb: Some(70.0), ..Default::default() };
        // 19.5 MiB is 20.4 MB: over a 20 MB target.
        let over = Memory { idle_rss_mb: Some(19.5), ..Default::default() };
        assert!(targets(&[], &over, "sqlite", 8).iter().any(|t| t.what.starts_with("idle RSS") && !t.met));
        let t = targets(&phases, &memory, "sqlite", 8);
        let met: Vec<(&str, bool)> = t.iter().map(|t| (t.what.as_str(), t.met)).collect();
        assert_eq!(
            met,
            vec![
                ("login_seq: Tandem CPU µs per full login", false),
                ("scim_post_c8: Tandem CPU µs per SCIM create", true),
                ("scim_post_c8: creates/s on SQLite", true),
                ("idle RSS MiB (20 MB)", true),
                ("peak RSS (VmHWM) MiB (64 MB)", false),
            ]
        );
        assert!(!targets(&phases, &memory, "postgres", 8).iter().any(|t| t.what.contains("SQLite")));
    }

    #[test]
    fn tables_pad_columns() {
        let t = table(&["a", "bb"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "| a   | bb |\n|-----|----|\n| xyz | 1  |\n");
    }
}
