//! The agent's add-on API (contract in `paas_api::addons`): create an add-on's service and
//! get its URL, ask how it is (and a Postgres's numbers), put it on an app's network or take it off, destroy it.

use std::time::Duration;

use futures::StreamExt;
use paas_api::addons::{PostgresStats, ServiceCreated, ServiceSpec, ServiceStatus};
use paas_api::progress::{ChangeEvent, Progress};
use reqwest::{Method, RequestBuilder};

use super::{AgentClient, RuntimeError, describe};
use crate::logs::ndjson;

/// A new add-on may pull its image and initialise its data first.
const CREATE_TIMEOUT: Duration = Duration::from_secs(600);
/// Status runs a probe or two in the container; the rest are single Docker calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl AgentClient {
    /// `PUT /v1/addons/{owner}/{name}`: answers once the service accepts connections, handing
    /// what it waits for meanwhile to `on_progress`.
    pub async fn create_addon(
        &self,
        owner: &str,
        name: &str,
        spec: &ServiceSpec,
        mut on_progress: impl FnMut(Progress),
    ) -> Result<ServiceCreated, RuntimeError> {
        let builder = self
            .runtime_request(Method::PUT, &format!("/v1/addons/{owner}/{name}"))
            .timeout(CREATE_TIMEOUT)
            .json(spec);
        let response = self.send_checked(builder).await?;
        let mut events = std::pin::pin!(ndjson::<ChangeEvent<ServiceCreated>>(response));
        while let Some(event) = events.next().await {
            match event? {
                ChangeEvent::Progress(progress) => on_progress(progress),
                ChangeEvent::Done(created) => return Ok(created),
                ChangeEvent::Failed(body) => {
                    return Err(RuntimeError::Rejected(body.error.message));
                }
            }
        }
        Err(RuntimeError::Truncated)
    }

    /// `GET /v1/addons/{owner}/{name}`.
    pub async fn addon_status(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<ServiceStatus, RuntimeError> {
        let builder = self
            .runtime_request(Method::GET, &format!("/v1/addons/{owner}/{name}"))
            .timeout(CALL_TIMEOUT);
        self.answer(builder).await
    }

    /// `GET /v1/addons/{owner}/{name}/pg-info`: what a running Postgres says of its database.
    pub async fn postgres_stats(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<PostgresStats, RuntimeError> {
        let builder = self
            .runtime_request(Method::GET, &format!("/v1/addons/{owner}/{name}/pg-info"))
            .timeout(CALL_TIMEOUT);
        self.answer(builder).await
    }

    /// `PUT /v1/addons/{owner}/{name}/networks/{app}`: the add-on joins the app's network.
    pub async fn attach_addon(
        &self,
        owner: &str,
        name: &str,
        app: &str,
    ) -> Result<(), RuntimeError> {
        self.addon_network(Method::PUT, owner, name, app).await
    }

    /// `DELETE /v1/addons/{owner}/{name}/networks/{app}`: the add-on leaves the app's network.
    pub async fn detach_addon(
        &self,
        owner: &str,
        name: &str,
        app: &str,
    ) -> Result<(), RuntimeError> {
        self.addon_network(Method::DELETE, owner, name, app).await
    }

    async fn addon_network(
        &self,
        method: Method,
        owner: &str,
        name: &str,
        app: &str,
    ) -> Result<(), RuntimeError> {
        let path = format!("/v1/addons/{owner}/{name}/networks/{app}");
        let builder = self.runtime_request(method, &path).timeout(CALL_TIMEOUT);
        self.send_checked(builder).await.map(drop)
    }

    /// `DELETE /v1/addons/{owner}/{name}`: its container, then its volume and data.
    pub async fn destroy_addon(&self, owner: &str, name: &str) -> Result<(), RuntimeError> {
        let builder = self
            .runtime_request(Method::DELETE, &format!("/v1/addons/{owner}/{name}"))
            .timeout(CALL_TIMEOUT);
        self.send_checked(builder).await.map(drop)
    }

    /// Sends the request and reads its JSON answer.
    pub(crate) async fn answer<T: serde::de::DeserializeOwned>(
        &self,
        builder: RequestBuilder,
    ) -> Result<T, RuntimeError> {
        let response = self.send_checked(builder).await?;
        let body = response
            .bytes()
            .await
            .map_err(|err| RuntimeError::Stream(describe(&err)))?;
        serde_json::from_slice(&body).map_err(|err| RuntimeError::BadAnswer(err.to_string()))
    }
}
