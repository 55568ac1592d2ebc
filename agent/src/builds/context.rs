//! The pushed tree, unpacked from the request body as it streams in.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context entry `{0}` points outside the tree")]
    Escapes(String),
    #[error("build context entry `{path}` has an unsupported type ({kind})")]
    Unsupported { path: String, kind: String },
    #[error("reading the build context: {0}")]
    Io(#[from] std::io::Error),
    #[error("`{0}` is not inside the pushed tree")]
    Outside(String),
    #[error("build context exceeds the {} limit", super::limits::show_mib(*.limit_mib))]
    TooLarge { limit_mib: u64 },
}

/// Unpacks the tar read from `body` into `dest` (created), without ever holding the archive in
/// memory. Entries that would land outside `dest` (absolute, `..`, hard links out) fail the build
/// instead of being skipped silently, and so do contents beyond `max_bytes` in all (checked
/// before each entry is written).
pub async fn unpack(
    body: impl AsyncRead + Send + Unpin + 'static,
    dest: PathBuf,
    max_bytes: u64,
) -> Result<(), ContextError> {
    let reader = SyncIoBridge::new(body);
    tokio::task::spawn_blocking(move || unpack_blocking(reader, &dest, max_bytes))
        .await
        .map_err(|err| ContextError::Io(std::io::Error::other(err)))?
}

fn unpack_blocking(reader: impl Read, dest: &Path, max_bytes: u64) -> Result<(), ContextError> {
    std::fs::create_dir_all(dest)?;
    let mut archive = tar::Archive::new(reader);
    let unpacked = unpack_entries(&mut archive, dest, max_bytes);
    // Read the rest of the upload (past the end-of-archive blocks `git archive` pads to 10 KiB,
    // or what follows a refused entry) so the client's upload completes cleanly and it reads
    // the verdict instead of meeting a reset connection. Nothing more is written.
    let drained = std::io::copy(&mut archive.into_inner(), &mut std::io::sink());
    unpacked?;
    drained?;
    Ok(())
}

fn unpack_entries(
    archive: &mut tar::Archive<impl Read>,
    dest: &Path,
    max_bytes: u64,
) -> Result<(), ContextError> {
    let mut unpacked: u64 = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        unpacked = unpacked.saturating_add(entry.size());
        if unpacked > max_bytes {
            return Err(ContextError::TooLarge {
                limit_mib: max_bytes / (1024 * 1024),
            });
        }
        let path = entry.path()?.into_owned();
        let shown = path.display().to_string();
        if !stays_inside(&path) {
            return Err(ContextError::Escapes(shown));
        }
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            let target = entry.link_name()?.unwrap_or_default();
            if !stays_inside(&target) {
                return Err(ContextError::Escapes(shown));
            }
        } else if !(kind.is_file()
            || kind.is_dir()
            || kind.is_symlink()
            || kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink())
        {
            return Err(ContextError::Unsupported {
                path: shown,
                kind: format!("{kind:?}"),
            });
        }
        // `unpack_in` also refuses to write through a symlink that leads out of `dest`.
        if !entry.unpack_in(dest)? {
            return Err(ContextError::Escapes(shown));
        }
    }
    Ok(())
}

