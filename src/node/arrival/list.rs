//! ListArrivals: the trips checked in (or refused) here, newest first, in pages.

use super::{view, Arrival};
use crate::node::error::ApiError;
use crate::proto;

/// Page size when the request gives none.
const DEFAULT_PAGE: usize = 100;
/// Largest page.
const MAX_PAGE: usize = 1000;

impl Arrival<'_> {
    /// A page of arrivals, newest check-in first; `delivered` tells whether the origin
    /// acknowledged the receipt or refusal (not one it refused for good). Scans the store: run it on the blocking pool.
    ///
    /// # Errors
    /// [`ApiError::InvalidArgument`] on `page_token` for a token no answer gave;
    /// [`ApiError::Store`].
    pub(crate) fn list(
        &self,
        r: &proto::ListArrivalsRequest,
    ) -> Result<proto::ListArrivalsResponse, ApiError> {
        let limit = match r.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let below = if r.page_token.is_empty() {
            None
        } else {
            Some(
                hex::decode(&r.page_token)
                    .ok()
                    .filter(|k| k.len() == 16)
                    .ok_or_else(|| {
                        ApiError::invalid("page_token", "is not a token ListArrivals gave")
                    })?,
            )
        };
        let page = self.store.arrivals_page(below.as_deref(), limit)?;
        let arrivals = page
            .arrivals
            .iter()
            .map(|a| {
                let delivered = match a.outbox_seq {
                    Some(seq) => self.store.trip_record_acknowledged(seq)?,
                    None => false,
                };
                Ok(view::arrival(a, self.province, delivered))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(proto::ListArrivalsResponse {
            arrivals,
            next_page_token: page.next.map(hex::encode).unwrap_or_default(),
        })
    }
}
