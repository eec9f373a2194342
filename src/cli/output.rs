//! Output files of commands that change the node (`caller add --token-out`, `issue --qr`,
//! `bundle export --out`, `backup --out`): the file is opened before the node is asked, so a
//! path that cannot be written is refused while nothing has changed yet.

use std::io::{Seek as _, Write as _};
use std::path::{Path, PathBuf};

use super::CliError;

/// Whether an output file may already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A new file of mode 0600 (a token, a backup): an existing file is refused, never
    /// overwritten.
    NewSecret,
    /// A file that is replaced when it exists (a QR image, a card, a bundle); its old content
    /// stays until the new one is written.
    Replace,
}

/// An output file opened before the node is changed. Dropped without [`OutputFile::finish`]
/// (the command failed before it had anything to write), a file it created is removed again.
#[derive(Debug)]
pub(super) struct OutputFile {
    path: PathBuf,
    file: std::fs::File,
    created: bool,
    done: bool,
}

impl OutputFile {
    /// Opens `path` for writing, as `flag` names it.
    ///
    /// # Errors
    /// [`CliError::Usage`] (exit 64) naming the flag: the file exists ([`Kind::NewSecret`]), its
    /// folder does not exist, it is a folder, or it cannot be written.
    pub(super) fn reserve(flag: &str, path: &Path, kind: Kind) -> Result<OutputFile, CliError> {
        let usage = |why: String| CliError::Usage(format!("{flag} {}: {why}", path.display()));
        if path.is_dir() {
            return Err(usage("is a folder; give a file name".into()));
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(usage(format!(
                "the folder {} does not exist; create it first",
                folder.display()
            )));
        }
        let existed = std::fs::symlink_metadata(path).is_ok();
        let opened = match kind {
            Kind::NewSecret => crate::fsutil::create_secret_file(path),
            Kind::Replace => std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path),
        };
        let file = opened.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                usage("the file exists; refusing to overwrite it".into())
            }
            _ => usage(format!("cannot be written: {e}")),
        })?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            file,
            created: !existed,
            done: false,
        })
    }

    /// The open file, for writing in pieces; [`OutputFile::finish`] keeps it.
    pub(super) fn file(&mut self) -> &mut std::fs::File {
        &mut self.file
    }

    /// Replaces the file's content with `data` and keeps it.
    ///
    /// # Errors
    /// The I/O error; the file is then removed if this command created it.
    pub(super) fn write(mut self, data: &[u8]) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(data)?;
        self.finish()
    }

    /// Syncs the file and keeps it.
    ///
    /// # Errors
    /// The I/O error; the file is then removed if this command created it.
    pub(super) fn finish(mut self) -> std::io::Result<()> {
        self.file.sync_all()?;
        self.done = true;
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.done && self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
