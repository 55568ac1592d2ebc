//! The names of an app's images in the registry the agent pushes them to (`[registry]` in its
//! config): `<address>/paas/<app>:v<N>` while pushing, and `<address>/paas/<app>@sha256:…`,
//! the pushed digest, for what the app runs, so that every node runs the very same bytes.

use serde::{Deserialize, Serialize};

/// A registry the agent's engine pushes to and every node pulls from, given by its base URL
/// (`http://10.231.0.1:5000`, `https://registry.example.com`). Images are named by the URL's
/// host and port; the agent calls the URL itself to delete what it prunes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Registry {
    url: String,
    /// `host[:port]`, as image references name the registry.
    address: String,
}

impl TryFrom<String> for Registry {
    type Error = String;

    fn try_from(url: String) -> Result<Registry, String> {
        let invalid = |why: &str| {
            Err(format!(
                "registry url {url:?} {why}; write it as http://HOST:PORT or https://HOST[:PORT]"
            ))
        };
        let Some(rest) = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
        else {
            return invalid("must start with http:// or https://");
        };
        let address = rest.strip_suffix('/').unwrap_or(rest);
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
        if address.is_empty() || !address.chars().all(plain) {
            return invalid("must be a scheme, a host and a port only");
        }
        // Docker takes a first path component without a dot or a port for a Docker Hub user.
        if !(address.contains(['.', ':']) || address == "localhost") {
            return invalid("needs a dotted host name, an address or a port");
        }
        let address = address.to_owned();
        let url = format!("{}{address}", &url[..url.len() - rest.len()]);
        Ok(Registry { url, address })
    }
}

impl From<Registry> for String {
    fn from(registry: Registry) -> String {
        registry.url
    }
}

impl Registry {
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `<address>/paas/<app>`.
    pub fn repository(&self, app: &str) -> String {
        format!("{}/{}", self.address, super::image_repository(app))
    }

    /// The tag `release`'s image is pushed as.
    pub fn push_tag(&self, app: &str, release: u32) -> String {
        format!("{}:v{release}", self.repository(app))
    }

    /// The digest reference of `app`'s image in this registry among an image's
    /// `RepoDigests`: what the app runs once its image is pushed.
    pub fn pinned(&self, app: &str, repo_digests: &[String]) -> Option<String> {
        let prefix = format!("{}@sha256:", self.repository(app));
        repo_digests
            .iter()
            .find(|reference| {
                reference.strip_prefix(&prefix).is_some_and(|hex| {
                    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
                })
            })
            .cloned()
    }

    /// The registry API URL that deletes a pinned reference's manifest; `None` for a
    /// reference that is not one of `app`'s in this registry.
    pub fn manifest_url(&self, app: &str, pinned: &str) -> Option<String> {
        let digest = pinned
            .strip_prefix(&self.repository(app))?
            .strip_prefix('@')?;
        Some(format!(
            "{}/v2/{}/manifests/{digest}",
            self.url,
            super::image_repository(app)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(url: &str) -> Registry {
        Registry::try_from(url.to_owned()).unwrap()
    }

    const DIGEST: &str = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4";

    #[test]
    fn images_are_named_by_the_registry_address() {
        let local = registry("http://10.231.0.1:5000/");
        assert_eq!(local.address(), "10.231.0.1:5000");
        assert_eq!(local.repository("hello"), "10.231.0.1:5000/paas/hello");
        assert_eq!(local.push_tag("hello", 3), "10.231.0.1:5000/paas/hello:v3");
        assert_eq!(
            String::from(local),
            "http://10.231.0.1:5000",
            "the trailing slash is dropped"
        );
        let tls = registry("https://registry.example.com");
        assert_eq!(tls.push_tag("web", 1), "registry.example.com/paas/web:v1");
    }

    #[test]
    fn the_pinned_reference_is_the_apps_digest_in_this_registry_only() {
        let local = registry("http://127.0.0.1:5000");
        let ours = format!("127.0.0.1:5000/paas/hello@sha256:{DIGEST}");
        let digests = vec![
            format!("127.0.0.1:5001/paas/hello@sha256:{DIGEST}"),
            format!("127.0.0.1:5000/paas/hello-two@sha256:{DIGEST}"),
            "127.0.0.1:5000/paas/hello@sha256:short".to_owned(),
            ours.clone(),
        ];
        assert_eq!(local.pinned("hello", &digests), Some(ours.clone()));
        assert_eq!(local.pinned("other", &digests), None);
        assert_eq!(
            local.manifest_url("hello", &ours).unwrap(),
            format!("http://127.0.0.1:5000/v2/paas/hello/manifests/sha256:{DIGEST}")
        );
        assert_eq!(local.manifest_url("other", &ours), None);
        assert_eq!(local.manifest_url("hello", "paas/hello:v1"), None);
    }

    #[test]
    fn urls_other_than_scheme_host_and_port_are_refused() {
        for bad in [
            "10.231.0.1:5000",
            "ftp://host:21",
            "http://",
            "http://host/path",
            "http://user@host:5000",
            "http://host:5000?x=1",
            "http://registry",
        ] {
            let err = Registry::try_from(bad.to_owned()).unwrap_err();
            assert!(err.contains("http://HOST:PORT"), "{bad}: {err}");
        }
        assert!(Registry::try_from("http://localhost".to_owned()).is_ok());
    }
}