/// Relative, and never climbing: `a/./b` is fine, `/a`, `../a` and `a/../../b` are not.
fn stays_inside(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// `relative` resolved inside `root`, following symlinks, and refused if it ends up elsewhere
/// (a pushed symlink must not make the build read the host's files).
pub fn resolve_inside(root: &Path, relative: &str) -> Result<PathBuf, ContextError> {
    let root = root.canonicalize()?;
    let resolved = root
        .join(relative)
        .canonicalize()
        .map_err(|_| ContextError::Outside(relative.to_owned()))?;
    if resolved.starts_with(&root) {
        Ok(resolved)
    } else {
        Err(ContextError::Outside(relative.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn file_header(size: usize) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_size(size as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header
    }

    /// Writes a raw name, bypassing the tar crate's own checks, like a hostile client would.
    fn raw_entry(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
        let mut header = file_header(0);
        header.set_entry_type(kind);
        let bytes = header.as_old_mut();
        bytes.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            bytes.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        let mut archive = header.as_bytes().to_vec();
        archive.extend_from_slice(&[0u8; 1024]);
        archive
    }

    #[test]
    fn unpacks_files_directories_and_modes() {
        let archive = tar_with(|b| {
            let mut header = file_header(5);
            header.set_mode(0o755);
            b.append_data(&mut header, "bin/run", &b"hello"[..])
                .unwrap();
            b.append_data(&mut file_header(2), "README", &b"hi"[..])
                .unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        unpack_blocking(&archive[..], dir.path(), u64::MAX).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("bin/run")).unwrap(),
            "hello"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("bin/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
    }

    #[test]
    fn refuses_absolute_and_parent_paths() {
        for name in ["/etc/evil", "../evil", "a/../../evil"] {
            let dir = tempfile::tempdir().unwrap();
            let inside = dir.path().join("ctx");
            let err = unpack_blocking(
                &raw_entry(name, tar::EntryType::Regular, None)[..],
                &inside,
                u64::MAX,
            )
            .unwrap_err();
            assert!(matches!(err, ContextError::Escapes(_)), "{name}: {err}");
            assert!(!dir.path().join("evil").exists());
        }
    }

    #[test]
    fn refuses_hard_links_out_and_device_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let link = raw_entry("passwd", tar::EntryType::Link, Some("/etc/passwd"));
        assert!(matches!(
            unpack_blocking(&link[..], dir.path(), u64::MAX),
            Err(ContextError::Escapes(_))
        ));
        let device = raw_entry("tty", tar::EntryType::Char, None);
        assert!(matches!(
            unpack_blocking(&device[..], dir.path(), u64::MAX),
            Err(ContextError::Unsupported { .. })
        ));
    }

    #[test]
    fn refuses_writing_through_a_symlink_out_of_the_tree() {
        let outside = tempfile::tempdir().unwrap();
        let mut archive = tar_with(|b| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            b.append_link(&mut header, "escape", outside.path())
                .unwrap();
        });
        // Drop the end-of-archive blocks and append a file under the symlink.
        archive.truncate(archive.len() - 1024);
        let mut second = tar::Builder::new(Vec::new());
        let mut header = file_header(1);
        header.set_path("escape/owned").unwrap();
        header.set_cksum();
        second.append(&header, &b"x"[..]).unwrap();
        archive.extend(second.into_inner().unwrap());

        let dir = tempfile::tempdir().unwrap();
        assert!(unpack_blocking(&archive[..], dir.path(), u64::MAX).is_err());
        assert!(!outside.path().join("owned").exists());
    }

    #[test]
    fn contents_beyond_the_limit_are_refused_before_they_are_written() {
        let mib = 1024 * 1024;
        let archive = tar_with(|b| {
            b.append_data(&mut file_header(mib), "a", &vec![b'a'; mib][..])
                .unwrap();
            b.append_data(&mut file_header(mib), "b", &vec![b'b'; mib][..])
                .unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let err = unpack_blocking(&archive[..], dir.path(), mib as u64).unwrap_err();
        assert_eq!(err.to_string(), "build context exceeds the 1 MiB limit");
        assert!(dir.path().join("a").exists());
        assert!(!dir.path().join("b").exists());
        let dir = tempfile::tempdir().unwrap();
        unpack_blocking(&archive[..], dir.path(), 2 * mib as u64).unwrap();
    }

    #[test]
    fn resolve_inside_refuses_symlinks_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("root")).unwrap();
        assert!(resolve_inside(dir.path(), "app").is_ok());
        assert!(matches!(
            resolve_inside(dir.path(), "root"),
            Err(ContextError::Outside(_))
        ));
        assert!(resolve_inside(dir.path(), "missing").is_err());
    }
}
