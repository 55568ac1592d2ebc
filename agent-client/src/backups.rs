//! The agent's Postgres backup API (contract in `paas_api::backups`): list an add-on's
//! captures, capture one, stream one's file, delete one, restore one into an add-on of the
//! same owner.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use paas_api::backups::{Backup, RestoreSpec};
use reqwest::Method;

use super::{AgentClient, RuntimeError, describe};

/// A capture or a restore takes as long as the database is big; this bounds a stuck one.
const DUMP_TIMEOUT: Duration = Duration::from_secs(6 * 60 * 60);
/// Listing and deleting read or remove files only.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl AgentClient {
    /// `GET /v1/addons/{owner}/{name}/backups`, oldest first.
    pub async fn backups(&self, owner: &str, name: &str) -> Result<Vec<Backup>, RuntimeError> {
        let builder = self
            .runtime_request(Method::GET, &format!("/v1/addons/{owner}/{name}/backups"))
            .timeout(CALL_TIMEOUT);
        self.answer(builder).await
    }

    /// `POST /v1/addons/{owner}/{name}/backups`: answers once the capture is complete.
    pub async fn capture_backup(&self, owner: &str, name: &str) -> Result<Backup, RuntimeError> {
        let builder = self
            .runtime_request(Method::POST, &format!("/v1/addons/{owner}/{name}/backups"))
            .timeout(DUMP_TIMEOUT);
        self.answer(builder).await
    }

    /// `GET /v1/addons/{owner}/{name}/backups/{id}`: the file's length and its bytes as they
    /// arrive, never held whole.
    pub async fn download_backup(
        &self,
        owner: &str,
        name: &str,
        id: &str,
    ) -> Result<
        (
            Option<u64>,
            impl Stream<Item = Result<Bytes, RuntimeError>> + Send + 'static,
        ),
        RuntimeError,
    > {
        let path = format!("/v1/addons/{owner}/{name}/backups/{id}");
        let response = self
            .send_checked(self.runtime_request(Method::GET, &path))
            .await?;
        let length = response.content_length();
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(|err| RuntimeError::Stream(describe(&err))));
        Ok((length, body))
    }

    /// `DELETE /v1/addons/{owner}/{name}/backups/{id}`.
    pub async fn delete_backup(
        &self,
        owner: &str,
        name: &str,
        id: &str,
    ) -> Result<(), RuntimeError> {
        let path = format!("/v1/addons/{owner}/{name}/backups/{id}");
        let builder = self
            .runtime_request(Method::DELETE, &path)
            .timeout(CALL_TIMEOUT);
        self.send_checked(builder).await.map(drop)
    }

    /// `POST /v1/addons/{owner}/{name}/restores`: answers once the data is replaced, or
    /// fails with it unchanged.
    pub async fn restore_backup(
        &self,
        owner: &str,
        name: &str,
        spec: &RestoreSpec,
    ) -> Result<(), RuntimeError> {
        let builder = self
            .runtime_request(Method::POST, &format!("/v1/addons/{owner}/{name}/restores"))
            .timeout(DUMP_TIMEOUT)
            .json(spec);
        self.send_checked(builder).await.map(drop)
    }
}
