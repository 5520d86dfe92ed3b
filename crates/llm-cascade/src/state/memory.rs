//! The default store: a map in this process's memory.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::{Change, ProviderState, StateStore};

/// Provider state in this process's memory, shared by the clones of a cascade.
#[derive(Debug, Default)]
pub struct MemoryStore {
    states: Mutex<HashMap<String, ProviderState>>,
}

impl MemoryStore {
    /// Applies `change` without awaiting: the in-memory path never yields.
    pub fn modify_now(&self, key: &str, change: &mut Change<'_>) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        match states.get_mut(key) {
            Some(state) => change(state),
            None => {
                let mut state = ProviderState::default();
                change(&mut state);
                if state != ProviderState::default() {
                    states.insert(key.to_owned(), state);
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl StateStore for MemoryStore {
    async fn modify(&self, key: &str, change: &mut Change<'_>) {
        self.modify_now(key, change);
    }
}
