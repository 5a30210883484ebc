//! The ids of series as day tasks meet them, remembered per storage handle: series are never
//! deleted, so a known id stays right.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};

/// (symbol, timeframe, adjusted).
type SeriesKey = (String, String, bool);

/// Known series ids by symbol, timeframe and adjustment. Clones share the map.
#[derive(Debug)]
pub(crate) struct SeriesCache<Id>(Arc<Mutex<HashMap<SeriesKey, Id>>>);

impl<Id> Default for SeriesCache<Id> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<Id> Clone for SeriesCache<Id> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<Id: Copy> SeriesCache<Id> {
    fn map(&self) -> MutexGuard<'_, HashMap<SeriesKey, Id>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The symbols whose series at `timeframe` and `adjusted` are not known yet.
    pub(crate) fn missing<'a>(
        &self,
        symbols: &[&'a str],
        timeframe: &str,
        adjusted: bool,
    ) -> Vec<&'a str> {
        let map = self.map();
        symbols
            .iter()
            .copied()
            .filter(|s| !map.contains_key(&((*s).to_owned(), timeframe.to_owned(), adjusted)))
            .collect()
    }

    /// Remembers the ids of committed series rows.
    pub(crate) fn remember(
        &self,
        found: impl IntoIterator<Item = (Id, String)>,
        timeframe: &str,
        adjusted: bool,
    ) {
        let mut map = self.map();
        for (id, symbol) in found {
            map.insert((symbol, timeframe.to_owned(), adjusted), id);
        }
    }

    /// The ids of the series of `symbols`, in the same order.
    ///
    /// # Errors
    /// [`Error::InvalidData`] for a symbol whose series is not known.
    pub(crate) fn ids(&self, symbols: &[&str], timeframe: &str, adjusted: bool) -> Result<Vec<Id>> {
        let map = self.map();
        symbols
            .iter()
            .map(|s| {
                map.get(&((*s).to_owned(), timeframe.to_owned(), adjusted))
                    .copied()
                    .ok_or_else(|| Error::InvalidData(format!("no series for {s}")))
            })
            .collect()
    }
}
