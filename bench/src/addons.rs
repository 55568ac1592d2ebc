//! Postgres add-ons: how long `paas addons:create postgres` takes until the database answers a
//! query, beside `docker run` of the same image polled the same way; and how long
//! `paas pg:backups:capture` and `pg:backups:restore` take on a ~100 MB database, beside
//! `pg_dump` and `pg_restore` with the same options run directly (`docker exec` into the same
//! container, the dump streamed to a file on the host), alternating with them in the same run.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{Bench, poll};
use crate::stats::{fmt_secs, median, row, secs};

/// The app the add-ons are created on; nothing runs on it.
const APP: &str = "bench-pg";
/// The add-on holding the ~100 MB database.
const DATA_ADDON: &str = "bench-pgdata";
/// The floor's container, named so that `scripts/bench` removes it whatever happens.
const FLOOR: &str = "paas-bench-pg-floor";
/// Rows of ~250 bytes each: about 100 MB on disk.
const FILLER_ROWS: u32 = 420_000;

fn container(addon: &str) -> String {
    format!("paas-addon-{addon}.admin")
}

/// `psql URL -tAc SQL` inside `container`: its output if it succeeded.
fn query(container: &str, url: &str, sql: &str) -> Option<String> {
    let output = Command::new("docker")
        .args(["exec", container, "psql", url, "-tAc", sql])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn answers(container: &str, url: &str) -> anyhow::Result<()> {
    poll(&format!("{container} to answer a query"), || {
        query(container, url, "SELECT 1").filter(|one| one == "1")
    })
    .map(drop)
}

/// The URL the app got for `attachment`.
fn url(bench: &Bench, attachment: &str) -> anyhow::Result<String> {
    let vars: serde_json::Value =
        serde_json::from_str(&bench.paas(&["config", "-a", APP, "--json"])?)?;
    vars[format!("{attachment}_URL")]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{APP} has no {attachment}_URL"))
}

/// Runs `docker ARGS` with stdin from and stdout to the given files; fails unless it exits 0.
fn docker_piped(args: &[&str], stdin: Stdio, stdout: Stdio) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = Command::new("docker")
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .status()
        .context("cannot run docker")?;
    if !status.success() {
        bail!("docker {} failed ({status})", args.join(" "));
    }
    Ok(start.elapsed())
}

