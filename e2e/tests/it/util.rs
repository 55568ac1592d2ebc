//! Helpers shared by every end-to-end test: the built binaries, a real `paas-gitd` on a temp
//! data dir ([`Gitd`]), the real `paas` CLI with its own home ([`Cli`]), git and git over SSH
//! ([`git_command`], [`new_key`], [`hello_repo`]), raw HTTP ([`http_request`], [`http_get`]) and
//! a dump of gitd's database ([`db_dump`]) to prove bad input changed nothing. Docker, Traefik
//! and the agent live in `platform`.
//!
//! Waits poll for a state with a generous hang guard ([`wait_for`]); nothing here asserts on
//! how long anything took.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a wait may last before the test is declared hung. Not a performance bound.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// The admin every [`Gitd`] is initialised with.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// The workspace root (where `Cargo.toml` with `[workspace]` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate sits inside the workspace")
        .to_owned()
}

/// The directory holding the built binaries: `target/<profile>/`, found from this test
/// binary's own path (`target/<profile>/deps/it-…`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a directory");
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps has a parent")
    } else {
        deps
    };
    dir.to_owned()
}

/// Builds every binary of the workspace once per test process, in the profile of this test
/// binary, so tests always drive the current code.
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let mut command = Command::new(cargo);
        command
            .args(["build", "--bins", "-q"])
            .current_dir(workspace_root());
        if target_dir().file_name().is_some_and(|n| n == "release") {
            command.arg("--release");
        }
        let status = command.status().expect("running cargo build");
        assert!(status.success(), "cargo build --bins failed");
    });
}

