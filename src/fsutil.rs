//! Small file helpers shared by the key, config and CLI code.

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

/// Reads a whole file of at most `max` bytes: its size is checked before anything is read, and
/// the read stops after `max + 1` bytes whatever the size said (a file that grows, a FIFO or a
/// device), so memory never holds more than `max + 1` bytes of it (issue 15 fault 10: a 300 MB
/// file given as a trust bundle took 322 MB before it was refused).
///
/// # Errors
/// The I/O error, or one of kind `InvalidData` whose message gives the size and the limit
/// (`the file has 314572800 bytes; at most 4194304 are read`).
pub(crate) fn read_capped(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let too_large = |size: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file has {size} bytes; at most {max} are read"),
        )
    };
    let f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    if size > max {
        return Err(too_large(size.to_string()));
    }
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    f.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(too_large(format!("more than {max}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_capped_checks_the_size_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, [7u8; 100]).unwrap();
        assert_eq!(read_capped(&p, 100).unwrap(), vec![7u8; 100]);
        let e = read_capped(&p, 99).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "the file has 100 bytes; at most 99 are read");
        // A sparse file of 1 TB is refused before any of it is read.
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        assert_eq!(
            read_capped(&big, 1 << 20).unwrap_err().to_string(),
            "the file has 1099511627776 bytes; at most 1048576 are read"
        );
    }
}
