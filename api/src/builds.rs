//! Builds: one per push that got as far as building, numbered per app (1, 2, …) apart from
//! releases. A build that fails makes no release; one that succeeds makes the release it is
//! deployed as, whatever becomes of that release. As Heroku's builds, each keeps its output.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/apps/{app}/builds?limit=N` | → `Vec<`[`Build`]`>`, newest first |
//! | `GET /v1/apps/{app}/builds/{id}/output` | → [`BuildOutput`] |

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::names::Username;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildStatus {
    /// Building now.
    Pending,
    /// Built an image, deployed as `release`.
    Succeeded,
    /// No image: the push was rejected.
    Failed,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Pending => "pending",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// The app's build number: 1, 2, …
    pub id: u32,
    pub status: BuildStatus,
    /// The pushed commit it was built from.
    pub commit: String,
    pub user: Username,
    pub created_at: DateTime<Utc>,
    /// When it succeeded or failed; none while pending.
    pub finished_at: Option<DateTime<Utc>>,
    /// The release it was deployed as; none unless it succeeded (a failed build recorded
    /// before builds were numbered apart keeps the release number it took).
    pub release: Option<u32>,
}

/// What the build's push printed: the build and, once it made a release, that release's
/// release phase and rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildOutput {
    pub id: u32,
    pub output: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_heroku_words_on_the_wire() {
        for status in [
            BuildStatus::Pending,
            BuildStatus::Succeeded,
            BuildStatus::Failed,
        ] {
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.as_str())
            );
        }
    }
}
