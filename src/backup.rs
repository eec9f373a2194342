//! The backup file of a node (`hcmr backup`, `hcmr restore`): its whole database and the files
//! needed to run it again, in one file with a checksum.
//!
//! The node writes a backup while it serves (the `ExportBackup` RPC): it copies every tree of its
//! sled database under the store's write gate (see [`crate::store`]), so the copy holds every
//! write acknowledged before the backup started and no half-done one, and it holds the feed lock
//! meanwhile, so no key rotation is half done in the copied key files.
//!
//! **A backup is as secret as the node's keys**: it holds the signing key, the subject-hash key
//! and the TLS key exactly as they are on disk (encrypted when the node encrypts its keys, plain
//! otherwise). `hcmr backup` writes it with mode 0600; keep it where the keys would be kept.
//! Callers' tokens are not in it (the database holds only their SHA-256), nor `admin.token`:
//! callers keep working with the tokens they hold.
//!
//! # Format (version 1)
//!
//! All integers are unsigned, big-endian. Lengths count bytes.
//!
//! ```text
//! header   magic        8 bytes   "HCMRBAK1"
//!          version      u16       1
//!          province     u32       GB/T 2260 code of the node
//!          created      u64       seconds since the Unix epoch (UTC)
//!          file_count   u16
//!          tree_count   u32
//! files    file_count times:
//!            name       u16 length ‖ UTF-8 path in the node folder (one of FILES)
//!            data       u32 length ‖ bytes, as on disk
//! trees    tree_count times, names in byte order:
//!            name       u16 length ‖ bytes (sled tree name)
//!            records    in key order, each: key (u32 length ‖ bytes) ‖ value (u32 length ‖ bytes);
//!                       a key length of 0xFFFFFFFF ends the tree
//! end      records      u64       number of records in all trees
//! trailer  sha256       32 bytes  SHA-256 of every byte before it
//! ```
//!
//! The files are `hcmr.toml` (the configuration the node runs with, its paths rewritten to the
//! layout `hcmr init` makes: `db`, `node.key`, `subject.key`, `tls/`), `node.key`,
//! `subject.key`, and when present `tls/node.crt`, `tls/node.key` and `node.key.new` (a key
//! rotation whose file rename is pending). A passphrase file a config names is not copied.
//!
//! A reader checks the magic and version, then the checksum over the whole file, before it reads
//! any record; then the structure (file names, counts, keys in order, nothing after the
//! trailer). Restoring is [`crate::node::backup::restore`].

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::province::Province;
use crate::store::{ExportItem, StoreError};
use crate::UnixTime;

/// The first 8 bytes of every backup.
pub const MAGIC: &[u8; 8] = b"HCMRBAK1";
/// The format version written (and the only one read).
pub const FORMAT_VERSION: u16 = 1;
/// Key length that ends a tree.
const END_OF_TREE: u32 = u32::MAX;
/// Bytes of the header.
const HEADER_LEN: u64 = 8 + 2 + 4 + 8 + 2 + 4;

/// A file of the node folder a backup may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKind {
    /// Its path in the node folder (`/`-separated).
    pub name: &'static str,
    /// Written with mode 0600 on restore.
    pub secret: bool,
    /// Every backup holds it.
    pub required: bool,
}

/// The files a backup may hold, in the order they are written.
pub const FILES: &[FileKind] = &[
    FileKind {
        name: "hcmr.toml",
        secret: false,
        required: true,
    },
    FileKind {
        name: "node.key",
        secret: true,
        required: true,
    },
    FileKind {
        name: "node.key.new",
        secret: true,
        required: false,
    },
    FileKind {
        name: "subject.key",
        secret: true,
        required: true,
    },
    FileKind {
        name: "tls/node.crt",
        secret: false,
        required: false,
    },
    FileKind {
        name: "tls/node.key",
        secret: true,
        required: false,
    },
];

/// The kind of a file name, if a backup may hold it.
pub fn file_kind(name: &str) -> Option<FileKind> {
    FILES.iter().copied().find(|f| f.name == name)
}

