//! `.dockerignore`, with Docker's rules (moby's patternmatcher): one pattern per line, `#`
//! comments, paths cleaned and made relative to the context root, `*` and `?` within one path
//! segment, `**` across any number of them, `!` re-includes, the last matching pattern wins, and
//! a pattern that matches a directory matches everything under it. The Dockerfile and
//! `.dockerignore` are always sent.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use regex::Regex;

#[derive(Debug, thiserror::Error)]
#[error(".dockerignore: bad pattern `{pattern}`: {reason}")]
pub struct BadPattern {
    pattern: String,
    reason: String,
}

#[derive(Debug)]
struct Pattern {
    regex: Regex,
    exception: bool,
}

#[derive(Debug, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Result<Self, BadPattern> {
        let mut patterns = Vec::new();
        for line in text.trim_start_matches('\u{feff}').lines() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, raw) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(raw);
            let regex = Regex::new(&to_regex(&cleaned)).map_err(|err| BadPattern {
                pattern: line.to_owned(),
                reason: err
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            })?;
            patterns.push(Pattern { regex, exception });
        }
        Ok(DockerIgnore { patterns })
    }

    /// Whether `path` (relative, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // An exclusion can only change a path that is in, an exception one that is out.
            if pattern.exception != excluded {
                continue;
            }
            let matches = pattern.regex.is_match(path)
                || (1..segments.len()).any(|n| pattern.regex.is_match(&segments[..n].join("/")));
            if matches {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

/// Go's `filepath.Clean` plus dropping a leading `/`: patterns are relative to the context.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

fn to_regex(pattern: &str) -> String {
    let mut regex = String::from("^");
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        if in_class {
            if c == ']' {
                in_class = false;
            }
            if c == '\\' {
                regex.push('\\');
                if let Some(next) = chars.next() {
                    regex.push(next);
                }
                continue;
            }
            regex.push(c);
            continue;
        }
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    regex.push_str(".*");
                } else {
                    regex.push_str("(.*/)?");
                }
            }
            '*' => regex.push_str("[^/]*"),
            '?' => regex.push_str("[^/]"),
            '[' => {
                in_class = true;
                regex.push('[');
            }
            '\\' => match chars.next() {
                Some(next) => regex.push_str(&regex::escape(&next.to_string())),
                None => regex.push_str(r"\\"),
            },
            other => regex.push_str(&regex::escape(&other.to_string())),
        }
    }
    regex.push('$');
    regex
}

/// Writes the build context of `root` as a tar to `out`: every file `.dockerignore` keeps, plus
/// the Dockerfile and `.dockerignore` themselves. Symlinks are sent as symlinks. Owners and
/// times are normalised so an unchanged tree gives the engine an unchanged context.
pub fn write_context_tar(root: &Path, dockerfile: &str, out: impl Write) -> Result<(), io::Error> {
    let ignore = match read_dockerignore(root)? {
        Some(text) => DockerIgnore::parse(&text).map_err(io::Error::other)?,
        None => DockerIgnore::default(),
    };
    let always = [clean(dockerfile), ".dockerignore".to_owned()];
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Deterministic);
    add_dir(&mut tar, root, "", &ignore, &always)?;
    tar.into_inner()?.flush()
}

/// `.dockerignore`'s text, if there is one. A symlink is followed only while it stays inside
/// the tree: a pushed link to a host file must not make the agent read it.
fn read_dockerignore(root: &Path) -> Result<Option<String>, io::Error> {
    let path = root.join(".dockerignore");
    if fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let inside = super::context::resolve_inside(root, ".dockerignore")
        .ok()
        .filter(|target| target.is_file())
        .ok_or_else(|| {
            io::Error::other(
                ".dockerignore is a link to something outside the pushed tree (or to no file); make it a regular file",
            )
        })?;
    fs::read_to_string(inside).map(Some)
}

