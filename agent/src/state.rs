//! What every HTTP handler of the agent shares.

use std::sync::Arc;

use bollard::Docker;

use crate::config::AgentConfig;
use crate::events::EventLog;
use crate::instances::InstanceCache;
use crate::logs::router::RouterLines;
use crate::pages::PageRoutes;
use crate::runtime::RuntimeState;

#[derive(Clone)]
pub struct AgentState {
    /// Connected to the local engine, API version negotiated (Debian's engine 20.10 is older
    /// than bollard's default).
    pub docker: Docker,
    pub config: Arc<AgentConfig>,
    pub runtime: Arc<RuntimeState>,
    /// The instance events of this run, fed by [`crate::events::watch_docker`].
    pub events: Arc<EventLog>,
    /// The apps' instances as Docker's events keep them.
    pub instances: Arc<InstanceCache>,
    /// The routes of apps to the agent's pages (maintenance, no web processes).
    pub pages: Arc<PageRoutes>,
    /// The router's lines as they are read from Traefik's access log, for `logs --tail`.
    pub router: Arc<RouterLines>,
    /// The metrics rounds kept for gitd, fed by [`crate::metrics::sample_rounds`].
    pub metrics: Arc<crate::metrics::SampleLog>,
}
