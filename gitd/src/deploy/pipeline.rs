//! The push-specific steps of a deploy, used by [`crate::ops::push`]: which ref update
//! deploys, which builder builds the tree, and streaming the tree to the agent's build.

use std::collections::BTreeMap;

use paas_api::ConfigKey;
use paas_api::agent::{BuildEvent, BuildSpec, Builder};
use tokio::io::AsyncReadExt;

use super::protocol::RefUpdate;
use super::source::{self, PushedSource, SourceFiles};

/// The one ref update that deploys. Only the deploy branch may be pushed; `master` stands in
/// for a `main` deploy branch while the repository has no `main` (as on Heroku).
pub async fn deploy_update<'a>(
    source: &PushedSource,
    deploy_branch: &str,
    updates: &'a [RefUpdate],
) -> Result<&'a RefUpdate, String> {
    let master_allowed = deploy_branch == "main" && {
        let source = source.clone();
        !tokio::task::spawn_blocking(move || source.has_branch("main"))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read the repository: {e}"))?
    };
    let deploy_ref = format!("refs/heads/{deploy_branch}");
    for update in updates {
        let allowed =
            update.name == deploy_ref || (master_allowed && update.name == "refs/heads/master");
        if !allowed {
            // The server sees only the remote ref: the local branch that was pushed to it has
            // no name here, so the hint names the one ref it knows and HEAD for the other.
            return Err(format!(
                "Refusing to update {}: only the `{deploy_branch}` branch deploys; to deploy a local branch push it to `{deploy_branch}`: `git push paas BRANCH:{deploy_branch}` (the checked-out one: `git push paas HEAD:{deploy_branch}`)",
                update.name
            ));
        }
    }
    let [update] = updates else {
        return Err("Push one deploy branch at a time".to_owned());
    };
    if update.is_deletion() {
        return Err(format!(
            "Refusing to delete the deploy branch `{deploy_branch}`"
        ));
    }
    Ok(update)
}

