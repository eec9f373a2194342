//! Output files of the CLI (`caller add --token-out`, `issue --qr`/`--card`,
//! `bundle export --out`, `backup --out`): the file is opened before the node is asked, so a
//! path that cannot be written is refused while nothing has changed yet. An output file is
//! always a new one: an existing file, or a symbolic link (which could point anywhere, e.g. at
//! the node's own key), is refused, never overwritten or followed.

use std::io::{Seek as _, Write as _};
use std::path::{Path, PathBuf};

use super::CliError;

/// The mode of a new output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A secret (a token, a backup): mode 0600.
    NewSecret,
    /// A file others may read (a QR image, a card, a trust bundle): the default mode (umask).
    New,
}

/// An output file opened before the node is changed. Dropped without [`OutputFile::finish`]
/// (the command failed before it had anything to write), the file is removed again.
#[derive(Debug)]
pub(super) struct OutputFile {
    path: PathBuf,
    file: std::fs::File,
    done: bool,
}

impl OutputFile {
    /// Creates `path` for writing, as `flag` names it. It is opened with `create_new`
    /// (`O_EXCL`), which also refuses a final symbolic link, dangling or not, instead of
    /// following it.
    ///
    /// # Errors
    /// [`CliError::Usage`] (exit 64) naming the flag: the path is `-` (these flags take a file,
    /// not standard output), the file exists (or is a symbolic link), it is a folder, its folder
    /// does not exist or is not a folder, or it cannot be created.
    pub(super) fn reserve(flag: &str, path: &Path, kind: Kind) -> Result<OutputFile, CliError> {
        let usage = |why: String| CliError::Usage(format!("{flag} {}: {why}", path.display()));
        if path.as_os_str() == "-" {
            return Err(usage(
                "standard output is not an output here; give a file name".into(),
            ));
        }
        if path.is_dir() {
            return Err(usage("is a folder; give a file name".into()));
        }
        if let Ok(m) = std::fs::symlink_metadata(path) {
            return Err(usage(if m.file_type().is_symlink() {
                "the file exists (a symbolic link); refusing to overwrite it or write through it"
                    .into()
            } else {
                "the file exists; refusing to overwrite it".into()
            }));
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(usage(if folder.exists() {
                format!("{} is not a folder", folder.display())
            } else {
                format!(
                    "the folder {} does not exist; create it first",
                    folder.display()
                )
            }));
        }
        let opened = match kind {
            Kind::NewSecret => crate::fsutil::create_secret_file(path),
            Kind::New => std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path),
        };
        let file = opened.map_err(|e| match e.kind() {
            // Made by someone else since the check above.
            std::io::ErrorKind::AlreadyExists => {
                usage("the file exists; refusing to overwrite it".into())
            }
            _ => usage(format!("cannot be written: {e}")),
        })?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            file,
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
    /// The I/O error; the file is then removed.
    pub(super) fn write(mut self, data: &[u8]) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(data)?;
        self.finish()
    }

    /// Syncs the file and keeps it.
    ///
    /// # Errors
    /// The I/O error; the file is then removed.
    pub(super) fn finish(mut self) -> std::io::Result<()> {
        self.file.sync_all()?;
        self.done = true;
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
