//! `paas logs` with the server down says so in one line, as every other command does (it once
//! printed the HTTP client's whole chain of causes), and exits 1.

use crate::util::Gitd;

#[test]
fn logs_with_the_server_down_say_so_in_one_line() {
    let mut gitd = Gitd::start();
    let admin = gitd.admin();
    admin.run(&["apps:create", "quiet"]).success();
    gitd.kill();
    let logs = admin
        .run(&["logs", "-a", "quiet"])
        .error("could not reach the paas server at ");
    assert!(!logs.stderr.contains("Caused by"), "{logs}");
    for other in [&["apps"][..], &["logs", "-t", "-a", "quiet"][..]] {
        admin
            .run(other)
            .error("could not reach the paas server at ");
    }
}