fn runs_note(paas: &[f64], floor: &[f64]) -> String {
    let list = |values: &[f64]| {
        values
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("runs paas [{}] floor [{}]", list(paas), list(floor))
}

/// One create of a Postgres add-on until it answers, then its removal.
fn create_once(bench: &Bench, run: usize) -> anyhow::Result<Duration> {
    let name = format!("bench-pg-{run}");
    let start = Instant::now();
    bench.paas(&["addons:create", "postgres", "-a", APP, "--name", &name])?;
    let url = url(bench, "DATABASE")?;
    answers(&container(&name), &url)?;
    let took = start.elapsed();
    bench.paas(&["addons:destroy", &name, "-a", APP, "--confirm", &name])?;
    Ok(took)
}

/// The same image started by hand with a volume of its own, polled the same way.
fn floor_create_once(image: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    crate::bench::run(Command::new("docker").args([
        "run",
        "-d",
        "--name",
        FLOOR,
        "-v",
        &format!("{FLOOR}:/var/lib/postgresql/data"),
        "-e",
        "POSTGRES_USER=u",
        "-e",
        "POSTGRES_PASSWORD=p",
        "-e",
        "POSTGRES_DB=d",
        image,
    ]))?;
    answers(FLOOR, "postgres://u:p@127.0.0.1:5432/d")?;
    let took = start.elapsed();
    crate::bench::run(Command::new("docker").args(["rm", "-f", FLOOR]))?;
    crate::bench::run(Command::new("docker").args(["volume", "rm", FLOOR]))?;
    Ok(took)
}

pub fn addons(bench: &Bench, runs: usize, image: &str) -> anyhow::Result<Vec<String>> {
    bench.create_app(APP)?;
    let (mut create, mut create_floor) = (Vec::new(), Vec::new());
    for run in 0..runs {
        create.push(secs(create_once(bench, run)?));
        create_floor.push(secs(floor_create_once(image)?));
    }

    bench.paas(&["addons:create", "postgres", "-a", APP, "--name", DATA_ADDON])?;
    let url = url(bench, "DATABASE")?;
    let data = container(DATA_ADDON);
    query(
        &data,
        &url,
        &format!(
            "CREATE TABLE filler AS SELECT g AS id, md5(g::text) || repeat('x', 180) AS body FROM generate_series(1, {FILLER_ROWS}) g"
        ),
    )
    .context("filling the database")?;
    let size: f64 = query(&data, &url, "SELECT pg_database_size(current_database())")
        .and_then(|size| size.parse().ok())
        .context("reading the database's size")?;
    let dump = bench.dir.join("floor.dump");
    let dump_args = [
        "exec",
        &data,
        "pg_dump",
        "-Fc",
        "--no-owner",
        "--no-acl",
        "-d",
        &url,
    ];
    let restore_args = [
        "exec",
        "-i",
        &data,
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-acl",
        "--single-transaction",
        "-d",
        &url,
    ];
    let (mut capture, mut capture_floor) = (Vec::new(), Vec::new());
    let (mut restore, mut restore_floor) = (Vec::new(), Vec::new());
    let mut dump_bytes = 0;
    for _ in 0..runs {
        let start = Instant::now();
        bench.paas(&["pg:backups:capture", DATA_ADDON, "-a", APP])?;
        capture.push(secs(start.elapsed()));
        capture_floor.push(secs(docker_piped(
            &dump_args,
            Stdio::null(),
            Stdio::from(File::create(&dump)?),
        )?));
        dump_bytes = std::fs::metadata(&dump)?.len();

        let start = Instant::now();
        // Without an id: the capture just taken.
        bench.paas(&[
            "pg:backups:restore",
            DATA_ADDON,
            "-a",
            APP,
            "--confirm",
            APP,
        ])?;
        restore.push(secs(start.elapsed()));
        restore_floor.push(secs(docker_piped(
            &restore_args,
            Stdio::from(File::open(&dump)?),
            Stdio::null(),
        )?));
    }
    bench.paas(&[
        "addons:destroy",
        DATA_ADDON,
        "-a",
        APP,
        "--confirm",
        DATA_ADDON,
    ])?;
    bench.destroy_app(APP)?;

    let mb = |bytes: f64| bytes / 1e6;
    let ratio = |paas: &[f64], floor: &[f64]| format!("{:.2}×", median(paas) / median(floor));
    Ok(vec![
        row([
            &format!("9. `addons:create postgres` → first query answered (median of {runs})"),
            &fmt_secs(median(&create)),
            &format!(
                "{} (`docker run` of {image} with a volume, polled with the same query)",
                fmt_secs(median(&create_floor))
            ),
            &ratio(&create, &create_floor),
            "—",
            "—",
            &format!(
                "from the start of `paas addons:create` (which answers once the server accepts the app's connections) through `paas config` for the URL to `SELECT 1` answering inside the container; initdb runs on both sides; {}",
                runs_note(&create, &create_floor)
            ),
        ]),
        row([
            &format!(
                "9b. `pg:backups:capture`, {:.0} MB database (median of {runs})",
                mb(size)
            ),
            &fmt_secs(median(&capture)),
            &format!(
                "{} (`docker exec … pg_dump -Fc --no-owner --no-acl` into a host file)",
                fmt_secs(median(&capture_floor))
            ),
            &ratio(&capture, &capture_floor),
            "—",
            "—",
            &format!(
                "the dump is {:.1} MB; both stream it out of an exec in the add-on's container into a file on the host; {}",
                mb(dump_bytes as f64),
                runs_note(&capture, &capture_floor)
            ),
        ]),
        row([
            &format!(
                "9c. `pg:backups:restore`, {:.0} MB database (median of {runs})",
                mb(size)
            ),
            &fmt_secs(median(&restore)),
            &format!(
                "{} (`docker exec -i … pg_restore --clean --if-exists --no-owner --no-acl --single-transaction` from the host file)",
                fmt_secs(median(&restore_floor))
            ),
            &ratio(&restore, &restore_floor),
            "—",
            "—",
            &format!(
                "the capture just taken, streamed into the exec's stdin on both sides; {}",
                runs_note(&restore, &restore_floor)
            ),
        ]),
    ])
}
