//! Files kept by the SHA-256 of their content.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::Content;

/// The name of a stored file: the SHA-256 of its content, as 64 lowercase
/// hexadecimal characters.
///
/// Parsing accepts nothing else, so an id taken from a URL can never name a
/// path outside the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaId(String);

/// A string that is not a media id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("This is not a valid media id")]
pub struct InvalidMediaId;

impl InvalidMediaId {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        "invalid_media_id"
    }
}

impl MediaId {
    /// Parses an id: exactly 64 lowercase hexadecimal characters.
    pub fn parse(text: &str) -> Result<MediaId, InvalidMediaId> {
        let valid = text.len() == 64
            && text
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        if valid {
            Ok(MediaId(text.to_owned()))
        } else {
            Err(InvalidMediaId)
        }
    }

    /// The id the given content is stored under.
    pub fn of_content(bytes: &[u8]) -> MediaId {
        let digest = Sha256::digest(bytes);
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        MediaId(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MediaId {
    type Err = InvalidMediaId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MediaId::parse(text)
    }
}

/// A directory of files named by their content: the file of id `abcd…` is
/// `dir/ab/cd…`, which keeps each directory to a manageable size.
///
/// A file appears whole or not at all: it is written to a temporary file
/// (named `.tmp…`) in the same directory, flushed to disk, renamed into
/// place, and the directory is flushed too. A crash may leave a temporary
/// file behind, never a partial file under an id. The store keeps any bytes;
/// whether they are an image is for the caller to check first.
///
/// Blocking file I/O: call it from a blocking thread, never on the async
/// runtime.
#[derive(Debug, Clone)]
pub struct MediaStore {
    root: PathBuf,
}

impl MediaStore {
    /// Opens the store in `dir`, creating the directory if needed.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<MediaStore> {
        let root = dir.into();
        fs::create_dir_all(&root)?;
        Ok(MediaStore { root })
    }

    /// Stores `bytes` and returns their id. Storing the same content again
    /// finds the file already there and writes nothing.
    pub fn put(&self, bytes: &[u8]) -> io::Result<MediaId> {
        let id = MediaId::of_content(bytes);
        self.write(&id, bytes)?;
        Ok(id)
    }

    /// Stores content already named by its id, as [`MediaStore::put`] does.
    pub fn put_content(&self, content: &Content) -> io::Result<()> {
        self.write(content.id(), content.bytes())
    }

    fn write(&self, id: &MediaId, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(id);
        match fs::metadata(&path) {
            Ok(_) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let shard = self.root.join(&id.as_str()[..2]);
        match fs::create_dir(&shard) {
            // The new directory's entry lives in the root: flush it too.
            Ok(()) => sync_dir(&self.root)?,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
        let mut temporary = tempfile::Builder::new()
            .prefix(".tmp")
            .tempfile_in(&shard)?;
        temporary.write_all(bytes)?;
        temporary.as_file().sync_all()?;
        // Two writers of the same content race harmlessly: either rename
        // leaves the same bytes under the id.
        temporary.persist(&path).map_err(|error| error.error)?;
        sync_dir(&shard)
    }

    /// Where the file of `id` is (or would be) on disk.
    pub fn path(&self, id: &MediaId) -> PathBuf {
        let (shard, rest) = id.as_str().split_at(2);
        self.root.join(shard).join(rest)
    }

    /// Reads the file of `id`; an unknown id is `io::ErrorKind::NotFound`.
    pub fn read(&self, id: &MediaId) -> io::Result<Vec<u8>> {
        fs::read(self.path(id))
    }

    /// Whether a file of `id` is stored.
    pub fn contains(&self, id: &MediaId) -> io::Result<bool> {
        match fs::metadata(self.path(id)) {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// Makes a directory's entries durable, so a renamed file survives a crash.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
