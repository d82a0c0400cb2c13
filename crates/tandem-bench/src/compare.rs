//! Peer and Tandem results side by side: the peer kit's
//! `run/results-<engine>.json` (see its summarize.mjs) next to this tool's
//! JSON, with ratios peer ÷ Tandem.

use crate::report::table;
use anyhow::Context;
use serde_json::Value;
use std::io::Write as _;
use std::path::Path;

/// A phase sample whose other-process CPU exceeds this share of one core is marked contended.
const QUIET: f64 = 0.25;

/// The peer's name for a Tandem phase.
fn peer_phase(tandem_phase: &str) -> String {
    match tandem_phase.strip_prefix("login_") {
        Some(rest) => format!("oidc_login_{rest}"),
        None => tandem_phase.to_string(),
    }
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "-".into())
}

/// peer ÷ Tandem, with precision that suits the size.
fn ratio(peer: Option<f64>, tandem: Option<f64>) -> String {
    match (peer, tandem) {
        (Some(p), Some(t)) if t > 0.0 => {
            let r = p / t;
            if r >= 10.0 {
                format!("{r:.0}")
            } else {
                format!("{r:.2}")
            }
        }
        _ => "-".into(),
    }
}

/// `!` when the phase ran on a busy machine.
fn noise(phase: Option<&Value>) -> &'static str {
    let Some(p) = phase else { return "" };
    match (num(p, "other_cpu_s"), num(p, "wall_s")) {
        (Some(o), Some(w)) if w > 0.0 && o / w > QUIET => "!",
        _ => "",
    }
}

