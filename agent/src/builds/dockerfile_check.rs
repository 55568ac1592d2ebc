//! What a pushed Dockerfile may not do, checked before the engine sees it. Pure: the engine's
//! answers about referenced images come in as [`ImageLookup`]s (gathered by
//! [`super::image_check`]).
//!
//! - No `ADD` (or `COPY`) of a remote URL, however spelled (variables from `ARG`, build args,
//!   `ENV` or the base image, the JSON form, continuations, the escape directive, `ONBUILD`,
//!   a base image's own `ONBUILD` triggers): the classic builder fetches it with the daemon's
//!   own network on the host, which reaches the host's loopback and link-local addresses.
//! - Every image named by `FROM` or `COPY --from` (after `ARG` expansion) must be found by a
//!   tag, not by an id or id prefix, and must not be another app's image.
//!
//! The rules run with the escape character the Dockerfile declares and with the other one, so a
//! difference of opinion about the directive cannot hide an instruction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::dockerfile_parse::{
    Instruction, ParseError, argument_readings, escape_directive, expand_word, instructions,
    split_flags,
};

/// What the engine knows about an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLookup {
    /// No local image answers to it (the engine would try a registry).
    Missing,
    Found(ImageFacts),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// `repository:tag` names, as the engine lists them (`paas/busybox:latest`).
    pub repo_tags: Vec<String>,
    /// `repository@sha256:…` names.
    pub repo_digests: Vec<String>,
    pub app_label: Option<String>,
    /// `KEY=VALUE` entries of the image's config.
    pub env: Vec<String>,
    /// The image's `ONBUILD` triggers, which run in any build `FROM` it.
    pub onbuild: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(
        "Dockerfile line {line}: {keyword} of a URL (`{url}`) is not allowed: the build host would fetch it from its own network; download it in a RUN step instead (e.g. RUN wget -O /dest URL)"
    )]
    RemoteSource {
        line: usize,
        keyword: String,
        url: String,
    },
    #[error(
        "Dockerfile line {line}: `{word}` uses a variable form paas cannot check here; spell the value out"
    )]
    UncheckableWord { line: usize, word: String },
    #[error("Dockerfile line {line}: {problem}")]
    Image { line: usize, problem: ImageProblem },
}

/// Why an image reference is refused (shared with the pack builder checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageProblem {
    #[error("`{0}` names an image by its id; name base images by repository:tag")]
    ById(String),
    #[error(
        "`{reference}` is the image of another app ({owner}); build on a base image or on this app's own images"
    )]
    OtherApp { reference: String, owner: String },
    #[error(
        "`{0}` names its registry by address or as localhost: the engine would pull it from the build host's own network; use a registry by its public name"
    )]
    RegistryByAddress(String),
}

/// The value of a variable set with a form the lexer does not model; it cannot occur in a
/// Dockerfile (NUL), so any word it reaches is refused.
const UNCHECKABLE: &str = "\0uncheckable\0";

/// The outcome of one pass: the images still to look up, or the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Look these references up and check again.
    NeedImages(BTreeSet<String>),
    Allowed,
}

/// Checks `text` for `app`, with the build args the build will get and what is known so far
/// about the images it names.
pub fn check(
    text: &str,
    build_args: &BTreeMap<String, String>,
    app: &str,
    images: &HashMap<String, ImageLookup>,
) -> Result<Checked, CheckError> {
    let declared = escape_directive(text)?;
    let other = if declared == '\\' { '`' } else { '\\' };
    let mut need = BTreeSet::new();
    let mut first_error = None;
    for escape in [declared, other] {
        let mut pass = Pass {
            escape,
            app,
            build_args,
            images,
            need: BTreeSet::new(),
            stages: Vec::new(),
            globals: HashMap::new(),
            env: HashMap::new(),
            args: HashMap::new(),
            in_stage: false,
            stage_name: None,
        };
        let result = pass.run(&instructions(text, escape));
        need.extend(pass.need);
        if let Err(err) = result {
            first_error.get_or_insert(err);
        }
    }
    if !need.is_empty() {
        return Ok(Checked::NeedImages(need));
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(Checked::Allowed),
    }
}

struct Stage {
    name: Option<String>,
    env: HashMap<String, String>,
}

