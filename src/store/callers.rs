//! The API callers (`callers`): roles and token hashes, by name.

use super::{corrupt, Store, StoreError};
use crate::callers::Caller;

impl Store {
    /// Adds or replaces a caller, and flushes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn put_caller(&self, c: &Caller) -> Result<(), StoreError> {
        let name = c.name.as_bytes();
        self.write_or_undo(
            async { Ok(self.callers.insert(name, c.to_record())?) },
            // Not durable, so not done: undone in memory too, so that a retry (which must not
            // find an existing name it did not make) sees the state the error reported.
            |old| {
                let _ = match old {
                    Some(v) => self.callers.insert(name, v).map(drop),
                    None => self.callers.remove(name).map(drop),
                };
            },
        )
        .await
        .map(drop)
    }

    /// Removes a caller and flushes; whether it existed.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn remove_caller(&self, name: &str) -> Result<bool, StoreError> {
        self.write(async { Ok(self.callers.remove(name.as_bytes())?.is_some()) })
            .await
    }

    /// Every caller, by name.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a record that does not decode.
    pub fn callers(&self) -> Result<Vec<Caller>, StoreError> {
        let mut out = Vec::new();
        for r in self.callers.iter() {
            let (k, v) = r?;
            let name = String::from_utf8_lossy(&k).to_string();
            out.push(
                Caller::from_record(&name, &v).map_err(|e| corrupt("callers", e.to_string()))?,
            );
        }
        Ok(out)
    }
}