/// Errors of writing, checking and restoring backups. Each names the file or what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not start as a backup does.
    #[error("{path} is not an hcmr backup: {detail}")]
    NotABackup {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A backup of another format version.
    #[error("{path} is an hcmr backup of format version {found}; this hcmr reads version {FORMAT_VERSION}")]
    Version {
        /// The file.
        path: String,
        /// Its version.
        found: u16,
    },
    /// The checksum or the structure is wrong: the file was damaged or cut short.
    #[error("{path} is damaged: {detail}; nothing was restored from it")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// Restore would overwrite something.
    #[error("{0} already exists: restore creates a new folder, so name one that does not exist")]
    Exists(String),
    /// The restored node is not the one the header names.
    #[error("restored node does not match its backup: {0}")]
    Mismatch(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The restored configuration is unusable.
    #[error("restored configuration: {0}")]
    Config(String),
}

impl BackupError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
        let path = path.display().to_string();
        move |source| BackupError::Io { path, source }
    }
}

/// A file of the node folder, as it goes into a backup.
pub struct BackupFile {
    /// Its kind (name).
    pub kind: FileKind,
    /// Its bytes.
    pub data: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for BackupFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BackupFile({}, {} bytes)",
            self.kind.name,
            self.data.len()
        )
    }
}

/// Writes a backup: the header and files first, then what [`crate::store::Store::export`] shows
/// it ([`Writer::item`]), then [`Writer::finish`].
pub struct Writer<W: Write> {
    out: W,
    hash: Sha256,
    province: Province,
    created: UnixTime,
    files: Vec<BackupFile>,
    trees_left: u32,
    in_tree: bool,
    records: u64,
    bytes: u64,
}

