//! Reading input files within bounds. Whatever a path names (a regular file, a
//! pipe, a FIFO, `/dev/zero`), at most the limit and one byte more is read, so an
//! endless stream ends in a clear error instead of growing memory.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use thiserror::Error;

/// Why a file could not be read whole.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file holds more than the limit (or never ends).
    #[error("larger than the {} limit", Size(*limit))]
    TooLarge {
        /// The limit, bytes.
        limit: u64,
    },
}

/// Read a whole file of at most `limit` bytes.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = File::open(path)?;
    // A regular file says how large it is: refuse it before reading a byte.
    let known = file.metadata().ok().filter(|meta| meta.is_file());
    if let Some(meta) = &known
        && meta.len() > limit
    {
        return Err(ReadError::TooLarge { limit });
    }
    let expected = known.map_or(0, |meta| meta.len());
    let mut bytes = Vec::with_capacity(usize::try_from(expected.min(limit)).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// A size in bytes as people write it: `8 MiB`, `64 KiB`, `100 bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: u64 = 1 << 10;
        const MIB: u64 = 1 << 20;
        match self.0 {
            bytes if bytes >= MIB && bytes.is_multiple_of(MIB) => write!(f, "{} MiB", bytes / MIB),
            bytes if bytes >= KIB && bytes.is_multiple_of(KIB) => write!(f, "{} KiB", bytes / KIB),
            bytes => write!(f, "{bytes} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(Size(8 << 20).to_string(), "8 MiB");
        assert_eq!(Size(64 << 10).to_string(), "64 KiB");
        assert_eq!(Size(1000).to_string(), "1000 bytes");
    }

    #[test]
    fn an_endless_stream_stops_at_the_limit() {
        let err = read_capped(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit } if limit == 1 << 20));
        assert_eq!(err.to_string(), "larger than the 1 MiB limit");
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let err = read_capped(Path::new("/nonexistent/file"), 10).unwrap_err();
        assert!(matches!(err, ReadError::Io(_)), "{err}");
    }
}
