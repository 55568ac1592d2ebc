//! What every HTTP handler of the agent shares.

use std::sync::Arc;

use bollard::Docker;

use crate::config::AgentConfig;
use crate::events::EventLog;
use crate::instances::InstanceCache;
use crate::maintenance::MaintenanceRoutes;
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
    /// The routes of apps in maintenance (`paas maintenance:on`).
    pub maintenance: Arc<MaintenanceRoutes>,
}
