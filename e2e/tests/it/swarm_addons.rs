//! Add-ons on the swarm engine, on the suite's shared local cluster of three nodes: `addons:create postgres`
//! makes a Swarm service of one task pinned to the manager (the agent's node, which holds its
//! local volume), on the app's overlay network only, by DNS round robin and publishing no
//! port. Web tasks of the app on the other nodes reach it by the host of `DATABASE_URL` and
//! write and read rows, and the web serves them through Traefik; an app that is not attached
//! reaches it neither by name nor by address until `addons:attach`. `pg:psql` and a backup
//! capture and restore run in its container through the manager's engine. The rows survive a
//! redeploy of the app and an agent restart; `addons:destroy` removes service and volume.

use std::process::Output;

use crate::addons::config_var;
use crate::local_cluster::{LocalCluster, output_text};
use crate::platform::{DOMAIN, Platform};
use crate::util::{commit_files, git_repo, http_get, wait_for};

/// A web app on the cluster's Postgres image, for its `psql`, with busybox's httpd serving a
/// CGI that lists the rows of `notes` through `DATABASE_URL`.
const DOCKERFILE: &str = "FROM paas/postgres:15
COPY --from=paas/busybox:latest /bin/busybox /bin/busybox
COPY www /www
RUN chmod 755 /www/cgi-bin/index.cgi
ENTRYPOINT []
ENV PORT=5000
CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"5000\", \"-h\", \"/www\"]
";
const PROCFILE: &str = "web: exec /bin/busybox httpd -f -p ${PORT:-5000} -h /www\n";
const INDEX_CGI: &str = "#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'notes of %s %s:\\n' \"$PAAS_APP\" \"$PAAS_RELEASE\"
PGCONNECT_TIMEOUT=5 psql \"$DATABASE_URL\" -tAc 'SELECT body FROM notes ORDER BY id' 2>&1
";

/// The running web containers of `app` on `node`.
fn web_containers(cluster: &LocalCluster, app: &str, node: u32) -> Vec<String> {
    let listed = cluster.docker_ok(
        node,
        &[
            "ps",
            "--filter",
            &format!("label=paas.app={app}"),
            "--filter",
            "label=paas.process=web",
            "--format",
            "{{.ID}}",
        ],
    );
    listed.lines().map(str::to_owned).collect()
}

/// A web container of `app` on each of the nodes other than the manager, with its node.
fn off_manager_webs(cluster: &LocalCluster, app: &str) -> Vec<(u32, String)> {
    wait_for(&format!("web tasks of {app} on nodes 2 and 3"), || {
        let found: Vec<(u32, String)> = (2..=3)
            .filter_map(|node| {
                let first = web_containers(cluster, app, node).into_iter().next()?;
                Some((node, first))
            })
            .collect();
        (found.len() == 2).then_some(found)
    })
}

/// A web container of `app` on any node, with its node.
fn any_web(cluster: &LocalCluster, app: &str) -> (u32, String) {
    wait_for(&format!("a web task of {app}"), || {
        (1..=3).find_map(|node| {
            let first = web_containers(cluster, app, node).into_iter().next()?;
            Some((node, first))
        })
    })
}

/// Waits until `app` runs `quantity` web containers over the nodes, none more: the
/// instances a rollout replaced are gone.
fn settled(cluster: &LocalCluster, app: &str, quantity: usize) {
    wait_for(&format!("{app} to run {quantity} web containers"), || {
        let running: usize = (1..=3)
            .map(|node| web_containers(cluster, app, node).len())
            .sum();
        (running == quantity).then_some(())
    });
}

/// `psql URL -c SQL` in `container` on `node`, with `url` the container's own
/// `DATABASE_URL` when `None`.
fn psql_in(
    cluster: &LocalCluster,
    (node, container): &(u32, String),
    url: Option<&str>,
    sql: &str,
) -> Output {
    let url_env = format!("URL={}", url.unwrap_or_default());
    let sql_env = format!("SQL={sql}");
    let script =
        "PGCONNECT_TIMEOUT=5 psql \"${URL:-$DATABASE_URL}\" -v ON_ERROR_STOP=1 -tAc \"$SQL\"";
    cluster.docker(
        *node,
        &[
            "exec", "-e", &url_env, "-e", &sql_env, container, "sh", "-c", script,
        ],
    )
}