/// buildpacks.yaml → pack with its settings; else a root Dockerfile → docker build; else pack
/// with the default builder. Config vars reach pack as its build environment (overriding
/// buildpacks.yaml's `env`), and a Dockerfile as build args when it declares them with `ARG`.
pub fn choose_builder(
    files: &SourceFiles,
    config: &BTreeMap<ConfigKey, String>,
    default_builder: &str,
) -> (Builder, String) {
    let pack = |builder: &str, buildpacks: Vec<String>, path: String, env: BTreeMap<_, _>| {
        let mut env: BTreeMap<String, String> = env;
        env.extend(config.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut description = format!("Using buildpacks: builder {builder}");
        if !buildpacks.is_empty() {
            description.push_str(&format!(", buildpacks {}", buildpacks.join(", ")));
        }
        if path != "." {
            description.push_str(&format!(", path {path}"));
        }
        (
            Builder::Pack {
                builder: builder.to_owned(),
                buildpacks,
                path,
                env,
                trust_builder: builder == default_builder,
            },
            description,
        )
    };
    if let Some(file) = &files.buildpacks {
        let builder = file.builder.as_deref().unwrap_or(default_builder);
        return pack(
            builder,
            file.buildpacks.clone(),
            file.path.clone(),
            file.env.clone(),
        );
    }
    if let Some(dockerfile) = &files.dockerfile {
        let wanted = source::dockerfile_args(dockerfile);
        let build_args = config
            .iter()
            .filter(|(key, _)| wanted.contains(key.as_str()))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        return (
            Builder::Dockerfile {
                dockerfile: "Dockerfile".to_owned(),
                build_args,
            },
            "Building with Dockerfile".to_owned(),
        );
    }
    pack(default_builder, Vec::new(), ".".to_owned(), BTreeMap::new())
}

/// Streams the tree to the agent and hands each line of its output to `on_line`; gives up
/// when `pusher_gone` resolves. The image as the agent named it.
pub async fn build(
    agent: &paas_agent_client::AgentClient,
    source: &PushedSource,
    commit: &str,
    spec: &BuildSpec,
    mut on_line: impl FnMut(&str),
    pusher_gone: impl Future<Output = ()>,
) -> Result<String, String> {
    let mut archive = source
        .archive(commit)
        .map_err(|e| format!("cannot run git archive: {e}"))?;
    let tar = archive.stdout.take().expect("stdout is piped");
    let mut archive_stderr = archive.stderr.take().expect("stderr is piped");
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        let _ = (&mut archive_stderr)
            .take(4096)
            .read_to_string(&mut text)
            .await;
        text
    });
    let built = agent.build(spec, tar, |event| {
        if let BuildEvent::Line(line) = event {
            on_line(&line);
        }
    });
    let outcome = tokio::select! {
        result = built => result.map(|built| built.image).map_err(|e| e.to_string()),
        () = pusher_gone => Err("the push was interrupted".to_owned()),
    };
    if outcome.is_err() {
        let _ = archive.start_kill();
    }
    let status = archive.wait().await;
    // After a successful build the agent may stop reading at the tar's end marker, so only a
    // failed build looks at how git archive ended.
    if outcome.is_err()
        && let Ok(status) = status
        && status.code().is_some_and(|code| code != 0)
    {
        let stderr = stderr_text.await.unwrap_or_default();
        return Err(format!(
            "cannot export the pushed tree: {}",
            stderr.lines().last().unwrap_or("git archive failed")
        ));
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use paas_api::buildpacks::BuildpacksFile;

    fn config() -> BTreeMap<ConfigKey, String> {
        [
            ("GREETING".parse().unwrap(), "hi".to_owned()),
            ("SECRET".parse().unwrap(), "s3cret".to_owned()),
        ]
        .into()
    }

    fn env() -> BTreeMap<String, String> {
        config().into_iter().map(|(k, v)| (k.into(), v)).collect()
    }

    #[test]
    fn buildpacks_yaml_wins_and_config_overrides_its_env() {
        let files = SourceFiles {
            buildpacks: Some(BuildpacksFile {
                path: "web".into(),
                builder: Some("my/builder".into()),
                buildpacks: vec!["a/b".into()],
                env: [
                    ("BP_X".to_owned(), "1".to_owned()),
                    ("GREETING".to_owned(), "from-yaml".to_owned()),
                ]
                .into(),
            }),
            dockerfile: Some("FROM x\n".into()),
            ..SourceFiles::default()
        };
        let (builder, description) = choose_builder(&files, &config(), "heroku/builder:24");
        assert_eq!(
            builder,
            Builder::Pack {
                builder: "my/builder".into(),
                buildpacks: vec!["a/b".into()],
                path: "web".into(),
                env: [
                    ("BP_X".to_owned(), "1".to_owned()),
                    ("GREETING".to_owned(), "hi".to_owned()),
                    ("SECRET".to_owned(), "s3cret".to_owned()),
                ]
                .into(),
                trust_builder: false,
            }
        );
        assert_eq!(
            description,
            "Using buildpacks: builder my/builder, buildpacks a/b, path web"
        );
    }

    #[test]
    fn dockerfile_gets_only_the_args_it_declares() {
        let files = SourceFiles {
            dockerfile: Some("FROM x\nARG GREETING\n".into()),
            ..SourceFiles::default()
        };
        let (builder, description) = choose_builder(&files, &config(), "heroku/builder:24");
        assert_eq!(
            builder,
            Builder::Dockerfile {
                dockerfile: "Dockerfile".into(),
                build_args: [("GREETING".to_owned(), "hi".to_owned())].into(),
            }
        );
        assert_eq!(description, "Building with Dockerfile");
    }

    #[test]
    fn default_builder_otherwise() {
        let (builder, _) = choose_builder(&SourceFiles::default(), &config(), "heroku/builder:24");
        assert_eq!(
            builder,
            Builder::Pack {
                builder: "heroku/builder:24".into(),
                buildpacks: vec![],
                path: ".".into(),
                env: env(),
                trust_builder: true,
            }
        );
    }
}