struct Pass<'a> {
    escape: char,
    app: &'a str,
    build_args: &'a BTreeMap<String, String>,
    images: &'a HashMap<String, ImageLookup>,
    need: BTreeSet<String>,
    stages: Vec<Stage>,
    /// `ARG`s before the first `FROM`, with build args applied.
    globals: HashMap<String, String>,
    env: HashMap<String, String>,
    args: HashMap<String, String>,
    in_stage: bool,
    /// The `AS` name of the stage being read.
    stage_name: Option<String>,
}

impl Pass<'_> {
    fn run(&mut self, instructions: &[Instruction]) -> Result<(), CheckError> {
        for instruction in instructions {
            self.instruction(instruction, false)?;
        }
        Ok(())
    }

    fn instruction(&mut self, instruction: &Instruction, trigger: bool) -> Result<(), CheckError> {
        let line = instruction.line;
        match instruction.keyword.as_str() {
            "FROM" if !trigger => self.from(line, &instruction.rest),
            "ARG" => {
                self.arg(line, &instruction.rest);
                Ok(())
            }
            "ENV" => {
                self.env_instruction(&instruction.rest);
                Ok(())
            }
            "ADD" | "COPY" => self.copy(line, &instruction.keyword, &instruction.rest),
            "ONBUILD" => {
                let inner = instructions(&instruction.rest, self.escape);
                for mut nested in inner {
                    nested.line = line;
                    self.instruction(&nested, true)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Variables visible to an instruction: `ENV` wins over `ARG`.
    fn vars(&self) -> HashMap<String, String> {
        let mut vars = self.args.clone();
        vars.extend(self.env.clone());
        vars
    }

    /// `word` expanded, or refused when it uses a form (or a variable set with a form) that
    /// is not modelled.
    fn expand(
        &self,
        line: usize,
        word: &str,
        vars: &HashMap<String, String>,
    ) -> Result<String, CheckError> {
        let uncheckable = || CheckError::UncheckableWord {
            line,
            word: word.to_owned(),
        };
        let expanded = expand_word(word, vars, self.escape).map_err(|_| uncheckable())?;
        if expanded.contains(UNCHECKABLE) {
            return Err(uncheckable());
        }
        Ok(expanded)
    }

    fn from(&mut self, line: usize, rest: &str) -> Result<(), CheckError> {
        if self.in_stage {
            self.stages.push(Stage {
                name: self.stage_name.take(),
                env: std::mem::take(&mut self.env),
            });
        }
        self.in_stage = true;
        self.args.clear();
        let (_, rest) = split_flags(rest);
        let words = split_blank(rest);
        let Some(raw) = words.first() else {
            return Ok(());
        };
        if words.len() >= 3 && words[1].eq_ignore_ascii_case("as") {
            self.stage_name = Some(words[2].to_ascii_lowercase());
        }
        let base = self.expand(line, raw, &self.globals.clone())?;
        if base.eq_ignore_ascii_case("scratch") {
            return Ok(());
        }
        if let Some(stage) = self.stage_named(&base) {
            self.env = stage.env.clone();
            return Ok(());
        }
        let facts = self.image(line, &base)?;
        if let Some(facts) = facts {
            self.env = facts
                .env
                .iter()
                .filter_map(|entry| entry.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            for trigger in &facts.onbuild {
                for mut nested in instructions(trigger, self.escape) {
                    nested.line = line;
                    self.instruction(&nested, true)?;
                }
            }
        }
        Ok(())
    }

    fn stage_named(&self, name: &str) -> Option<&Stage> {
        let name = name.to_ascii_lowercase();
        self.stages
            .iter()
            .rev()
            .find(|stage| stage.name.as_deref() == Some(name.as_str()))
    }

    /// Checks an image reference; its facts when the engine has it.
    fn image(&mut self, line: usize, reference: &str) -> Result<Option<ImageFacts>, CheckError> {
        let Some(lookup) = self.images.get(reference) else {
            self.need.insert(reference.to_owned());
            return Ok(None);
        };
        check_image(reference, lookup, self.app)
            .map_err(|problem| CheckError::Image { line, problem })?;
        Ok(match lookup {
            ImageLookup::Found(facts) => Some(facts.clone()),
            ImageLookup::Missing => None,
        })
    }

    fn arg(&mut self, line: usize, rest: &str) {
        for word in split_quoted(rest, self.escape) {
            let (name, default) = match word.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (word.clone(), None),
            };
            let vars = if self.in_stage {
                self.vars()
            } else {
                self.globals.clone()
            };
            let default = default.map(|value| {
                self.expand(line, &value, &vars)
                    .unwrap_or_else(|_| UNCHECKABLE.to_owned())
            });
            let value = self.build_args.get(&name).cloned().or(default).or_else(|| {
                self.in_stage
                    .then(|| self.globals.get(&name).cloned())
                    .flatten()
            });
            let scope = if self.in_stage {
                &mut self.args
            } else {
                &mut self.globals
            };
            match value {
                Some(value) => scope.insert(name, value),
                None => scope.remove(&name),
            };
        }
    }

    fn env_instruction(&mut self, rest: &str) {
        let words = split_quoted(rest, self.escape);
        let vars = self.vars();
        let expand = |value: &str| {
            expand_word(value, &vars, self.escape).unwrap_or_else(|_| UNCHECKABLE.to_owned())
        };
        if words.first().is_some_and(|w| !w.contains('=')) {
            // Legacy `ENV KEY value with spaces`.
            let key = words[0].clone();
            let value = rest
                .trim_start_matches([' ', '\t'])
                .strip_prefix(key.as_str())
                .unwrap_or_default()
                .trim_matches([' ', '\t']);
            let value = expand(value);
            self.env.insert(key, value);
            return;
        }
        let pairs: Vec<(String, String)> = words
            .iter()
            .filter_map(|word| word.split_once('='))
            .map(|(k, v)| (k.to_owned(), expand(v)))
            .collect();
        self.env.extend(pairs);
    }

    fn copy(&mut self, line: usize, keyword: &str, rest: &str) -> Result<(), CheckError> {
        let (flags, rest) = split_flags(rest);
        let vars = self.vars();
        for words in argument_readings(rest) {
            // The last word is the destination (a lone word is checked too: the engine
            // refuses it).
            let sources = if words.len() > 1 {
                &words[..words.len() - 1]
            } else {
                &words[..]
            };
            for source in sources {
                let expanded = self.expand(line, source, &vars)?;
                if is_remote(source) || is_remote(&expanded) {
                    return Err(CheckError::RemoteSource {
                        line,
                        keyword: keyword.to_owned(),
                        url: if is_remote(&expanded) {
                            expanded
                        } else {
                            source.clone()
                        },
                    });
                }
            }
        }
        for (name, raw) in flags {
            if name != "from" || raw.is_empty() {
                continue;
            }
            let expanded = self.expand(line, &raw, &vars)?;
            for candidate in BTreeSet::from([raw, expanded]) {
                if self.is_stage_reference(&candidate) {
                    continue;
                }
                self.image(line, &candidate)?;
            }
        }
        Ok(())
    }

    /// A stage name, or the index of an earlier stage.
    fn is_stage_reference(&self, word: &str) -> bool {
        self.stage_named(word).is_some()
            || self.stage_name.as_deref() == Some(word.to_ascii_lowercase().as_str())
            || word
                .parse::<usize>()
                .is_ok_and(|index| index < self.stages.len())
    }
}

/// `http://…`, `https://…` and any other `scheme://`: nothing in a build context has one.
fn is_remote(word: &str) -> bool {
    word.contains("://")
}

fn split_blank(text: &str) -> Vec<&str> {
    text.split(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whitespace-separated words (moby's `parseWords`), whitespace inside quotes or escaped kept
/// (quotes are left for expansion).
fn split_quoted(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (_, c) if c == escape => {
                word.push(c);
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The image rules, for `FROM`, `COPY --from` and pack's builder, run and buildpack images.
pub fn check_image(reference: &str, lookup: &ImageLookup, app: &str) -> Result<(), ImageProblem> {
    let other_app = |owner: &str| ImageProblem::OtherApp {
        reference: reference.to_owned(),
        owner: owner.to_owned(),
    };
    let familiar = familiar_name(reference);
    // By name, before any lookup: covers a release not built or not labelled yet. The tags an
    // image also carries say nothing: reproducible builds (pack) of two apps can share one.
    if let Some(owner) = crate::naming::image_tag_owner(&familiar)
        && owner != app
    {
        return Err(other_app(owner));
    }
    match lookup {
        ImageLookup::Missing => {
            if looks_like_id(reference) {
                return Err(ImageProblem::ById(reference.to_owned()));
            }
            // Not here, so the engine would pull it, from wherever the name says.
            if registry_by_address(reference) {
                return Err(ImageProblem::RegistryByAddress(reference.to_owned()));
            }
            Ok(())
        }
        ImageLookup::Found(facts) => {
            let by_name =
                facts.repo_tags.contains(&familiar) || facts.repo_digests.contains(&familiar);
            if !by_name {
                return Err(ImageProblem::ById(reference.to_owned()));
            }
            if let Some(owner) = facts.app_label.as_deref()
                && owner != app
            {
                return Err(other_app(owner));
            }
            Ok(())
        }
    }
}

/// Whether the registry part of `reference` is `localhost` or an IP address (`127.0.0.1:5000/x`,
/// `[::1]/x`, `169.254.169.254/x`): a pull from there reaches the host's own network.
fn registry_by_address(reference: &str) -> bool {
    let Some((first, _)) = reference.split_once('/') else {
        return false;
    };
    if !(first.contains(['.', ':']) || first == "localhost") {
        return false;
    }
    let host = match first.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => first.rsplit_once(':').map_or(first, |(host, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                host
            } else {
                first
            }
        }),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok()
        // Forms inet_aton accepts but Rust does not: `127.1`, `0x7f.0.0.1`, `2130706433`.
        || (host.starts_with(|c: char| c.is_ascii_digit())
            && host
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b'x' || b == b'X'))
}

/// An id (`sha256:…`) or something only an id prefix would match (hex, no repository form).
fn looks_like_id(reference: &str) -> bool {
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How the engine lists a reference among an image's names: without the default registry,
/// `:latest` added when there is neither tag nor digest.
pub fn familiar_name(reference: &str) -> String {
    let mut name = reference;
    for prefix in [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest;
            break;
        }
    }
    if let Some((repository, digest)) = name.split_once('@') {
        let repository = strip_tag(repository);
        return format!("{repository}@{digest}");
    }
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    if last_segment.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

fn strip_tag(repository: &str) -> &str {
    let slash = repository.rfind('/').map_or(0, |i| i + 1);
    match repository[slash..].find(':') {
        Some(colon) => &repository[..slash + colon],
        None => repository,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "mine";

    fn base() -> ImageLookup {
        ImageLookup::Found(ImageFacts {
            repo_tags: vec!["paas/busybox:latest".into()],
            ..ImageFacts::default()
        })
    }

    fn app_image(app: &str, version: u32) -> ImageLookup {
        ImageLookup::Found(ImageFacts {
            repo_tags: vec![format!("paas/{app}:v{version}")],
            app_label: Some(app.to_owned()),
            ..ImageFacts::default()
        })
    }

    fn known() -> HashMap<String, ImageLookup> {
        HashMap::from([
            ("paas/busybox:latest".to_owned(), base()),
            ("paas/busybox".to_owned(), base()),
            ("paas/victim:v1".to_owned(), app_image("victim", 1)),
            ("paas/mine:v1".to_owned(), app_image("mine", 1)),
            // What the engine answers for an id prefix: the image, whose tags do not say so.
            ("2e904ba6".to_owned(), app_image("victim", 1)),
            ("nosuch:1".to_owned(), ImageLookup::Missing),
        ])
    }

    /// Runs the check to the end, looking references up in `known` (missing otherwise).
    fn verdict_with(
        text: &str,
        args: &[(&str, &str)],
        mut images: HashMap<String, ImageLookup>,
    ) -> Result<(), CheckError> {
        let args: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        for _ in 0..10 {
            match check(text, &args, APP, &images)? {
                Checked::Allowed => return Ok(()),
                Checked::NeedImages(need) => {
                    for reference in need {
                        images.entry(reference).or_insert(ImageLookup::Missing);
                    }
                }
            }
        }
        panic!("the check did not settle");
    }

    fn verdict(text: &str, args: &[(&str, &str)]) -> Result<(), CheckError> {
        verdict_with(text, args, known())
    }

    fn refused_url(text: &str, args: &[(&str, &str)]) -> String {
        match verdict(text, args) {
            Err(err @ CheckError::RemoteSource { .. }) => err.to_string(),
            other => panic!("expected a URL refusal for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn ordinary_dockerfiles_pass() {
        for text in [
            "FROM paas/busybox:latest\nCOPY www /www\nADD app.tar.gz /app\nRUN wget -O /x http://example.com/x\n",
            "FROM paas/busybox AS build\nRUN echo\nFROM scratch\nCOPY --from=build /bin/sh /sh\nCOPY --from=0 /a /b\n",
            "ARG BASE=paas/busybox:latest\nFROM $BASE\nARG GREETING\nENV URL=http://x\nRUN echo $URL\n",
            "FROM paas/mine:v1\nCOPY --from=paas/mine:v1 /a /b\n",
            "# escape=`\nFROM paas/busybox:latest\nRUN echo `\n  hi\n",
            "FROM nosuch:1\n",
        ] {
            assert_eq!(verdict(text, &[]), Ok(()), "{text}");
        }
    }

    #[test]
    fn add_of_a_url_is_refused_however_spelled() {
        let message = refused_url(
            "FROM paas/busybox\nADD http://127.0.0.1:8080/canary /c\n",
            &[],
        );
        assert_eq!(
            message,
            "Dockerfile line 2: ADD of a URL (`http://127.0.0.1:8080/canary`) is not allowed: the build host would fetch it from its own network; download it in a RUN step instead (e.g. RUN wget -O /dest URL)"
        );
        for text in [
            "FROM paas/busybox\nadd --chown=1:1 https://169.254.169.254/ /c\n",
            "FROM paas/busybox\nARG U=http://127.0.0.1/x\nADD $U /c\n",
            "ARG U=http://127.0.0.1/x\nFROM paas/busybox\nARG U\nADD ${U} /c\n",
            "FROM paas/busybox\nENV H=127.0.0.1\nADD http://$H/x /c\n",
            "FROM paas/busybox\nENV P=http\nADD ${P}://h/x /c\n",
            "FROM paas/busybox\nADD [\"http://127.0.0.1/x\", \"/c\"]\n",
            "FROM paas/busybox\nADD [\"h\\\\ttp://127.0.0.1/x\", \"/c\"]\n",
            "FROM paas/busybox\nADD [\"http\\u003a//127.0.0.1/x\", \"/c\"] trailing\n",
            "FROM paas/busybox\nADD ht\\\n  # comment\ntp://127.0.0.1/x /c\n",
            "# escape=`\nFROM paas/busybox\nADD ht`\ntp://127.0.0.1/x /c\n",
            "FROM paas/busybox\nADD h\\ttp://127.0.0.1/x /c\n",
            "FROM paas/busybox\nADD \"http\"'://127.0.0.1/x' /c\n",
            "FROM paas/busybox\nADD ${NOPE:-http://127.0.0.1/x} /c\n",
            "FROM paas/busybox\nONBUILD ADD http://127.0.0.1/x /c\n",
            "FROM paas/busybox\nCOPY http://127.0.0.1/x /c\n",
            "FROM paas/busybox\nADD local.txt http://127.0.0.1/x /c\n",
        ] {
            refused_url(text, &[]);
        }
        // Build args reach ARG, and so the source.
        refused_url(
            "FROM paas/busybox\nARG SRC=local.txt\nADD $SRC /c\n",
            &[("SRC", "http://127.0.0.1/x")],
        );
    }

    #[test]
    fn a_url_from_the_base_images_env_or_triggers_is_refused() {
        let mut images = known();
        images.insert(
            "paas/mine:v2".into(),
            ImageLookup::Found(ImageFacts {
                repo_tags: vec!["paas/mine:v2".into()],
                app_label: Some(APP.into()),
                env: vec!["U=http://127.0.0.1/x".into()],
                onbuild: vec![],
                ..ImageFacts::default()
            }),
        );
        images.insert(
            "paas/mine:v3".into(),
            ImageLookup::Found(ImageFacts {
                repo_tags: vec!["paas/mine:v3".into()],
                app_label: Some(APP.into()),
                onbuild: vec!["ADD http://127.0.0.1/x /c".into()],
                ..ImageFacts::default()
            }),
        );
        let from_env = verdict_with("FROM paas/mine:v2\nADD $U /c\n", &[], images.clone());
        assert!(
            matches!(from_env, Err(CheckError::RemoteSource { .. })),
            "{from_env:?}"
        );
        let from_trigger = verdict_with("FROM paas/mine:v3\n", &[], images.clone());
        assert!(
            matches!(from_trigger, Err(CheckError::RemoteSource { .. })),
            "{from_trigger:?}"
        );
        // A later stage built on an earlier one keeps its env.
        let staged = verdict_with("FROM paas/mine:v2 AS a\nFROM a\nADD $U /c\n", &[], images);
        assert!(
            matches!(staged, Err(CheckError::RemoteSource { .. })),
            "{staged:?}"
        );
    }

    #[test]
    fn an_unmodelled_variable_form_in_a_source_is_refused() {
        let err = verdict("FROM paas/busybox\nADD ${U#x} /c\n", &[]).unwrap_err();
        assert!(
            matches!(err, CheckError::UncheckableWord { line: 2, .. }),
            "{err}"
        );
        // Also through a variable set with one.
        for text in [
            "FROM paas/busybox\nENV U=${X#y}\nADD $U /c\n",
            "FROM paas/busybox\nENV U ${X#y}\nADD $U /c\n",
            "ARG B=${X%y}\nFROM $B\n",
        ] {
            let err = verdict(text, &[]).unwrap_err();
            assert!(
                matches!(err, CheckError::UncheckableWord { .. }),
                "{text}: {err}"
            );
        }
        // Unused, it does no harm.
        assert_eq!(
            verdict("FROM paas/busybox\nENV U=${X#y}\nRUN echo\n", &[]),
            Ok(())
        );
    }

    fn refused_image(text: &str, args: &[(&str, &str)]) -> ImageProblem {
        match verdict(text, args) {
            Err(CheckError::Image { problem, .. }) => problem,
            other => panic!("expected an image refusal for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn other_apps_images_are_refused() {
        let victim = ImageProblem::OtherApp {
            reference: "paas/victim:v1".into(),
            owner: "victim".into(),
        };
        assert_eq!(refused_image("FROM paas/victim:v1\n", &[]), victim);
        assert_eq!(
            refused_image("FROM paas/busybox\nCOPY --from=paas/victim:v1 /a /b\n", &[]),
            victim
        );
        assert_eq!(
            refused_image("ARG BASE=paas/victim:v1\nFROM $BASE\n", &[]),
            victim
        );
        assert_eq!(
            refused_image(
                "ARG BASE=paas/busybox\nFROM ${BASE}\n",
                &[("BASE", "paas/victim:v1")]
            ),
            victim
        );
        assert_eq!(
            refused_image(
                "FROM paas/busybox\nARG S=paas/victim:v1\nCOPY --from=$S /a /b\n",
                &[]
            ),
            victim
        );
        assert_eq!(
            refused_image(
                "FROM paas/busybox\nONBUILD COPY --from=paas/victim:v1 /a /b\n",
                &[]
            ),
            victim
        );
        // Not built yet, or unlabelled: the release tag alone says whose it is.
        assert!(matches!(
            refused_image("FROM paas/victim:v9\n", &[]),
            ImageProblem::OtherApp { .. }
        ));
        assert_eq!(
            ImageProblem::OtherApp {
                reference: "paas/victim:v1".into(),
                owner: "victim".into()
            }
            .to_string(),
            "`paas/victim:v1` is the image of another app (victim); build on a base image or on this app's own images"
        );
    }

    #[test]
    fn unicode_whitespace_splits_arg_values_like_the_engine() {
        let victim = ImageProblem::OtherApp {
            reference: "paas/victim:v1".into(),
            owner: "victim".into(),
        };
        assert_eq!(
            refused_image("ARG B=paas/victim:v1\u{b}X=1\nFROM $B\n", &[]),
            victim
        );
        assert_eq!(refused_image("FROM\u{c}paas/victim:v1\n", &[]), victim);
    }

    #[test]
    fn an_unlabelled_image_two_apps_built_alike_is_fine_by_its_own_name() {
        let mut images = known();
        images.insert(
            "paas/mine:v5".into(),
            ImageLookup::Found(ImageFacts {
                repo_tags: vec!["paas/other:v2".into(), "paas/mine:v5".into()],
                ..ImageFacts::default()
            }),
        );
        assert_eq!(verdict_with("FROM paas/mine:v5\n", &[], images), Ok(()));
    }

    #[test]
    fn ids_and_id_prefixes_are_refused() {
        assert_eq!(
            refused_image("FROM 2e904ba6\n", &[]),
            ImageProblem::ById("2e904ba6".into())
        );
        assert_eq!(
            refused_image("FROM paas/busybox\nCOPY --from=2e904ba6 /a /b\n", &[]),
            ImageProblem::ById("2e904ba6".into())
        );
        assert!(matches!(
            refused_image("FROM sha256:2e904ba6\n", &[]),
            ImageProblem::ById(_)
        ));
        assert!(matches!(
            refused_image("FROM deadbeef\n", &[]),
            ImageProblem::ById(_)
        ));
    }

    #[test]
    fn pulls_from_registries_named_by_address_are_refused() {
        for reference in [
            "127.0.0.1:5000/x",
            "localhost/x:1",
            "LOCALHOST:80/x",
            "[::1]:5000/x",
            "169.254.169.254/latest",
            "10.0.0.1/a/b",
            "127.1:8081/x",
        ] {
            assert_eq!(
                check_image(reference, &ImageLookup::Missing, APP),
                Err(ImageProblem::RegistryByAddress(reference.into())),
                "{reference}"
            );
        }
        for fine in [
            "ghcr.io/a/b:1",
            "docker.io/library/busybox",
            "paas/busybox",
            "busybox",
        ] {
            assert_eq!(
                check_image(fine, &ImageLookup::Missing, APP),
                Ok(()),
                "{fine}"
            );
        }
        // A local image is not pulled, whatever its name.
        assert_eq!(
            check_image(
                "localhost/base:1",
                &ImageLookup::Found(ImageFacts {
                    repo_tags: vec!["localhost/base:1".into()],
                    ..ImageFacts::default()
                }),
                APP
            ),
            Ok(())
        );
        let err = verdict("FROM 127.0.0.1:8081/api:x\n", &[]).unwrap_err();
        assert!(
            matches!(
                err,
                CheckError::Image {
                    line: 1,
                    problem: ImageProblem::RegistryByAddress(_)
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn familiar_names_match_the_engines_listing() {
        assert_eq!(familiar_name("busybox"), "busybox:latest");
        assert_eq!(familiar_name("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(familiar_name("localhost:5000/a"), "localhost:5000/a:latest");
        assert_eq!(familiar_name("a/b:c@sha256:00"), "a/b@sha256:00");
        assert_eq!(crate::naming::image_tag_owner("paas/x:v12"), Some("x"));
        assert_eq!(crate::naming::image_tag_owner("paas/busybox:latest"), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn dockerfile_text() -> impl Strategy<Value = String> {
        let pieces = prop::collection::vec(
            prop_oneof![
                Just("FROM ".to_owned()),
                Just("ADD ".to_owned()),
                Just("COPY --from=".to_owned()),
                Just("ARG ".to_owned()),
                Just("ENV ".to_owned()),
                Just("ONBUILD ".to_owned()),
                Just("# escape=`\n".to_owned()),
                Just("http://".to_owned()),
                Just("${".to_owned()),
                Just("}".to_owned()),
                Just("\\\n".to_owned()),
                Just("`\n".to_owned()),
                Just("\n".to_owned()),
                "[ -~]{0,12}",
                any::<String>(),
            ],
            0..24,
        );
        pieces.prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn never_panics_and_always_settles(text in dockerfile_text(), value in "[ -~]{0,20}") {
            let args = BTreeMap::from([("A".to_owned(), value)]);
            let mut images = HashMap::new();
            for _ in 0..64 {
                match check(&text, &args, "mine", &images) {
                    Ok(Checked::NeedImages(need)) => {
                        for reference in need {
                            prop_assert!(!images.contains_key(&reference));
                            images.insert(reference, ImageLookup::Missing);
                        }
                    }
                    _ => return Ok(()),
                }
            }
            prop_assert!(false, "did not settle");
        }

        #[test]
        fn a_literal_url_in_add_is_always_refused(
            prefix in "[a-z/]{0,8}",
            host in "[a-z0-9.]{1,12}",
        ) {
            let text = format!("FROM paas/busybox\nADD {prefix} http://{host}/x /dest\n");
            let images = HashMap::from([("paas/busybox".to_owned(), ImageLookup::Missing)]);
            let refused = matches!(
                check(&text, &BTreeMap::new(), "mine", &images),
                Err(CheckError::RemoteSource { .. })
            );
            prop_assert!(refused);
        }
    }
}
