//! Small file helpers shared by the key and config code.

use std::io::Write;
use std::path::Path;

/// Creates `path` (failing if it exists) with mode 0600 on Unix, writes `data` and syncs it.
pub(crate) fn write_secret_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Creates `path` (failing if it exists) with mode 0600 on Unix, for writing a secret file in
/// pieces (a backup); the caller syncs it.
pub(crate) fn create_secret_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}