impl<W: Write> Writer<W> {
    /// A writer of a backup of `province` taken at `created`, holding `files`.
    pub fn new(out: W, province: Province, created: UnixTime, files: Vec<BackupFile>) -> Self {
        Writer {
            out,
            hash: Sha256::new(),
            province,
            created,
            files,
            trees_left: 0,
            in_tree: false,
            records: 0,
            bytes: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn put_len16(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let n = u16::try_from(bytes.len())
            .map_err(|_| std::io::Error::other("name longer than 65535 bytes"))?;
        self.put(&n.to_be_bytes())?;
        self.put(bytes)
    }

    fn put_len32(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let n = u32::try_from(bytes.len())
            .ok()
            .filter(|&n| n != END_OF_TREE)
            .ok_or_else(|| std::io::Error::other("record of 4 GiB or more"))?;
        self.put(&n.to_be_bytes())?;
        self.put(bytes)
    }

    /// Writes one item of the database copy (the header and files come with the first).
    ///
    /// # Errors
    /// I/O errors of the output.
    pub fn item(&mut self, item: ExportItem<'_>) -> std::io::Result<()> {
        match item {
            ExportItem::Trees(n) => {
                let trees =
                    u32::try_from(n).map_err(|_| std::io::Error::other("too many trees"))?;
                let files = std::mem::take(&mut self.files);
                self.put(MAGIC)?;
                self.put(&FORMAT_VERSION.to_be_bytes())?;
                self.put(&self.province.code().to_be_bytes())?;
                self.put(&self.created.secs().to_be_bytes())?;
                self.put(&(files.len() as u16).to_be_bytes())?;
                self.put(&trees.to_be_bytes())?;
                for f in &files {
                    self.put_len16(f.kind.name.as_bytes())?;
                    self.put_len32(&f.data)?;
                }
                self.trees_left = trees;
            }
            ExportItem::Tree(name) => {
                self.end_tree()?;
                if self.trees_left == 0 {
                    return Err(std::io::Error::other("more trees than announced"));
                }
                self.trees_left -= 1;
                self.put_len16(name)?;
                self.in_tree = true;
            }
            ExportItem::Record(k, v) => {
                if !self.in_tree {
                    return Err(std::io::Error::other("a record outside a tree"));
                }
                self.put_len32(k)?;
                self.put_len32(v)?;
                self.records += 1;
            }
        }
        Ok(())
    }

    fn end_tree(&mut self) -> std::io::Result<()> {
        if self.in_tree {
            self.put(&END_OF_TREE.to_be_bytes())?;
            self.in_tree = false;
        }
        Ok(())
    }

    /// Ends the last tree, writes the record count and the checksum; returns the output, the
    /// number of records and the size of the backup in bytes.
    ///
    /// # Errors
    /// I/O errors of the output; fewer trees than announced.
    pub fn finish(mut self) -> std::io::Result<(W, u64, u64)> {
        self.end_tree()?;
        if self.trees_left != 0 {
            return Err(std::io::Error::other("fewer trees than announced"));
        }
        let records = self.records;
        self.put(&records.to_be_bytes())?;
        let digest = self.hash.finalize_reset();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        Ok((self.out, records, self.bytes + 32))
    }
}

/// What a checked backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The node's province.
    pub province: Province,
    /// When the backup was taken.
    pub created: UnixTime,
    /// The files it holds, by name.
    pub files: Vec<String>,
    /// Number of database trees.
    pub trees: u32,
    /// Number of database records.
    pub records: u64,
    /// Size of the backup file, bytes.
    pub bytes: u64,
}

/// One thing read from a backup, in file order.
#[derive(Debug)]
pub enum Item<'a> {
    /// A file of the node folder.
    File(FileKind, Zeroizing<Vec<u8>>),
    /// The start of a database tree.
    Tree(&'a [u8]),
    /// A record of the current tree.
    Record(Vec<u8>, Vec<u8>),
}

struct Header {
    province: Province,
    created: UnixTime,
    files: u16,
    trees: u32,
}

/// Checks the magic and the version.
fn check_magic(path: &Path, b: &[u8; HEADER_LEN as usize]) -> Result<(), BackupError> {
    if &b[..8] != MAGIC {
        return Err(BackupError::NotABackup {
            path: path.display().to_string(),
            detail: format!(
                "it starts with {:?}, not \"HCMRBAK1\"",
                String::from_utf8_lossy(&b[..8])
            ),
        });
    }
    let version = u16::from_be_bytes([b[8], b[9]]);
    if version != FORMAT_VERSION {
        return Err(BackupError::Version {
            path: path.display().to_string(),
            found: version,
        });
    }
    Ok(())
}

fn parse_header(path: &Path, b: &[u8; HEADER_LEN as usize]) -> Result<Header, BackupError> {
    check_magic(path, b)?;
    let code = u32::from_be_bytes(b[10..14].try_into().expect("4 bytes"));
    let province = Province::from_code(code).map_err(|e| BackupError::Damaged {
        path: path.display().to_string(),
        detail: format!("header: province {code}: {e}"),
    })?;
    Ok(Header {
        province,
        created: UnixTime::from_secs(u64::from_be_bytes(b[14..22].try_into().expect("8 bytes"))),
        files: u16::from_be_bytes([b[22], b[23]]),
        trees: u32::from_be_bytes(b[24..28].try_into().expect("4 bytes")),
    })
}

/// Checks the magic, the version and the checksum of the backup at `path`, reading it once;
/// returns its size.
fn check_checksum(path: &Path) -> Result<u64, BackupError> {
    let mut f = std::fs::File::open(path).map_err(BackupError::io(path))?;
    let size = f.metadata().map_err(BackupError::io(path))?.len();
    let mut head = [0u8; HEADER_LEN as usize];
    if size < HEADER_LEN + 8 + 32 {
        let n = f.read(&mut head).map_err(BackupError::io(path))?;
        if n < 8 || &head[..8] != MAGIC {
            return Err(BackupError::NotABackup {
                path: path.display().to_string(),
                detail: format!(
                    "it is only {size} bytes long and does not start with \"HCMRBAK1\""
                ),
            });
        }
        return Err(BackupError::Damaged {
            path: path.display().to_string(),
            detail: format!("it is only {size} bytes long: cut short"),
        });
    }
    f.read_exact(&mut head).map_err(BackupError::io(path))?;
    check_magic(path, &head)?;
    let mut hash = Sha256::new();
    hash.update(head);
    let mut body = (&mut f).take(size - HEADER_LEN - 32);
    std::io::copy(&mut body, &mut hash).map_err(BackupError::io(path))?;
    let mut trailer = [0u8; 32];
    f.read_exact(&mut trailer).map_err(BackupError::io(path))?;
    if hash.finalize()[..] != trailer[..] {
        return Err(BackupError::Damaged {
            path: path.display().to_string(),
            detail:
                "SHA-256 checksum mismatch (the file was changed or corrupted after it was written)"
                    .into(),
        });
    }
    Ok(size)
}

/// Reads a body with the structure of the format, bounded by the bytes left before the trailer.
struct Body<R: Read> {
    r: R,
    left: u64,
    path: String,
}

impl<R: Read> Body<R> {
    fn damaged(&self, detail: impl Into<String>) -> BackupError {
        BackupError::Damaged {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, BackupError> {
        if n > self.left {
            return Err(self.damaged(format!(
                "{what}: {n} bytes announced but only {} left",
                self.left
            )));
        }
        let mut v = vec![0u8; n as usize];
        self.r
            .read_exact(&mut v)
            .map_err(|source| BackupError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.left -= n;
        Ok(v)
    }

    fn u16(&mut self, what: &str) -> Result<u16, BackupError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, BackupError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes(b[..].try_into().expect("4 bytes")))
    }

    fn u64(&mut self, what: &str) -> Result<u64, BackupError> {
        let b = self.bytes(8, what)?;
        Ok(u64::from_be_bytes(b[..].try_into().expect("8 bytes")))
    }
}

/// Reads the backup at `path`: magic, version and checksum first (nothing is handed to `sink`
/// from a file whose checksum fails), then every file and record in order, checking the
/// structure.
///
/// # Errors
/// [`BackupError::NotABackup`], [`BackupError::Version`], [`BackupError::Damaged`] naming what is
/// wrong, I/O errors, or the sink's error.
pub fn read(
    path: &Path,
    mut sink: impl FnMut(Item<'_>) -> Result<(), BackupError>,
) -> Result<Summary, BackupError> {
    let size = check_checksum(path)?;
    let f = std::fs::File::open(path).map_err(BackupError::io(path))?;
    let mut r = std::io::BufReader::with_capacity(1 << 16, f);
    let mut head = [0u8; HEADER_LEN as usize];
    r.read_exact(&mut head).map_err(BackupError::io(path))?;
    let h = parse_header(path, &head)?;
    let mut b = Body {
        r,
        left: size - HEADER_LEN - 32,
        path: path.display().to_string(),
    };
    let mut files = Vec::new();
    for i in 0..h.files {
        let len = b.u16("file name length")?;
        let name = b.bytes(u64::from(len), "file name")?;
        let name = String::from_utf8_lossy(&name).to_string();
        let kind = file_kind(&name).ok_or_else(|| {
            b.damaged(format!(
                "file {}: {name:?} is not a file a backup holds",
                i + 1
            ))
        })?;
        if files.contains(&name) {
            return Err(b.damaged(format!("file {name} appears twice")));
        }
        let len = b.u32("file length")?;
        let data = Zeroizing::new(b.bytes(u64::from(len), &format!("file {name}"))?);
        files.push(name);
        sink(Item::File(kind, data))?;
    }
    if let Some(missing) = FILES
        .iter()
        .find(|f| f.required && !files.iter().any(|n| n == f.name))
    {
        return Err(b.damaged(format!("the file {} is missing", missing.name)));
    }
    let mut records = 0u64;
    let mut previous_tree: Option<Vec<u8>> = None;
    for _ in 0..h.trees {
        let len = b.u16("tree name length")?;
        let name = b.bytes(u64::from(len), "tree name")?;
        if previous_tree.as_ref().is_some_and(|p| *p >= name) {
            return Err(b.damaged(format!(
                "tree {:?} is out of order or repeated",
                String::from_utf8_lossy(&name)
            )));
        }
        sink(Item::Tree(&name))?;
        let mut previous_key: Option<Vec<u8>> = None;
        loop {
            let klen = b.u32("key length")?;
            if klen == END_OF_TREE {
                break;
            }
            let key = b.bytes(u64::from(klen), "key")?;
            if previous_key.as_ref().is_some_and(|p| *p >= key) {
                return Err(b.damaged(format!(
                    "tree {:?}: keys out of order or repeated",
                    String::from_utf8_lossy(&name)
                )));
            }
            let vlen = b.u32("value length")?;
            if vlen == END_OF_TREE {
                return Err(b.damaged("a value length of 0xFFFFFFFF"));
            }
            let value = b.bytes(u64::from(vlen), "value")?;
            previous_key = Some(key.clone());
            records += 1;
            sink(Item::Record(key, value))?;
        }
        previous_tree = Some(name);
    }
    let announced = b.u64("record count")?;
    if announced != records {
        return Err(b.damaged(format!(
            "{records} records read but the end says {announced}"
        )));
    }
    if b.left != 0 {
        return Err(b.damaged(format!("{} unexpected bytes after the last record", b.left)));
    }
    Ok(Summary {
        province: h.province,
        created: h.created,
        files,
        trees: h.trees,
        records,
        bytes: size,
    })
}

/// Checks the backup at `path` (format, version, checksum, structure) without writing anything.
///
/// # Errors
/// As [`read`].
pub fn check(path: &Path) -> Result<Summary, BackupError> {
    read(path, |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> std::path::PathBuf {
        let p = Province::from_code(510000).unwrap();
        let files = vec![
            BackupFile {
                kind: file_kind("hcmr.toml").unwrap(),
                data: Zeroizing::new(b"province = \"510000\"\n".to_vec()),
            },
            BackupFile {
                kind: file_kind("node.key").unwrap(),
                data: Zeroizing::new(b"key".to_vec()),
            },
            BackupFile {
                kind: file_kind("subject.key").unwrap(),
                data: Zeroizing::new(b"subject".to_vec()),
            },
        ];
        let mut w = Writer::new(Vec::new(), p, UnixTime::from_secs(1_700_000_000), files);
        w.item(ExportItem::Trees(2)).unwrap();
        w.item(ExportItem::Tree(b"a")).unwrap();
        w.item(ExportItem::Record(b"", b"empty key")).unwrap();
        w.item(ExportItem::Record(b"k", b"")).unwrap();
        w.item(ExportItem::Tree(b"b")).unwrap();
        let (bytes, records, size) = w.finish().unwrap();
        assert_eq!(records, 2);
        assert_eq!(size, bytes.len() as u64);
        let path = dir.join("b.hcmrbak");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        let mut seen = Vec::new();
        let s = read(&path, |i| {
            seen.push(match i {
                Item::File(k, d) => format!("file {} {}", k.name, d.len()),
                Item::Tree(n) => format!("tree {}", String::from_utf8_lossy(n)),
                Item::Record(k, v) => format!("record {k:?} {v:?}"),
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(s.province.code(), 510000);
        assert_eq!(s.created.secs(), 1_700_000_000);
        assert_eq!((s.trees, s.records), (2, 2));
        assert_eq!(s.files, ["hcmr.toml", "node.key", "subject.key"]);
        assert_eq!(seen.len(), 3 + 2 + 2);
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            let e = check(&path).unwrap_err();
            let expected = match i {
                0..8 => matches!(e, BackupError::NotABackup { .. }),
                8..10 => matches!(e, BackupError::Version { .. }),
                _ => {
                    matches!(e, BackupError::Damaged { ref detail, .. } if detail.contains("checksum"))
                }
            };
            assert!(expected, "byte {i}: {e}");
        }
        for n in [0, 5, 40, good.len() - 1] {
            std::fs::write(&path, &good[..n]).unwrap();
            assert!(check(&path).is_err(), "cut to {n} bytes");
        }
        let mut longer = good.clone();
        longer.push(0);
        std::fs::write(&path, &longer).unwrap();
        assert!(matches!(check(&path), Err(BackupError::Damaged { .. })));
    }

    #[test]
    fn a_well_hashed_file_with_a_bad_structure_is_refused() {
        // A file name no backup holds, with a correct checksum (a writer bug or a forgery).
        let dir = tempfile::tempdir().unwrap();
        let p = Province::from_code(510000).unwrap();
        let files = vec![BackupFile {
            kind: FileKind {
                name: "../escape",
                secret: false,
                required: false,
            },
            data: Zeroizing::new(b"x".to_vec()),
        }];
        let mut w = Writer::new(Vec::new(), p, UnixTime::from_secs(1), files);
        w.item(ExportItem::Trees(0)).unwrap();
        let (bytes, _, _) = w.finish().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, bytes).unwrap();
        let e = check(&path).unwrap_err().to_string();
        assert!(e.contains("not a file a backup holds"), "{e}");
    }
}
