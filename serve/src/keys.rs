//! API keys: only their SHA-256 is kept, in the store's journal stream
//! [`API_KEYS_STREAM`] (one entry a key), so a copy of the database gives no
//! one a key. The key in `RECHARGE_API_KEY` is accepted beside them.
//!
//! A key is `rk_` and 64 hex digits (32 random bytes from the operating
//! system). Keys minted by another process (`recharge api-key create`) while
//! the service runs are accepted at once: an unknown key makes the service
//! read the entries appended since it last looked.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use recharge_host::{Store, StoreError, sha256_hex};
use serde::{Deserialize, Serialize};

/// The journal stream of the stored keys' hashes.
pub const API_KEYS_STREAM: &str = "api-keys";

/// What is kept of one key.
#[derive(Debug, Serialize, Deserialize)]
struct StoredKey {
    /// SHA-256 of the key, hex.
    sha256: String,
    /// When it was minted (milliseconds since the epoch).
    created: i64,
}

/// Why a key could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system gave no randomness.
    #[error("no randomness for a key: {0}")]
    Random(getrandom::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The keys a service accepts.
pub struct ApiKeys {
    store: Arc<dyn Store>,
    from_env: Option<String>,
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    hashes: HashSet<String>,
    read: u64,
}

impl ApiKeys {
    /// The keys kept in `store`, and `from_env` (the hash of
    /// `RECHARGE_API_KEY`'s value) if given.
    pub fn new(store: Arc<dyn Store>, from_env: Option<&str>) -> Result<Self, StoreError> {
        let keys = ApiKeys {
            store,
            from_env: from_env.map(|key| sha256_hex(key.as_bytes())),
            known: Mutex::new(Known::default()),
        };
        keys.catch_up()?;
        Ok(keys)
    }

    /// Whether any key at all is accepted.
    pub fn any(&self) -> bool {
        self.from_env.is_some() || !self.lock().hashes.is_empty()
    }

    /// Whether `key` is accepted by what this service already knows, without
    /// asking the store.
    pub fn known(&self, key: &str) -> bool {
        let hash = sha256_hex(key.as_bytes());
        self.from_env.as_deref() == Some(hash.as_str()) || self.lock().hashes.contains(&hash)
    }

    /// Whether `key` is accepted, taking in the keys minted since the last
    /// look if it is not known yet.
    pub fn accepts(&self, key: &str) -> Result<bool, StoreError> {
        if self.known(key) {
            return Ok(true);
        }
        self.catch_up()?;
        Ok(self.known(key))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Take in the keys minted since the last look.
    fn catch_up(&self) -> Result<(), StoreError> {
        let read = self.lock().read;
        let entries = self.store.journal(API_KEYS_STREAM, read)?;
        let mut known = self.lock();
        for (seq, entry) in entries {
            if seq <= known.read {
                continue;
            }
            // An entry that is not a key (written by hand, say) grants nothing.
            if let Ok(stored) = serde_json::from_str::<StoredKey>(&entry) {
                known.hashes.insert(stored.sha256);
            }
            known.read = seq;
        }
        Ok(())
    }
}

/// Mint a new key and keep its hash in `store`; the key itself is returned
/// once and kept nowhere.
pub fn mint_key(store: &dyn Store, now: i64) -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(KeyError::Random)?;
    let key = format!("rk_{}", hex(&bytes));
    let entry = serde_json::to_string(&StoredKey {
        sha256: sha256_hex(key.as_bytes()),
        created: now,
    })
    .map_err(|err| StoreError::Backend(format!("an API key entry: {err}")))?;
    let mut after = store.journal(API_KEYS_STREAM, 0)?.len() as u64;
    loop {
        match store.append(API_KEYS_STREAM, after, std::slice::from_ref(&entry)) {
            Ok(()) => return Ok(key),
            // Another key was minted meanwhile: go after it.
            Err(StoreError::Behind(_)) => after += 1,
            Err(other) => return Err(other.into()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use recharge_host::MemoryStore;

    use super::*;

    // A key is accepted by its hash; the store never holds the key itself.
    #[test]
    fn minted_keys_are_accepted_and_only_their_hash_is_kept() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let keys = ApiKeys::new(Arc::clone(&store), Some("from-env")).unwrap();
        let minted = mint_key(store.as_ref(), 0).unwrap();
        assert!(minted.starts_with("rk_") && minted.len() == 67);
        assert!(
            keys.accepts(&minted).unwrap(),
            "minted after start, accepted"
        );
        assert!(keys.accepts("from-env").unwrap());
        assert!(!keys.accepts("rk_guess").unwrap());
        let journal = store.journal(API_KEYS_STREAM, 0).unwrap();
        assert_eq!(journal.len(), 1);
        assert!(!journal[0].1.contains(&minted));
    }

    #[test]
    fn no_keys_accept_nothing() {
        let keys = ApiKeys::new(Arc::new(MemoryStore::new()), None).unwrap();
        assert!(!keys.any());
        assert!(!keys.accepts("").unwrap());
    }
}
