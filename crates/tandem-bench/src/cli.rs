//! Command-line arguments and the load plan they resolve to.

use crate::phases::Plan;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "tandem-bench",
    version,
    about = "Benchmarks a Tandem server: SCIM creates, userName lookups, group membership PATCHes and full logins \
             against a stub IdP, with Tandem's CPU per operation and memory",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print peer and Tandem results side by side with ratios (peer ÷ Tandem).
    Compare(CompareArgs),
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Pairs of result files, peer first: PEER.json TANDEM.json [PEER.json TANDEM.json ...]
    /// (the peer's run/results-<engine>.json and tandem-bench --json output).
    #[arg(required = true, num_args = 2..)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The Tandem binary to start (`cargo build --release -p tandem`).
    #[arg(long, default_value = "target/release/tandem")]
    pub tandem_bin: PathBuf,
    /// Database for the started server: a fresh SQLite file in a scratch directory
    /// by default; a postgres:// URL must name a fresh, empty database.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Benchmark a server that is already running at this URL instead of starting one
    /// (it must reach the stub IdP on 127.0.0.1).
    #[arg(long, requires = "integration_key")]
    pub url: Option<String>,
    /// The integration key for --url.
    #[arg(long, env = "TANDEM_BENCH_INTEGRATION_KEY", hide_env_values = true)]
    pub integration_key: Option<String>,
    /// The process id of the --url server, for its CPU and memory.
    #[arg(long, requires = "url")]
    pub server_pid: Option<u32>,
    /// CI mode: a few hundred operations per phase and 2,000 lookup users; any error fails the run.
    #[arg(long)]
    pub quick: bool,
    /// Users created in each SCIM create phase [full: 5000, quick: 300].
    #[arg(long)]
    pub scim_users: Option<usize>,
    /// Lookups per lookup phase, and `/healthz` requests per floor phase [full: 2000, quick: 300].
    #[arg(long)]
    pub scim_gets: Option<usize>,
    /// Users the connection holds for the large lookup phases; 0 skips them [full: 100000, quick: 2000].
    #[arg(long)]
    pub lookup_users: Option<usize>,
    /// Membership PATCHes per group phase (half add, half remove) [full: 2000, quick: 200].
    #[arg(long)]
    pub group_patches: Option<usize>,
    /// Full logins per login phase [full: 500, quick: 100].
    #[arg(long)]
    pub logins: Option<usize>,
    /// Concurrency of the concurrent phases.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// A phase stops issuing requests after this many seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub phase_timeout_secs: u64,
    /// Seed of the random user picks.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A label for the report (default: the database backend).
    #[arg(long)]
    pub label: Option<String>,
    /// How the stub IdP signs ID tokens: RS256 as Entra ID, Okta and the
    /// peer's IdP do, or ES256.
    #[arg(long, value_enum, default_value = "RS256")]
    pub id_token_alg: crate::idp::IdTokenAlg,
    /// How Tandem's OIDC client authenticates at the stub IdP's token
    /// endpoint: with a client secret, or with a JWT signed by a key Tandem
    /// holds (private_key_jwt, one RSA-2048 signature per login).
    #[arg(long, value_enum, default_value = "client-secret")]
    pub client_auth: ClientAuth,
}

/// How the benchmarked OIDC client authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    ClientSecret,
    PrivateKeyJwt,
}

/// Upper bound on any count, so a typo cannot start an endless run.
const MAX_OPS: usize = 10_000_000;

impl RunArgs {
    /// The plan: the mode's defaults with the explicit counts over them.
    pub fn plan(&self) -> Plan {
        let (users, gets, lookup, patches, logins) =
            if self.quick { (300, 300, 2_000, 200, 100) } else { (5_000, 2_000, 100_000, 2_000, 500) };
        let pick = |given: Option<usize>, default: usize| given.unwrap_or(default).min(MAX_OPS);
        Plan {
            scim_users: pick(self.scim_users, users),
            scim_gets: pick(self.scim_gets, gets),
            lookup_users: pick(self.lookup_users, lookup),
            group_patches: pick(self.group_patches, patches),
            logins: pick(self.logins, logins),
            concurrency: usize::from(self.concurrency),
            phase_timeout_secs: self.phase_timeout_secs,
            seed: self.seed,
        }
    }

    pub fn mode(&self) -> &'static str {
        if self.quick {
            "quick"
        } else {
            "full"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_and_full_defaults_and_overrides() {
        let full = Cli::parse_from(["tandem-bench"]).run.plan();
        assert_eq!((full.scim_users, full.scim_gets, full.lookup_users, full.logins), (5000, 2000, 100_000, 500));
        let quick = Cli::parse_from(["tandem-bench", "--quick", "--logins", "7"]).run.plan();
        assert_eq!((quick.scim_users, quick.lookup_users, quick.logins, quick.concurrency), (300, 2000, 7, 8));
    }

    #[test]
    fn compare_takes_file_pairs() {
        let cli = Cli::parse_from(["tandem-bench", "compare", "peer.json", "tandem.json"]);
        assert!(matches!(cli.command, Some(Command::Compare(c)) if c.files.len() == 2));
        assert!(Cli::try_parse_from(["tandem-bench", "--server-pid", "1"]).is_err());
    }
}