/// The path of a workspace binary (`paas`, `paas-gitd`, `paas-agent`), built if needed.
pub fn bin(name: &str) -> PathBuf {
    ensure_built();
    let path = target_dir().join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Polls `probe` until it yields a value; panics with `what` after [`HANG_GUARD`].
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(started.elapsed() < HANG_GUARD, "hung waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------------------------------------
// paas-gitd

/// A data dir made by `paas-gitd init`, not yet served: adjust `gitd.toml`, then [`serve`].
///
/// [`serve`]: GitdInit::serve
pub struct GitdInit {
    dir: TempDir,
    data: PathBuf,
}

impl GitdInit {
    pub fn new() -> GitdInit {
        let dir = tempfile::Builder::new()
            .prefix("paas-e2e-gitd")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let password_file = dir.path().join("admin-password");
        std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
        let out = Command::new(bin("paas-gitd"))
            .arg("init")
            .arg("--data")
            .arg(&data)
            .args(["--admin-user", ADMIN_USER])
            .arg("--admin-password-file")
            .arg(&password_file)
            .stdin(Stdio::null())
            .output()
            .expect("running paas-gitd init");
        assert!(
            out.status.success(),
            "paas-gitd init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        GitdInit { dir, data }
    }

    /// Sets a top-level key of `gitd.toml`.
    pub fn set_config(self, key: &str, value: impl Into<toml::Value>) -> GitdInit {
        let path = self.data.join("gitd.toml");
        let mut table: toml::Table = std::fs::read_to_string(&path)
            .unwrap()
            .parse()
            .expect("gitd.toml parses");
        table.insert(key.to_owned(), value.into());
        std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
        self
    }

    pub fn serve(self) -> Gitd {
        let mut gitd = Gitd {
            child: None,
            dir: self.dir,
            data: self.data,
            http_addr: "0.0.0.0:0".parse().unwrap(),
            ssh_addr: "0.0.0.0:0".parse().unwrap(),
        };
        gitd.spawn();
        gitd
    }
}

impl Default for GitdInit {
    fn default() -> Self {
        GitdInit::new()
    }
}

/// A running `paas-gitd serve` on loopback ports chosen by the OS; killed on drop (its log is
/// printed if the test failed).
pub struct Gitd {
    child: Option<Child>,
    dir: TempDir,
    data: PathBuf,
    pub http_addr: SocketAddr,
    pub ssh_addr: SocketAddr,
}

impl Gitd {
    /// A fresh data dir with the default settings, served.
    pub fn start() -> Gitd {
        GitdInit::new().serve()
    }

    fn spawn(&mut self) {
        let run = self.data.join("run");
        for file in ["http.addr", "ssh.addr"] {
            let _ = std::fs::remove_file(run.join(file));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(bin("paas-gitd"))
            .arg("serve")
            .arg("--data")
            .arg(&self.data)
            .args([
                "--http-listen",
                "127.0.0.1:0",
                "--ssh-listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning paas-gitd serve");
        self.child = Some(child);
        let read_addr = |name: &str| -> Option<SocketAddr> {
            std::fs::read_to_string(run.join(name))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let (http_addr, ssh_addr) = wait_for("paas-gitd to write run/http.addr", || {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("paas-gitd exited with {status}:\n{}", self.log());
            }
            Some((read_addr("http.addr")?, read_addr("ssh.addr")?))
        });
        self.http_addr = http_addr;
        self.ssh_addr = ssh_addr;
    }

    /// Stops the server and starts it again on the same data dir (new ports).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills the server (as a crash would); [`Gitd::restart`] starts it again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("paas-gitd runs").id()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("gitd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A `paas` CLI logged in to this server as `username`.
    pub fn login(&self, username: &str, password: &str) -> Cli {
        let cli = Cli::new();
        cli.cmd(&[
            "login",
            "--server",
            &self.url(),
            "--username",
            username,
            "--password-stdin",
        ])
        .stdin(format!("{password}\n"))
        .run()
        .success();
        cli
    }

    /// A `paas` CLI logged in as the admin.
    pub fn admin(&self) -> Cli {
        self.login(ADMIN_USER, ADMIN_PASSWORD)
    }

    /// Creates a (non-admin) user through the admin's CLI and returns a CLI logged in as them.
    pub fn user(&self, username: &str) -> Cli {
        let password = format!("{username}-password");
        self.admin()
            .cmd(&["users:add", username, "--password-stdin"])
            .stdin(format!("{password}\n"))
            .run()
            .success();
        self.login(username, &password)
    }

    /// A bearer token from `POST /v1/login`.
    pub fn token(&self, username: &str, password: &str) -> String {
        let body = serde_json::json!({ "username": username, "password": password });
        let response = self.request("POST", "/v1/login", None, Some(body.to_string().as_bytes()));
        assert_eq!(response.status, 200, "login failed: {}", response.text());
        response.json()["token"].as_str().unwrap().to_owned()
    }

    /// A raw HTTP request to the API; a body is sent as JSON.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> HttpResponse {
        let authorization = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(value) = &authorization {
            headers.push(("Authorization", value));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        http_request(
            self.http_addr,
            method,
            path,
            &headers,
            body.unwrap_or_default(),
        )
    }

    /// Every row of the database, for before/after comparisons.
    pub fn db_dump(&self) -> String {
        db_dump(&self.data)
    }

    /// `POST /v1/keys` of `key`'s public half with the proof `paas keys:add` makes: a
    /// challenge from `POST /v1/keys/challenge` signed with the private key `key`.
    pub fn add_key(&self, token: &str, key: &Path) -> HttpResponse {
        let public_key = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let asked = serde_json::json!({ "public_key": public_key.trim() }).to_string();
        let issued = self.request(
            "POST",
            "/v1/keys/challenge",
            Some(token),
            Some(asked.as_bytes()),
        );
        assert_eq!(issued.status, 200, "{}", issued.text());
        let challenge = issued.json()["challenge"].as_str().unwrap().to_owned();
        let body = serde_json::json!({
            "public_key": public_key.trim(),
            "challenge": challenge,
            "signature": sign_key_challenge(key, &challenge),
        });
        self.request(
            "POST",
            "/v1/keys",
            Some(token),
            Some(body.to_string().as_bytes()),
        )
    }
}

/// `data` signed with the private key `key` as `ssh-keygen -Y sign -n paas-keys` does.
pub fn sign_key_challenge(key: &Path, data: &str) -> String {
    let mut child = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "paas-keys", "-f"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(data.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "ssh-keygen -Y sign failed");
    String::from_utf8(out.stdout).unwrap()
}

impl Drop for Gitd {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- paas-gitd log ----\n{}", self.log());
        }
    }
}

/// Every row of every table of the gitd database in `data_dir` (`paas.db`), each table ordered
/// by all its columns, as text. Equal dumps mean equal data. The `metric_` tables are left out:
/// gitd adds the agent's sampling rounds to them every 10 s whatever a request does.
pub fn db_dump(data_dir: &Path) -> String {
    use rusqlite::types::ValueRef;
    let conn = rusqlite::Connection::open_with_flags(
        data_dir.join("paas.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("opening paas.db");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'metric_%' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!tables.is_empty(), "paas.db has no tables");
    let mut dump = String::new();
    for table in tables {
        let columns = conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .unwrap()
            .column_count();
        let order: Vec<String> = (1..=columns).map(|i| i.to_string()).collect();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT * FROM \"{table}\" ORDER BY {}",
                order.join(", ")
            ))
            .unwrap();
        dump.push_str(&format!("== {table}\n"));
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<String> = (0..columns)
                .map(|i| match row.get_ref(i).unwrap() {
                    ValueRef::Null => "NULL".to_owned(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(v) => format!("{:?}", String::from_utf8_lossy(v)),
                    ValueRef::Blob(v) => format!("blob:{v:?}"),
                })
                .collect();
            dump.push_str(&cells.join(" | "));
            dump.push('\n');
        }
    }
    dump
}

// ---------------------------------------------------------------------------------------------
// the paas CLI

/// The real `paas` binary with its own temp `HOME` and `XDG_CONFIG_HOME`, a clean environment
/// (no D-Bus session, no inherited `PAAS_*`), `PAAS_KEYRING=off` and no terminal.
pub struct Cli {
    home: TempDir,
}

impl Cli {
    pub fn new() -> Cli {
        Cli {
            home: tempfile::Builder::new()
                .prefix("paas-e2e-home")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `$XDG_CONFIG_HOME/paas`.
    pub fn config_dir(&self) -> PathBuf {
        self.home().join(".config").join("paas")
    }

    pub fn credentials_file(&self) -> PathBuf {
        self.config_dir().join("credentials.toml")
    }

    /// The token `paas login` stored in the credentials file for `server`.
    pub fn stored_token(&self, server: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.credentials_file()).ok()?;
        let table: toml::Table = text.parse().unwrap();
        Some(table.get("tokens")?.get(server)?.as_str()?.to_owned())
    }

    /// An invocation to adjust (stdin, directory, environment) before [`Invocation::run`].
    pub fn cmd(&self, args: &[&str]) -> Invocation<'_> {
        Invocation {
            cli: self,
            args: args.iter().map(OsString::from).collect(),
            stdin: None,
            dir: None,
            env: vec![("PAAS_KEYRING".into(), Some("off".into()))],
        }
    }

    /// Runs `paas ARGS` with no stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).run()
    }
}

impl Default for Cli {
    fn default() -> Self {
        Cli::new()
    }
}

pub struct Invocation<'a> {
    cli: &'a Cli,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    dir: Option<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
}

impl Invocation<'_> {
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    pub fn dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.env.push((key.into(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// The environment and directory of the run, applied to `command`.
    fn prepare(&self, command: &mut Command) {
        let home = self.cli.home();
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("LANG", "C.UTF-8")
            .envs(git_identity())
            .current_dir(self.dir.as_deref().unwrap_or(home));
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
    }

    fn describe(&self) -> String {
        let args: Vec<_> = self.args.iter().map(|a| a.to_string_lossy()).collect();
        format!("paas {}", args.join(" "))
    }

    pub fn run(self) -> Output {
        let mut command = Command::new(bin("paas"));
        command.args(&self.args);
        self.prepare(&mut command);
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = command.spawn().expect("spawning paas");
        if let Some(input) = self.stdin.clone() {
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        let out = child.wait_with_output().expect("waiting for paas");
        Output {
            command: self.describe(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs the command on a pseudo-terminal (through util-linux `script`), as a user at a
    /// terminal would, to drive prompts with [`Terminal::expect`] and [`Terminal::send`].
    pub fn spawn_in_terminal(self) -> Terminal {
        self.spawn_in_terminal_with("")
    }

    /// [`Invocation::spawn_in_terminal`] on a terminal of `cols` columns and `rows` rows.
    pub fn spawn_in_terminal_sized(self, cols: u16, rows: u16) -> Terminal {
        self.spawn_in_terminal_with(&format!("stty cols {cols} rows {rows}; exec "))
    }

    /// Runs `<prefix>paas ARGS` in the terminal's shell.
    fn spawn_in_terminal_with(self, prefix: &str) -> Terminal {
        let mut line = format!("{prefix}{}", shell_quote(&bin("paas").to_string_lossy()));
        for arg in &self.args {
            line.push(' ');
            line.push_str(&shell_quote(&arg.to_string_lossy()));
        }
        let mut command = Command::new("script");
        command.args(["--quiet", "--return", "--command", &line, "/dev/null"]);
        self.prepare(&mut command);
        command
            .env("TERM", "xterm")
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("spawning script");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Terminal {
            command: self.describe(),
            child,
            stdin,
            screen,
            reader: Some(reader),
        }
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A command running on a pseudo-terminal; everything it writes (stdout and stderr alike)
/// lands on one screen.
pub struct Terminal {
    command: String,
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    screen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Terminal {
    /// The screen so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until `text` is on the screen (e.g. a prompt).
    pub fn expect(&self, text: &str) {
        let started = Instant::now();
        while !self.screen().contains(text) {
            assert!(
                started.elapsed() < HANG_GUARD,
                "hung waiting for {text:?} on the terminal of `{}`; the screen:\n{}",
                self.command,
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resizes the terminal mid-session, as a user dragging the window does: the window
    /// size of the command's terminal changes (`stty -F` on it: TIOCSWINSZ) and the kernel
    /// sends SIGWINCH to the command, the foreground process.
    pub fn resize(&self, cols: u16, rows: u16) {
        let script = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{script}/task/{script}/children")).unwrap();
        let command = children
            .split_whitespace()
            .next()
            .expect("script runs the command");
        let resized = Command::new("stty")
            .arg("-F")
            .arg(format!("/proc/{command}/fd/0"))
            .args(["cols", &cols.to_string(), "rows", &rows.to_string()])
            .status()
            .unwrap();
        assert!(resized.success(), "stty could not resize the terminal");
    }

    /// Types `text`; end a line with `\r`, as the Enter key does.
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("terminal input is open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the command to exit; the screen is the output's stdout.
    pub fn finish(mut self) -> Output {
        let status = wait_for(&format!("`{}` to exit", self.command), || {
            self.child.try_wait().unwrap()
        });
        self.stdin = None;
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        Output {
            command: self.command.clone(),
            code: status.code(),
            stdout: self.screen(),
            stderr: String::new(),
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished command printed and how it exited.
#[derive(Debug, Clone)]
pub struct Output {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts exit status 0.
    #[track_caller]
    pub fn success(self) -> Output {
        assert_eq!(self.code, Some(0), "`{}` failed:\n{self}", self.command);
        self
    }

    /// Asserts exit status 1 with exactly one line on stderr, `error: …` containing `needle`.
    #[track_caller]
    pub fn error(self, needle: &str) -> Output {
        assert_eq!(
            self.code,
            Some(1),
            "`{}` should fail with 1:\n{self}",
            self.command
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "`{}`: want one error line:\n{self}",
            self.command
        );
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(needle),
            "`{}`: want `error: …{needle}…`:\n{self}",
            self.command
        );
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{self}", self.command))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

// ---------------------------------------------------------------------------------------------
// git

/// Environment that lets git commit without a user config.
pub fn git_identity() -> [(&'static str, &'static str); 4] {
    [
        ("GIT_AUTHOR_NAME", "paas e2e"),
        ("GIT_AUTHOR_EMAIL", "e2e@paas.test"),
        ("GIT_COMMITTER_NAME", "paas e2e"),
        ("GIT_COMMITTER_EMAIL", "e2e@paas.test"),
    ]
}

/// Runs `git ARGS` in `dir`, asserts success, returns stdout.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .envs(git_identity())
        .stdin(Stdio::null())
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh git repository on branch `main` in a temp dir.
pub fn git_repo() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("paas-e2e-repo")
        .tempdir()
        .unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    dir
}

// ---------------------------------------------------------------------------------------------
// ssh and git over SSH

/// A fresh passphrase-less ed25519 key pair `dir/id_ed25519{,.pub}`; returns the private key.
pub fn new_key(dir: &Path) -> PathBuf {
    let key = dir.join("id_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen failed");
    key
}

fn ssh_options(key: &Path, port: u16) -> Vec<String> {
    [
        "-i",
        &key.display().to_string(),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-p",
        &port.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

pub fn ssh_command(key: &Path, port: u16) -> Command {
    let mut command = Command::new("ssh");
    command.args(ssh_options(key, port)).arg("git@127.0.0.1");
    command
}

/// `GIT_SSH_COMMAND` for reaching gitd on `port` with `key`.
pub fn git_ssh_command(key: &Path, port: u16) -> String {
    format!("ssh {}", ssh_options(key, port).join(" "))
}

/// `git` in `dir` that reaches gitd over SSH with `key`.
pub fn git_command(dir: &Path, key: &Path, port: u16) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .envs(git_identity())
        .env("GIT_SSH_COMMAND", git_ssh_command(key, port))
        .stdin(Stdio::null());
    command
}

/// A repository holding a copy of `examples/hello`, committed.
pub fn hello_repo() -> TempDir {
    example_repo("hello")
}

/// A git repository holding `examples/<name>`, committed.
pub fn example_repo(name: &str) -> TempDir {
    let repo = git_repo();
    copy_dir(&workspace_root().join("examples").join(name), repo.path());
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", name]);
    repo
}

/// Writes `files` (path, contents) into `repo` and commits them.
pub fn commit_files(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, contents) in files {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    head(repo)
}

pub fn head(repo: &Path) -> String {
    git(repo, &["rev-parse", "HEAD"]).trim().to_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// raw HTTP

/// What a plain `GET` through a proxy answered.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// One HTTP/1.0 `GET` on a fresh connection; the server closes it after the answer. The
/// request side stays open until then: a proxy may take a half-closed connection for a client
/// that went away and cut the answer short. Errors are returned, not asserted, so callers can
/// poll an address that is not serving yet.
pub fn http_get(addr: &str, host: &str, path: &str) -> std::io::Result<HttpAnswer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    Ok(HttpAnswer {
        status,
        body: body.to_owned(),
    })
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// `error.code` of the API's error envelope, asserting there is one with a message.
    #[track_caller]
    pub fn error_code(&self) -> String {
        let body = self.json();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "no error message in {body}");
        body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {body}"))
            .to_owned()
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`). Bodies over 64 KiB
/// are sent after `Expect: 100-continue`, so a server that refuses them early can answer
/// without the client writing into a closed socket.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let stream = TcpStream::connect(addr).expect("connecting to the server");
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let expect_continue = body.len() > 64 * 1024;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    // The address is the Host unless the caller names one (a proxy routes by it).
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if expect_continue {
        head.push_str("Expect: 100-continue\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes()).unwrap();
    if !expect_continue {
        writer.write_all(body).unwrap();
        return read_response(&mut reader);
    }
    let first = read_response_head(&mut reader);
    if first.0 != 100 {
        return read_body(&mut reader, first);
    }
    // The server asked for the body; it may still refuse part-way and close.
    let _ = writer.write_all(body);
    read_response(&mut reader)
}

fn read_response(reader: &mut BufReader<TcpStream>) -> HttpResponse {
    let head = read_response_head(reader);
    read_body(reader, head)
}

fn read_response_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .expect("reading status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("reading a header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (status, headers)
}

fn read_body(
    reader: &mut BufReader<TcpStream>,
    (status, headers): (u16, Vec<(String, String)>),
) -> HttpResponse {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).unwrap();
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap(), 16)
                .expect("chunk size");
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = header("content-length") {
        body.resize(length.parse().expect("content-length"), 0);
        reader.read_exact(&mut body).unwrap();
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    HttpResponse { status, body }
}
