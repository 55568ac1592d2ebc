//! Git transport: a generated repository of incompressible blobs (many files, many commits)
//! pushed to paas-gitd and to OpenSSH `sshd` + `git receive-pack`, alternately, each into a
//! fresh repository. The gitd side pushes a branch other than `main`: gitd receives and
//! indexes the whole pack, then its pre-receive hook refuses the branch (only `main` deploys)
//! without building, so the push measures transport and nothing else.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::bench::{Bench, git, proc_status_mib, run};
use crate::push::{list, push_refspec};
use crate::stats::{fmt_secs, median, row, verdict};

const FILES_PER_COMMIT: usize = 20;
const BLOB_BYTES: usize = 100 * 1024;

pub fn transport(bench: &Bench, runs: usize, size_mb: usize) -> anyhow::Result<Vec<String>> {
    let repo = bench.dir.join("big");
    let commits = (size_mb * 1024 * 1024).div_ceil(FILES_PER_COMMIT * BLOB_BYTES);
    if !repo.join(".git").exists() {
        generate(&repo, commits)?;
    }
    let pack_bytes = pack_size(&repo)?;
    let pack_mb = pack_bytes as f64 / (1024.0 * 1024.0);
    eprintln!("transport: {commits} commits, {pack_mb:.0} MiB pack");

    let (mut gitd, mut openssh, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for i in 1..=runs {
        let app = format!("bench-git-{i}");
        bench.create_app(&app)?;
        reset_peak_rss(bench.gitd_pid)?;
        let trace = push_refspec(
            &repo,
            &bench.gitd_url(&app),
            "main:refs/heads/bench",
            Instant::now(),
        )?;
        peaks.push(proc_status_mib(bench.gitd_pid, "VmHWM")?);
        if trace.success || trace.at("only the `main` branch deploys").is_none() {
            bail!(
                "expected gitd to take the pack and refuse the branch:\n{}",
                trace.transcript()
            );
        }
        gitd.push(pack_mb / trace.total.as_secs_f64());
        bench.destroy_app(&app)?;

        let bare = bench.dir.join(format!("transport-{i}.git"));
        run(Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&bare))?;
        let trace = push_refspec(
            &repo,
            &bench.sshd_url(&bare),
            "main:refs/heads/main",
            Instant::now(),
        )?;
        if !trace.success {
            bail!("push to sshd failed:\n{}", trace.transcript());
        }
        openssh.push(pack_mb / trace.total.as_secs_f64());
        std::fs::remove_dir_all(&bare)?;
    }
    let (ours, theirs) = (median(&gitd), median(&openssh));
    let ratio = ours / theirs;
    let peak = peaks.iter().copied().fold(0.0, f64::max);
    Ok(vec![
        row([
            &format!(
                "2. git transport, {pack_mb:.0} MiB pack, {commits} commits × {FILES_PER_COMMIT} files (median of {runs})"
            ),
            &format!("{ours:.1} MiB/s"),
            &format!("{theirs:.1} MiB/s (OpenSSH sshd + git receive-pack)"),
            &format!("{ratio:.2}×"),
            "≥ 0.9× OpenSSH",
            &verdict(ratio >= 0.9, || {
                format!("missed by {:.0} %", (1.0 - ratio / 0.9) * 100.0)
            }),
            &format!(
                "pushed to branch `bench`, which gitd refuses after receiving and indexing the pack (no build); \
                 MiB/s per run gitd [{}] OpenSSH [{}]; push time median gitd {} OpenSSH {}",
                list(gitd.iter().copied()),
                list(openssh.iter().copied()),
                fmt_secs(pack_mb / ours),
                fmt_secs(pack_mb / theirs),
            ),
        ]),
        row([
            "2b. paas-gitd peak RSS during the push (VmHWM)",
            &format!("{peak:.1} MiB"),
            "—",
            "—",
            "—",
            "—",
            &format!(
                "max over {runs} pushes; peak reset before each push (clear_refs 5); git receive-pack is a child process, not counted"
            ),
        ]),
    ])
}

/// Resets the process's peak-RSS counter, so VmHWM afterwards is the peak of what follows.
fn reset_peak_rss(pid: u32) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("resetting the peak RSS of {pid}"))
}

fn pack_size(repo: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(repo.join(".git/objects/pack"))? {
        let entry = entry?;
        if entry.path().extension().is_some_and(|ext| ext == "pack") {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// `commits` commits, each adding FILES_PER_COMMIT new files of pseudo-random bytes spread
/// over 16 directories, through `git fast-import` (one pack, as a real repository would be).
fn generate(repo: &Path, commits: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(repo)?;
    git(repo, &["init", "-q", "-b", "main"])?;
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(repo)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run git fast-import")?;
    let mut input = std::io::BufWriter::new(child.stdin.take().context("no stdin")?);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut blob = vec![0u8; BLOB_BYTES];
    for c in 0..commits {
        let message = format!("commit {c}");
        writeln!(input, "commit refs/heads/main")?;
        writeln!(
            input,
            "committer bench <bench@localhost> {} +0000",
            1_700_000_000 + c
        )?;
        writeln!(input, "data {}\n{message}", message.len())?;
        for f in 0..FILES_PER_COMMIT {
            for chunk in blob.chunks_mut(8) {
                // xorshift64: cheap, and deflate finds nothing to squeeze out of it.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
            }
            writeln!(
                input,
                "M 100644 inline dir{:02}/file-{c:04}-{f:02}.bin",
                (c + f) % 16
            )?;
            writeln!(input, "data {}", blob.len())?;
            input.write_all(&blob)?;
            writeln!(input)?;
        }
    }
    drop(input);
    if !child.wait()?.success() {
        bail!("git fast-import failed");
    }
    Ok(())
}
