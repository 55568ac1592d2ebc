//! Images through a registry on the single-host platform: with `[registry]` in the agent's
//! config, a deploy pushes the built image to a real `docker-registry` (Debian's, on a loopback
//! port) and the app's containers run the pushed digest, `127.0.0.1:PORT/paas/<app>@sha256:…`;
//! pruning an image removes it from the registry as well as from the host.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::platform::{Platform, docker_lines, free_port};
use crate::util::{commit_files, hello_repo, wait_for, workspace_root};

/// Debian's `docker-registry` serving a scratch directory on a loopback port, deletes allowed;
/// killed on drop.
struct LocalRegistry {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl LocalRegistry {
    fn start() -> LocalRegistry {
        let installed = Command::new("bash")
            .arg("-c")
            .arg(
                "source scripts/lib/docker.sh; command -v docker-registry >/dev/null || \
                 paas_with_lock apt paas_apt_install docker-registry",
            )
            .current_dir(workspace_root())
            .status()
            .unwrap();
        assert!(installed.success(), "cannot install docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("paas-e2e-registry")
            .tempdir()
            .unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("docker-registry to listen", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        LocalRegistry {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The status of the registry's manifest for `repository@digest`.
    fn manifest_status(&self, repository: &str, digest: &str) -> u16 {
        reqwest::blocking::Client::new()
            .head(format!("{}/v2/{repository}/manifests/{digest}", self.url()))
            .header(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json",
            )
            .timeout(Duration::from_secs(30))
            .send()
            .unwrap()
            .status()
            .as_u16()
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The image references the app's running containers were created from (`docker ps` shows a
/// digest reference without its digest; the container's config has it whole).
fn running_images(app: &str) -> Vec<String> {
    docker_lines(&["ps", "-q", "--filter", &format!("label=paas.app={app}")])
        .iter()
        .flat_map(|id| docker_lines(&["inspect", "-f", "{{.Config.Image}}", id]))
        .collect()
}

#[test]
fn a_deployed_app_runs_its_pushed_digest_and_pruning_deletes_it_from_the_registry() {
    let registry = LocalRegistry::start();
    let mut platform = Platform::start();
    let mut settings = toml::Table::new();
    settings.insert("url".into(), registry.url().into());
    platform.agent_mut().reconfigure("registry", settings);

    let app = platform.create_app("pushed");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    let repository = format!("127.0.0.1:{}/paas/{app}", registry.port);
    let first = running_images(&app);
    assert_eq!(first.len(), 1, "{first:?}");
    let v1 = first[0].clone();
    let digest = v1
        .strip_prefix(&format!("{repository}@"))
        .unwrap_or_else(|| panic!("{v1} is not a digest in {repository}"));
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{v1}");
    assert_eq!(
        registry.manifest_status(&format!("paas/{app}"), digest),
        200,
        "the registry holds what the app runs"
    );
    let answer = platform.get(&app, "/").unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    assert!(
        releases.to_string().contains(&v1),
        "the release records the digest: {releases}"
    );

    // A second build; then v1's image is pruned, from the host and from the registry.
    commit_files(repo.path(), &[("again.txt", "again\n")], "again");
    platform.deploy(&app, repo.path());
    let second = wait_for("v2 alone to run", || {
        let images = running_images(&app);
        (images.len() == 1 && images[0] != v1).then_some(images)
    });
    let v2 = second[0].clone();
    assert!(v2.starts_with(&format!("{repository}@sha256:")), "{v2}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let agent = platform.agent().client();
    let listed = runtime.block_on(agent.images(&app)).unwrap();
    assert!(listed.contains(&v1) && listed.contains(&v2), "{listed:?}");
    let pruned = runtime
        .block_on(agent.prune(&app, vec![v2.clone()]))
        .unwrap();
    assert!(pruned.removed.contains(&v1), "{pruned:?}");
    assert_eq!(
        registry.manifest_status(&format!("paas/{app}"), digest),
        404,
        "v1 is gone from the registry"
    );
    let listed = runtime.block_on(agent.images(&app)).unwrap();
    assert!(!listed.contains(&v1) && listed.contains(&v2), "{listed:?}");
    assert_eq!(platform.get(&app, "/").unwrap().status, 200);
}