fn add_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    relative_dir: &str,
    ignore: &DockerIgnore,
    always: &[String],
) -> Result<(), io::Error> {
    let mut entries = fs::read_dir(root.join(relative_dir))?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_str().ok_or_else(|| {
            io::Error::other(format!(
                "file name {name:?} in the pushed tree is not UTF-8"
            ))
        })?;
        let relative = if relative_dir.is_empty() {
            name.to_owned()
        } else {
            format!("{relative_dir}/{name}")
        };
        let excluded = ignore.excludes(&relative) && !always.contains(&relative);
        let full = entry.path();
        if entry.file_type()?.is_dir() {
            if !excluded {
                tar.append_dir(&relative, &full)?;
            }
            // An excluded directory can still hold re-included files.
            if !excluded
                || ignore.has_exceptions()
                || always
                    .iter()
                    .any(|a| a.starts_with(&format!("{relative}/")))
            {
                add_dir(tar, root, &relative, ignore, always)?;
            }
        } else if !excluded {
            tar.append_path_with_name(&full, &relative)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn plain_names_match_the_path_and_everything_below() {
        let i = ignore("node_modules\n/tmp/\n");
        assert!(i.excludes("node_modules"));
        assert!(i.excludes("node_modules/a/b.js"));
        assert!(i.excludes("tmp/x"));
        assert!(!i.excludes("src/node_modules"));
        assert!(!i.excludes("node_modules2"));
    }

    #[test]
    fn star_stays_in_one_segment_and_double_star_crosses_them() {
        let i = ignore("*.log\n**/*.tmp\ndocs/**\n");
        assert!(i.excludes("debug.log"));
        assert!(!i.excludes("logs/debug.log"));
        assert!(i.excludes("a.tmp"));
        assert!(i.excludes("a/b/c.tmp"));
        assert!(i.excludes("docs/x/y"));
        assert!(!i.excludes("docsx"));
        let i = ignore("a/**/z\n");
        assert!(i.excludes("a/z"));
        assert!(i.excludes("a/b/c/z"));
    }

    #[test]
    fn question_mark_and_classes_match_one_character() {
        let i = ignore("file?.txt\n[ab].md\n[^c]x\n");
        assert!(i.excludes("file1.txt"));
        assert!(!i.excludes("file/.txt"));
        assert!(i.excludes("a.md"));
        assert!(!i.excludes("c.md"));
        assert!(i.excludes("dx"));
        assert!(!i.excludes("cx"));
    }

    #[test]
    fn exceptions_reinclude_and_the_last_match_wins() {
        let i = ignore("*.md\n!README.md\n");
        assert!(i.excludes("CHANGES.md"));
        assert!(!i.excludes("README.md"));
        let i = ignore("!README.md\n*.md\n");
        assert!(i.excludes("README.md"));
        let i = ignore("secrets\n!secrets/public.pem\n");
        assert!(i.excludes("secrets/key"));
        assert!(!i.excludes("secrets/public.pem"));
    }

    #[test]
    fn comments_blanks_dots_and_regex_characters() {
        let i = ignore("# a comment\n\n  ./build/../out  \n a+b(c).txt\n");
        assert!(i.excludes("out/x"));
        assert!(!i.excludes("build"));
        assert!(i.excludes("a+b(c).txt"));
        assert!(!i.excludes("aab(c)xtxt"));
        assert!(!i.excludes("# a comment"));
    }

    #[test]
    fn a_bad_pattern_is_a_clear_error() {
        let err = DockerIgnore::parse("[z-a]\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with(".dockerignore: bad pattern `[z-a]`"),
            "{err}"
        );
    }

    fn names_in(archive: &[u8]) -> Vec<String> {
        let mut names: Vec<String> = tar::Archive::new(archive)
            .entries()
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_context_tar_honours_dockerignore_but_keeps_dockerfile_and_itself() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, body) in [
            ("Dockerfile", "FROM x\n"),
            (
                ".dockerignore",
                "Dockerfile\n.dockerignore\n.git\n*.log\nsecrets\n!secrets/public.pem\n",
            ),
            ("app.sh", "echo\n"),
            ("debug.log", "noise\n"),
            (".git/HEAD", "ref\n"),
            ("secrets/key", "k\n"),
            ("secrets/public.pem", "p\n"),
        ] {
            fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            fs::write(root.join(path), body).unwrap();
        }
        std::os::unix::fs::symlink("app.sh", root.join("link.sh")).unwrap();
        let mut archive = Vec::new();
        write_context_tar(root, "Dockerfile", &mut archive).unwrap();
        assert_eq!(
            names_in(&archive),
            [
                ".dockerignore",
                "Dockerfile",
                "app.sh",
                "link.sh",
                "secrets/public.pem"
            ]
        );
    }

    #[test]
    fn a_dockerignore_linking_out_of_the_tree_is_refused_and_one_inside_is_read() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "*\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("Dockerfile"), "FROM x\n").unwrap();
        fs::write(root.join("keep"), "k\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join(".dockerignore"))
            .unwrap();
        let err = write_context_tar(root, "Dockerfile", Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            ".dockerignore is a link to something outside the pushed tree (or to no file); make it a regular file"
        );
        fs::remove_file(root.join(".dockerignore")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", root.join(".dockerignore")).unwrap();
        assert!(write_context_tar(root, "Dockerfile", Vec::new()).is_err());

        fs::remove_file(root.join(".dockerignore")).unwrap();
        fs::write(root.join("ignore-rules"), "keep\n").unwrap();
        std::os::unix::fs::symlink("ignore-rules", root.join(".dockerignore")).unwrap();
        let mut archive = Vec::new();
        write_context_tar(root, "Dockerfile", &mut archive).unwrap();
        assert_eq!(
            names_in(&archive),
            [".dockerignore", "Dockerfile", "ignore-rules"]
        );
    }

    #[test]
    fn a_dockerfile_in_an_ignored_directory_is_still_sent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("deploy")).unwrap();
        fs::write(root.join("deploy/Dockerfile"), "FROM x\n").unwrap();
        fs::write(root.join("deploy/other"), "o\n").unwrap();
        fs::write(root.join(".dockerignore"), "deploy\n").unwrap();
        let mut archive = Vec::new();
        write_context_tar(root, "deploy/Dockerfile", &mut archive).unwrap();
        assert_eq!(names_in(&archive), [".dockerignore", "deploy/Dockerfile"]);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text parses or is refused with an error; matching never panics.
        #[test]
        fn arbitrary_patterns_never_panic(
            text in prop::collection::vec(
                prop_oneof!["[!*?\\[\\]^/.a-c\\\\ -]{0,12}", any::<String>()], 0..8,
            ).prop_map(|lines| lines.join("\n")),
            path in "[a-c*?/.\\[\\]]{0,16}",
        ) {
            if let Ok(ignore) = DockerIgnore::parse(&text) {
                let _ = ignore.excludes(&path);
            }
        }

        /// A plain name excludes itself and everything under it, and nothing beside it.
        #[test]
        fn a_plain_name_covers_its_subtree(name in "[a-z]{1,8}", below in "[a-z]{1,8}") {
            let ignore = DockerIgnore::parse(&name).unwrap();
            prop_assert!(ignore.excludes(&name));
            let nested = format!("{name}/{below}");
            prop_assert!(ignore.excludes(&nested));
            let sibling = format!("{name}x");
            prop_assert!(!ignore.excludes(&sibling));
        }
    }
}
