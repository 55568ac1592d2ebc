//! End-to-end tests: one binary, one module per area, shared helpers in `util`.

mod util;

mod addons;
mod attach;
mod bad_input;
mod builds;
mod checks;
mod cli_remotes;
mod control_plane;
mod credentials;
mod cron;
mod deploys;
mod domains;
mod faults_agent;
mod faults_control_plane;
mod faults_gitd;
mod git_push;
mod instances;
mod isolation_builds;
mod isolation_http;
mod isolation_quotas;
mod isolation_routing;
mod isolation_ssh;
mod logs;
mod maintenance;
mod notes;
mod oneoff;
mod operations_guide;
mod platform;
mod release_phase;
mod resources;
mod rollback;
mod runtime;
mod ssh_security;
mod sticky;
mod storage;
