//! `tandem-bench`: starts a Tandem server and a stub IdP on loopback, sets up
//! a customer through Tandem's APIs, runs bounded load phases and reports
//! throughput, latency, Tandem's CPU per operation and its memory.

mod cli;
mod client;
mod compare;
mod idp;
mod measure;
mod phases;
mod report;
mod server;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, RunArgs};
use report::{Memory, PhaseResult, Report};
use server::{Backend, Launch, Server};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit status when the run finished but operations failed.
const EXIT_OPS_FAILED: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Compare(args)) = cli.command {
        return match compare::run(&args.files) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // One thread drives every client: the work per request is small and
    // waits on the server, and a multi-thread runtime spent ~20 % more CPU
    // per lookup at concurrency 8 handing tasks and wake-ups between its
    // threads, CPU the server sharing these cores did not get.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = bench(cli.run) => r,
            signal = shutdown_signal() => Err(anyhow::anyhow!("stopped by {signal}")),
        }
    });
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("{errors} operations failed");
            ExitCode::from(EXIT_OPS_FAILED)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM; the benchmark future is then dropped, which stops the server.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// The default binary path, or the `tandem` next to this executable (same target directory) when that is absent.
fn tandem_bin(given: &Path) -> PathBuf {
    if given.exists() || given != Path::new("target/release/tandem") {
        return given.to_path_buf();
    }
    let sibling = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("tandem")));
    match sibling.filter(|p| p.exists()) {
        Some(p) => {
            eprintln!("no {}; using {}", given.display(), p.display());
            p
        }
        None => given.to_path_buf(),
    }
}

fn print_phase(p: &PhaseResult) {
    eprintln!(
        "  {:<20} {}/{}{} ok, {} err, {:.1} ops/s, p99 {} ms, Tandem CPU {} µs/op",
        p.phase,
        p.ok,
        p.requested,
        if p.timed_out { " (timed out)" } else { "" },
        p.errors,
        p.ops_per_s,
        p.p99_ms.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()),
        p.server_cpu_us_per_op.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
    );
}

/// Runs the whole benchmark; returns the number of failed operations.
async fn bench(args: RunArgs) -> anyhow::Result<usize> {
    let plan = args.plan();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
    let stub = idp::StubIdp::start(args.id_token_alg)?;
    let server = match (&args.url, &args.integration_key) {
        (Some(url), Some(key)) => Server::external(url, key, args.server_pid),
        _ => {
            let bin = tandem_bin(&args.tandem_bin);
            eprintln!("starting {}", bin.display());
            Server::launch(Launch { bin: &bin, database_url: args.database_url.as_deref() }).await?
        }
    };
    eprintln!(
        "Tandem at {} (pid {:?}, {}), stub IdP at {} ({} ID tokens)",
        server.base,
        server.pid,
        server.backend.name(),
        stub.issuer,
        args.id_token_alg.name()
    );

    let http = client::http_client(plan.concurrency)?;
    let api = client::Api { http: http.clone(), base: server.base.clone(), key: server.integration_key.clone() };
    let customer = format!("bench-{run_id}");
    let domain = client::email_domain(&run_id);
    let keyed = args.client_auth == cli::ClientAuth::PrivateKeyJwt;
    let secret = (!keyed).then_some(stub.client_secret.as_str());
    let client = api
        .create_oidc_client(&customer, &domain, &stub.issuer, &stub.client_id, secret)
        .await
        .context("registering the stub IdP")?;
    if keyed {
        stub.accept_client_key(&client["idp"]["client_keys"][0]["jwk"])
            .context("giving the stub IdP the client's key")?;
        eprintln!("the OIDC client authenticates with private_key_jwt");
    }
    let scim = api.create_scim_connection(&customer).await.context("creating the SCIM connection")?;

    let pg = match &server.backend {
        Backend::Postgres { database, local: true } => Some(measure::PgWatch { database: database.clone() }),
        _ => None,
    };
    let probe = measure::Probe {
        server_pid: server.pid,
        pg,
        ticks_per_sec: measure::clock_ticks_per_sec(),
        idp_thread: idp::is_idp_thread,
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = probe.server_memory_mb();

    let bench = phases::Bench::new(plan.clone(), api, scim, probe.clone(), run_id, print_phase);
    let outcome = bench.run().await;
    let last = probe.server_memory_mb();

    let memory = Memory {
        idle_rss_mb: idle.map(|m| (m.0 * 10.0).round() / 10.0),
        hwm_after_scim_mb: outcome.hwm_after_scim_mb,
        hwm_final_mb: last.map(|m| (m.1 * 10.0).round() / 10.0),
        rss_final_mb: last.map(|m| (m.0 * 10.0).round() / 10.0),
    };
    let backend = server.backend.name().to_string();
    let errors =
        outcome.phases.iter().map(|p| p.errors).sum::<usize>() + outcome.setup.iter().map(|s| s.errors).sum::<usize>();
    let mut report = Report {
        tool: format!("tandem-bench {}", env!("CARGO_PKG_VERSION")),
        label: args.label.clone().unwrap_or_else(|| backend.clone()),
        mode: args.mode().into(),
        started: chrono::DateTime::from_timestamp(idp::unix_now(), 0).map(|t| t.to_rfc3339()).unwrap_or_default(),
        cpus: std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        clk_tck: probe.ticks_per_sec,
        server_pid: server.pid,
        plan: serde_json::to_value(&plan)?,
        id_token_alg: args.id_token_alg.name().into(),
        targets: report::targets(&outcome.phases, &memory, &backend, plan.concurrency),
        backend,
        memory,
        setup: outcome.setup,
        phases: outcome.phases,
        errors,
    };
    // A server that does not shut down cleanly fails the run: a crash at
    // exit can lose what it had not written yet.
    let mut server = server;
    let shutdown = server.stop();
    let errors = errors + usize::from(shutdown.is_some());
    report.errors = errors;
    if errors > 0 {
        if let Some(why) = &shutdown {
            eprintln!("{why}");
        }
        let tail = server.log_tail(30);
        if !tail.is_empty() {
            eprintln!("the server's log ends:\n{tail}");
        }
    }
    drop(server);
    stub.stop().await;

    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    // A closed stdout (e.g. piped into `head`) must not turn a finished run into a failure.
    let _ = writeln!(std::io::stdout(), "{}", report.render());
    Ok(errors)
}