/// [`psql_in`] that must succeed; its output, trimmed.
fn query(cluster: &LocalCluster, web: &(u32, String), sql: &str) -> String {
    let output = psql_in(cluster, web, None, sql);
    assert!(
        output.status.success(),
        "{sql} from node {}: {}",
        web.0,
        output_text(&output)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The add-on's Swarm service on the manager, found by its labels.
fn addon_services(cluster: &LocalCluster, name: &str) -> Vec<String> {
    let listed = cluster.docker_ok(
        1,
        &[
            "service",
            "ls",
            "--filter",
            &format!("label=paas.addon.name={name}"),
            "--format",
            "{{.Name}}",
        ],
    );
    listed.lines().map(str::to_owned).collect()
}

/// The body Traefik answers `/` of `app` with, once it is a 200 containing `needle`.
fn served(cluster: &LocalCluster, app: &str, needle: &str) -> String {
    let host = format!("{app}.{DOMAIN}");
    wait_for(&format!("{host} to serve {needle:?}"), || {
        http_get(&cluster.router(), &host, "/")
            .ok()
            .filter(|answer| answer.status == 200 && answer.body.contains(needle))
            .map(|answer| answer.body)
    })
}

#[test]
fn on_swarm_a_postgres_add_on_serves_tasks_on_every_node_and_keeps_its_data() {
    let cluster = LocalCluster::shared();
    let mut platform = Platform::on_swarm(&cluster);
    let app = platform.create_app("wshop");
    let other = platform.create_app("wother");
    let name = "shopdb";

    platform
        .paas(&["addons:create", "postgres", "-a", &app, "--name", name])
        .success();
    let url = config_var(&platform, &app, "DATABASE_URL").expect("DATABASE_URL is set");
    assert!(url.contains(&format!("@{name}:5432/")), "{url}");

    // One task, pinned to the manager, on the app's overlay only, no virtual IP, no port.
    let services = addon_services(&cluster, name);
    assert_eq!(services.len(), 1, "{services:?}");
    let service = &services[0];
    let manager = cluster.docker_ok(1, &["info", "-f", "{{.Swarm.NodeID}}"]);
    let spec = cluster.docker_ok(
        1,
        &[
            "service",
            "inspect",
            service,
            "-f",
            "{{json .Spec.TaskTemplate.Placement.Constraints}} {{.Spec.EndpointSpec.Mode}} {{json .Endpoint.Ports}} {{len .Spec.TaskTemplate.Networks}}",
        ],
    );
    assert_eq!(
        spec,
        format!("[\"node.id=={manager}\"] dnsrr null 1"),
        "{service}"
    );
    let volume = format!("paas-addon-{name}.admin");
    cluster.docker_ok(1, &["volume", "inspect", &volume]);

    let repo = git_repo();
    commit_files(
        repo.path(),
        &[
            ("Dockerfile", DOCKERFILE),
            ("Procfile", PROCFILE),
            ("www/cgi-bin/index.cgi", INDEX_CGI),
        ],
        "notes on Postgres",
    );
    for target in [&app, &other] {
        let pushed = platform.push(target, repo.path());
        assert_eq!(pushed.code, Some(0), "{pushed}\n{}", platform.logs());
    }
    platform.paas(&["scale", "web=3", "-a", &app]).success();
    settled(&cluster, &app, 3);

    // A task on node 2 writes, one on node 3 reads, and the web serves the rows.
    let webs = off_manager_webs(&cluster, &app);
    query(
        &cluster,
        &webs[0],
        "CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) VALUES ('written-on-node-2')",
    );
    query(
        &cluster,
        &webs[1],
        "INSERT INTO notes (body) VALUES ('written-on-node-3')",
    );
    assert_eq!(
        query(
            &cluster,
            &webs[0],
            "SELECT string_agg(body, ',' ORDER BY id) FROM notes"
        ),
        "written-on-node-2,written-on-node-3"
    );
    served(&cluster, &app, "written-on-node-3");

    // The app that is not attached reaches it neither by name nor by its address.
    let outsider = any_web(&cluster, &other);
    let by_name = psql_in(&cluster, &outsider, Some(&url), "SELECT 1");
    assert!(!by_name.status.success(), "{}", output_text(&by_name));
    let container = cluster.docker_ok(
        1,
        &[
            "ps",
            "--filter",
            &format!("label=paas.addon.name={name}"),
            "--format",
            "{{.ID}}",
        ],
    );
    let address = cluster.docker_ok(
        1,
        &[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"paas-app-{app}\").IPAddress}}}}"),
            &container,
        ],
    );
    assert!(
        !address.is_empty(),
        "the add-on has an address on {app}'s network"
    );
    let by_address = url.replace(&format!("@{name}:"), &format!("@{address}:"));
    let reached = psql_in(&cluster, &outsider, Some(&by_address), "SELECT 1");
    assert!(!reached.status.success(), "{}", output_text(&reached));

    // Console and backups exec in its container through the manager's engine.
    let counted = platform
        .paas(&[
            "pg:psql",
            name,
            "-a",
            &app,
            "-c",
            "SELECT count(*) FROM notes",
        ])
        .success();
    assert!(counted.stdout.contains('2'), "{counted}");
    platform
        .paas(&["pg:backups:capture", name, "-a", &app])
        .success();
    query(&cluster, &webs[1], "DELETE FROM notes");
    platform
        .paas(&[
            "pg:backups:restore",
            "b001",
            name,
            "-a",
            &app,
            "--confirm",
            &app,
        ])
        .success();
    assert_eq!(query(&cluster, &webs[1], "SELECT count(*) FROM notes"), "2");

    // A redeploy and an agent restart leave the rows where they were.
    commit_files(repo.path(), &[("VERSION", "2\n")], "a second release");
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}\n{}", platform.logs());
    settled(&cluster, &app, 3);
    served(&cluster, &app, "written-on-node-2");
    platform.agent_mut().restart();
    let webs = off_manager_webs(&cluster, &app);
    for web in &webs {
        assert_eq!(
            query(
                &cluster,
                web,
                "SELECT string_agg(body, ',' ORDER BY id) FROM notes"
            ),
            "written-on-node-2,written-on-node-3",
            "from node {}",
            web.0
        );
    }
    let info = platform
        .paas(&["addons:info", name, "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(info["status"]["state"], "available", "{info}");

    // Attached, the other app gets the URL and its tasks reach the same rows.
    platform
        .paas(&["addons:attach", name, "-a", &other])
        .success();
    assert_eq!(
        config_var(&platform, &other, "DATABASE_URL").as_deref(),
        Some(url.as_str())
    );
    settled(&cluster, &other, 1);
    let insider = any_web(&cluster, &other);
    assert_eq!(query(&cluster, &insider, "SELECT count(*) FROM notes"), "2");

    platform
        .paas(&[
            "addons:destroy",
            name,
            "-a",
            &app,
            "--confirm",
            name,
            "--force",
        ])
        .success();
    assert_eq!(addon_services(&cluster, name), Vec::<String>::new());
    let gone = cluster.docker(1, &["volume", "inspect", &volume]);
    assert!(!gone.status.success(), "the volume went with its add-on");
}
