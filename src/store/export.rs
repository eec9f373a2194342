//! The whole database as one copy (`hcmr backup`, the `ExportBackup` RPC) and back
//! (`hcmr restore`): every tree, whatever its family, as raw records.

use super::{blocking_or, Store, StoreError};

/// What [`Store::export`] shows its visitor, in this order: `Trees` once, then for every tree
/// (by name, in byte order) `Tree` followed by its records in key order.
#[derive(Debug)]
pub enum ExportItem<'a> {
    /// How many trees follow.
    Trees(usize),
    /// The start of the next tree: its name.
    Tree(&'a [u8]),
    /// A record of the current tree: key and value.
    Record(&'a [u8], &'a [u8]),
}

impl Store {
    /// A consistent copy of every tree, for backups: takes the write gate exclusively (waits
    /// for running write methods to finish their flush, holds off new ones), flushes, and shows
    /// `visit` every tree and record (see [`ExportItem`]) with `state`, on a blocking thread.
    /// Returns the state, which holds the copy. Writes wait meanwhile; reads (verification) do
    /// not.
    ///
    /// # Errors
    /// [`StoreError`] from the database, or the visitor's error (which ends the copy).
    pub async fn export<S, E>(
        &self,
        mut state: S,
        mut visit: impl FnMut(&mut S, ExportItem<'_>) -> Result<(), E> + Send + 'static,
    ) -> Result<S, E>
    where
        S: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let _exclusive = self.gate.write().await;
        self.flush().await?;
        let db = self.db.clone();
        blocking_or(move || {
            let mut names = db.tree_names();
            names.sort();
            visit(&mut state, ExportItem::Trees(names.len()))?;
            for name in &names {
                let tree = db.open_tree(name).map_err(StoreError::from)?;
                visit(&mut state, ExportItem::Tree(name))?;
                for r in tree.iter() {
                    let (k, v) = r.map_err(StoreError::from)?;
                    visit(&mut state, ExportItem::Record(&k, &v))?;
                }
            }
            Ok(state)
        })
        .await
    }

    /// Writes records into tree `tree` (created when missing), for `hcmr restore` filling a new
    /// database that no node serves; not flushed (call [`Store::flush`] at the end).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn import(
        &self,
        tree: &[u8],
        records: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in records {
            batch.insert(k, v);
        }
        self.db.open_tree(tree)?.apply_batch(batch)?;
        Ok(())
    }
}