fn load(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn phases(v: &Value) -> &[Value] {
    v.get("phases").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The combined tables for (peer, Tandem) result pairs.
pub fn render(pairs: &[(Value, Value)]) -> String {
    let mut rows = Vec::new();
    let mut mem_rows = Vec::new();
    for (peer, tandem) in pairs {
        let engine = tandem.get("backend").and_then(Value::as_str).unwrap_or("?").to_string();
        for t in phases(tandem) {
            let name = t.get("phase").and_then(Value::as_str).unwrap_or("?");
            let p = phases(peer).iter().find(|p| p.get("phase").and_then(Value::as_str) == Some(&peer_phase(name)));
            let peer_cpu_us = p.and_then(|p| num(p, "jackson_cpu_ms_per_op")).map(|ms| ms * 1000.0);
            let peer_pg_us = p.and_then(|p| num(p, "pg_cpu_ms_per_op")).map(|ms| ms * 1000.0);
            rows.push(vec![
                engine.clone(),
                name.to_string(),
                fmt(p.and_then(|p| num(p, "ops_per_s")), 1),
                fmt(num(t, "ops_per_s"), 1),
                ratio(p.and_then(|p| num(p, "ops_per_s")), num(t, "ops_per_s")),
                fmt(p.and_then(|p| num(p, "p99_ms")), 2),
                fmt(num(t, "p99_ms"), 2),
                fmt(peer_cpu_us, 0),
                fmt(num(t, "server_cpu_us_per_op"), 1),
                ratio(peer_cpu_us, num(t, "server_cpu_us_per_op")),
                fmt(peer_pg_us, 0),
                fmt(num(t, "pg_cpu_us_per_op"), 1),
                format!(
                    "{}/{}",
                    p.map(|p| format!("{}{}", fmt(num(p, "errors"), 0), noise(Some(p)))).unwrap_or_else(|| "-".into()),
                    format_args!("{}{}", fmt(num(t, "errors"), 0), noise(Some(t)))
                ),
            ]);
        }
        let kb_to_mb = |v: Option<f64>| v.map(|kb| kb / 1024.0);
        let peer_idle = kb_to_mb(peer.get("baseline").and_then(|b| num(b, "vmrss_kb")));
        let peer_scim = phases(peer)
            .iter()
            .rev()
            .find(|p| p.get("phase").and_then(Value::as_str).is_some_and(|n| n.starts_with("scim_")))
            .and_then(|p| num(p, "jackson_vmhwm_mb"));
        let peer_final = kb_to_mb(peer.get("final").and_then(|f| num(f, "vmhwm_kb")));
        let mem = tandem.get("memory").cloned().unwrap_or(Value::Null);
        let (t_idle, t_scim, t_final) =
            (num(&mem, "idle_rss_mb"), num(&mem, "hwm_after_scim_mb"), num(&mem, "hwm_final_mb"));
        mem_rows.push(vec![
            engine,
            fmt(peer_idle, 1),
            fmt(t_idle, 1),
            ratio(peer_idle, t_idle),
            fmt(peer_scim, 1),
            fmt(t_scim, 1),
            ratio(peer_scim, t_scim),
            fmt(peer_final, 1),
            fmt(t_final, 1),
            ratio(peer_final, t_final),
        ]);
    }
    let mut out = table(
        &[
            "engine",
            "phase",
            "peer ops/s",
            "tandem ops/s",
            "thr ratio",
            "peer p99 ms",
            "tandem p99 ms",
            "peer cpu µs/op",
            "tandem cpu µs/op",
            "cpu ratio",
            "peer pg µs/op",
            "tandem pg µs/op",
            "errors peer/tandem",
        ],
        &rows,
    );
    out.push('\n');
    out.push_str(&table(
        &[
            "engine",
            "peer idle RSS MiB",
            "tandem idle RSS MiB",
            "ratio",
            "peer HWM after SCIM MiB",
            "tandem HWM after SCIM MiB",
            "ratio",
            "peer HWM final MiB",
            "tandem HWM final MiB",
            "ratio",
        ],
        &mem_rows,
    ));
    out.push_str(
        "\nratios are peer ÷ Tandem: thr ratio < 1 = Tandem serves more per second; cpu and memory ratios > 1 = \
         Tandem uses less.\ncpu = the server process only (Jackson's node process, Tandem's process); pg = the \
         peer's whole private cluster,\nTandem's database backends. The peer's logins also run a token and a userinfo \
         call; Tandem's are initiate + complete.\n! = other processes used more than a quarter core during that phase \
         (contended).\n",
    );
    out
}

/// Reads `files` as (peer, Tandem) pairs and prints the combined tables.
pub fn run(files: &[std::path::PathBuf]) -> anyhow::Result<()> {
    anyhow::ensure!(
        files.chunks_exact(2).remainder().is_empty(),
        "give result files in pairs: PEER.json TANDEM.json ..."
    );
    let mut pairs = Vec::new();
    for pair in files.chunks(2) {
        pairs.push((load(&pair[0])?, load(&pair[1])?));
    }
    let _ = write!(std::io::stdout(), "{}", render(&pairs));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phases_pair_up_and_ratios_are_peer_over_tandem() {
        let peer = json!({
            "label": "sqlite", "baseline": {"vmrss_kb": 138240}, "final": {"vmhwm_kb": 322560},
            "phases": [
                {"phase": "scim_post_c8", "ops_per_s": 344.0, "p99_ms": 49.7, "jackson_cpu_ms_per_op": 2.1,
                 "errors": 0, "wall_s": 14.5, "other_cpu_s": 0.1, "jackson_vmhwm_mb": 243.1},
                {"phase": "oidc_login_c8", "ops_per_s": 48.4, "p99_ms": 268.8, "jackson_cpu_ms_per_op": 17.34,
                 "errors": 0, "wall_s": 10.0, "other_cpu_s": 5.0}
            ]
        });
        let tandem = json!({
            "backend": "sqlite", "memory": {"idle_rss_mb": 13.5, "hwm_after_scim_mb": 30.0, "hwm_final_mb": 40.0},
            "phases": [
                {"phase": "scim_post_c8", "ops_per_s": 6880.0, "p99_ms": 4.0, "server_cpu_us_per_op": 105.0,
                 "errors": 0, "wall_s": 0.7, "other_cpu_s": 0.0},
                {"phase": "login_c8", "ops_per_s": 1936.0, "p99_ms": 9.0, "server_cpu_us_per_op": 289.0,
                 "errors": 0, "wall_s": 0.3, "other_cpu_s": 0.0},
                {"phase": "group_patch_c8", "ops_per_s": 3000.0, "errors": 0}
            ]
        });
        let out = render(&[(peer, tandem)]);
        assert!(out.contains("| sqlite | scim_post_c8   | 344.0      | 6880.0       | 0.05"), "{out}");
        assert!(out.contains("| 2100           | 105.0            | 20 "), "{out}");
        assert!(out.contains("| 17340          | 289.0            | 60 "), "{out}");
        assert!(out.contains("| 0!/0"), "contended peer phase is marked: {out}");
        assert!(out.contains("| group_patch_c8 | -          | 3000.0"), "{out}");
        assert!(out.contains("| sqlite | 135.0             | 13.5                | 10 "), "{out}");
    }

    #[test]
    fn login_phases_map_to_the_peers_oidc_names() {
        assert_eq!(peer_phase("login_seq"), "oidc_login_seq");
        assert_eq!(peer_phase("scim_get_c8"), "scim_get_c8");
    }
}
