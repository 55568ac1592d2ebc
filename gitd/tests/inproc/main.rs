//! In-process tests of gitd: the real server ([`paas_gitd::serve`]) on loopback listeners,
//! a fresh data dir each, against a fake agent that speaks the agent's HTTP API
//! ([`util::FakeAgent`]). The end-to-end tests (`e2e/`) run the same paths against the real
//! agent, Docker and Traefik.

mod util;

mod builds;
mod dashboard;
mod ops;
mod recovery;
mod release_phase;
mod run;
mod serve;
mod sticky;
