//! `paas-bench`: the measuring half of `scripts/bench`. The script sets the platform up (Traefik,
//! paas-agent, paas-gitd, an OpenSSH `sshd` for the floor) on loopback and describes it in
//! `BENCH_*` environment variables; each subcommand here runs one scenario against it, beside
//! its floor or peer in the same run, and prints Markdown table rows on stdout (progress goes to
//! stderr). It owns nothing of the platform: it only drives the real `paas`, `git`, `docker` and
//! HTTP, and must not touch state outside the bench's own directory and apps.

mod addons;
mod bench;
mod cluster;
mod figures;
mod http;
mod load;
mod logs;
mod metrics;
mod ops;
mod ps;
mod push;
mod scale;
mod stats;
mod transport;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Benchmarks paas against its floor; run through scripts/bench")]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// `git push` → first 200 with the new body, versus push to sshd + docker build + run.
    PushLive {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// A generated repository pushed to paas-gitd versus OpenSSH sshd + git receive-pack.
    Transport {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value_t = 200)]
        size_mb: usize,
    },
    /// Steady bounded load through Traefik during redeploys.
    ZeroDowntime {
        #[arg(long, default_value_t = 5)]
        deploys: usize,
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
    /// `paas scale web=10` and back, versus `docker run` of as many containers.
    Scale {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Wall time of `paas apps`, `paas ps`, `paas config` with many apps.
    Cli {
        #[arg(long, default_value_t = 200)]
        apps: usize,
        #[arg(long, default_value_t = 50)]
        runs: usize,
    },
    /// `paas ps` p99 with many running apps while a load loop runs through Traefik.
    Ps {
        #[arg(long, default_value_t = 200)]
        apps: usize,
        #[arg(long, default_value_t = 200)]
        runs: usize,
    },
    /// Idle RSS of the daemons with many apps; release binary sizes.
    Footprint {
        #[arg(long, default_value_t = 50)]
        apps: usize,
    },
    /// `addons:create postgres` to a query answering, and backups of a ~100 MB database,
    /// versus `docker run`, `pg_dump` and `pg_restore` by hand.
    Addons {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The agent's `[addons] postgres_image`, which the floor runs too
        #[arg(long, default_value = "paas/postgres:15")]
        image: String,
    },
    /// gitd's database growth and RSS with many apps' metrics kept for the whole retention
    /// period (simulated clock), and the cost of one agent sampling round.
    Metrics {
        #[arg(long, default_value_t = 50)]
        apps: usize,
        /// Web instances of bench-hello while sampling is timed
        #[arg(long, default_value_t = 20)]
        instances: u32,
    },
    /// Push → live and `scale web=1 → web=10` on a Swarm cluster (the platform in `BENCH_*`
    /// is the cluster's; `BENCH_ENGINES` its nodes, the manager first), beside the single-host
    /// figures push-live and scale left earlier in the same run.
    Cluster {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The cluster's Traefik API, `HOST:PORT`
        #[arg(long)]
        traefik_api: String,
    },
    /// Lines/s and latency through `paas logs -f`, versus `docker logs -f`.
    Logs {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value_t = 100_000)]
        lines: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let bench = bench::Bench::from_env()?;
    let rows = match Args::parse().scenario {
        Scenario::PushLive { runs } => push::push_live(&bench, runs)?,
        Scenario::Transport { runs, size_mb } => transport::transport(&bench, runs, size_mb)?,
        Scenario::ZeroDowntime {
            deploys,
            connections,
        } => load::zero_downtime(&bench, deploys, connections)?,
        Scenario::Scale { runs } => scale::scale(&bench, runs)?,
        Scenario::Cli { apps, runs } => ops::cli(&bench, apps, runs)?,
        Scenario::Ps { apps, runs } => ps::ps(&bench, apps, runs)?,
        Scenario::Footprint { apps } => ops::footprint(&bench, apps)?,
        Scenario::Logs { runs, lines } => logs::logs(&bench, runs, lines)?,
        Scenario::Addons { runs, image } => addons::addons(&bench, runs, &image)?,
        Scenario::Metrics { apps, instances } => metrics::metrics(&bench, apps, instances)?,
        Scenario::Cluster { runs, traefik_api } => cluster::cluster(&bench, runs, &traefik_api)?,
    };
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
