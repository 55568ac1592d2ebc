//! How an app's traffic is routed, beyond its hosts: maintenance mode and sticky sessions.
//!
//! gitd's API:
//!
//! | route | body → answer |
//! |---|---|
//! | `GET /v1/apps/{app}/maintenance` | → [`Maintenance`] |
//! | `PUT /v1/apps/{app}/maintenance` | [`Maintenance`] → [`Maintenance`], once Traefik was told |
//! | `GET /v1/apps/{app}/sticky` | → [`StickySessions`] |
//! | `PUT /v1/apps/{app}/sticky` | [`StickySessions`] → [`StickySessions`], once the app runs with it |
//!
//! The agent's: `PUT /v1/apps/{app}/maintenance` with a [`Maintenance`] → the same, once the
//! app's hosts answer with the maintenance page (or, off, with the app again). Sticky sessions
//! reach the agent inside the app's spec (`AppSpec::sticky_sessions`), since they change the
//! app's containers.

use serde::{Deserialize, Serialize};

/// Whether an app's hosts answer 503 with the maintenance page instead of the app (whose
/// instances keep running).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    pub enabled: bool,
}

/// Whether Traefik keeps a client on the `web` instance that first answered it (a cookie).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickySessions {
    pub enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toggles_are_one_boolean_and_nothing_else() {
        let on: Maintenance = serde_json::from_str(r#"{"enabled":true}"#).unwrap();
        assert!(on.enabled);
        assert!(serde_json::from_str::<Maintenance>(r#"{"enabled":"yes"}"#).is_err());
        assert!(serde_json::from_str::<StickySessions>(r#"{"enabled":true,"x":1}"#).is_err());
        assert_eq!(
            serde_json::to_string(&StickySessions { enabled: false }).unwrap(),
            r#"{"enabled":false}"#
        );
    }
}
