//! One way to take a mutex: a poisoned one is taken anyway.
//!
//! A panic while a guard is held poisons the mutex. Every mutex in hcmr guards state that is
//! valid between statements (counters, queues, maps replaced whole), so the node goes on with
//! it rather than turning one panic into a panic on every later call.

use std::sync::{Mutex, MutexGuard};

/// [`Mutex::lock`] that takes a poisoned mutex as it is (see the module doc).
pub(crate) trait Locked<T> {
    /// The guard, poisoned or not.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
