//! Connections that only read, beside the one that writes. In WAL mode a
//! reader sees every transaction committed before its statement began, and
//! neither a reader nor the writer waits for the other: an event's reads go
//! on while another event's commit flushes, which is what lets concurrent
//! commits meet in one group. Read-only, so a reader can change nothing.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

use super::backend;

/// Idle readers kept for the next reads; more are opened while more threads
/// read at once, and closed when they are done.
const MOST_IDLE: usize = 8;

/// The readers of one file.
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers of the file at `path`, opened as reads need them.
    pub(super) fn of(path: &Path) -> Readers {
        Readers {
            path: path.to_owned(),
            idle: Mutex::default(),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A list of connections is whole whatever panicked while it was held.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle reader, or a new one.
    pub(super) fn take(&self) -> Result<Connection, StoreError> {
        if let Some(reader) = self.idle().pop() {
            return Ok(reader);
        }
        let reader = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend)?;
        reader
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        Ok(reader)
    }

    /// Keep `reader` for the next reads, unless enough are idle.
    pub(super) fn give_back(&self, reader: Connection) {
        let mut idle = self.idle();
        if idle.len() < MOST_IDLE {
            idle.push(reader);
        }
    }
}
