//! Files the operator's commands write (`report -o`, `labels export -o`, held-out scores).
//!
//! They hold commenters' text and usernames and are often written with `sudo` into a shared
//! directory such as `/tmp`, so a file is written the way a careful root tool writes: never
//! through a symbolic link someone else placed at the path, readable by its owner only, and
//! whole or not at all (a temporary file beside it, renamed over the path once written).

use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum OutFileError {
    #[error("refusing to write {path}: it is a symbolic link (remove it or choose another path)")]
    Symlink { path: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `bytes` to `path`, mode 0600, replacing what is there unless it is a symlink.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), OutFileError> {
    let shown = || path.display().to_string();
    let io = |source| OutFileError::Io {
        path: shown(),
        source,
    };
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(OutFileError::Symlink { path: shown() });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // tempfile creates the file with O_EXCL and mode 0600; rename(2) replaces a link placed
    // at `path` after the check above instead of following it.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_owner_only_and_never_through_a_symlink() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("report.html");
        std::fs::write(&out, "old")?;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644))?;
        write_private(&out, b"new")?;
        assert_eq!(std::fs::read_to_string(&out)?, "new");
        assert_eq!(std::fs::metadata(&out)?.permissions().mode() & 0o777, 0o600);

        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep")?;
        let link = dir.path().join("link.html");
        std::os::unix::fs::symlink(&victim, &link)?;
        let err = write_private(&link, b"evil").map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim)?, "keep");
        Ok(())
    }
}
