//! The contract between gitd and paas-agent (the agent's HTTP API, bearer-token protected).
//!
//! `POST /v1/builds`: the body is one line of JSON ([`BuildSpec`]) followed by a tar archive
//! of the build context. The answer streams NDJSON [`BuildEvent`]s as the build runs, ending
//! with exactly one `done` or `failed` event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    pub app: String,
    pub release: u32,
    /// Tag to produce, `paas/<app>:v<release>`.
    pub image: String,
    /// Labels put on the image (`paas.app`, `paas.release`, `paas.commit`).
    pub labels: BTreeMap<String, String>,
    pub builder: Builder,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Builder {
    /// `docker build` of the context; `dockerfile` is relative to the context root.
    Dockerfile {
        dockerfile: String,
        build_args: BTreeMap<String, String>,
    },
    /// `pack build` of `path` (relative to the context root).
    Pack {
        builder: String,
        buildpacks: Vec<String>,
        path: String,
        /// Passed to pack through its environment and named with `--env KEY`, never in argv.
        env: BTreeMap<String, String>,
        trust_builder: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildEvent {
    /// One line of builder output.
    Line(String),
    /// The image was built and tagged.
    Done { image: String, image_id: String },
    /// The build failed; `reason` is one line.
    Failed { reason: String },
}
