//! TraceTrip (docs/tracing.md section 2): a trip's chain as this node holds it. At the origin:
//! the trip events it signed (created, boarded, removed, cancelled), every sealed version, the
//! check reports and the handover received. At the destination: its check-in event, the version
//! it checked in, and the receipt or refusal it signed. Each item is verified here
//! ([`crate::manifest::verify_chain`]) under the keys this node trusts for its recorder, and the
//! call is audited (TRIP_CHAIN).

use super::error::ApiError;
use super::NodeState;
use crate::audit::{AuditRecord, TraceAction, TraceAudit};
use crate::manifest::{
    snapshot_keys, verify_chain, ChainItem, ChainKind, SignedManifest, SignedTripEvent, TripId,
};
use crate::proto;
use crate::province::Province;

impl NodeState {
    /// Answers TraceTrip for caller `who` (audited with the outcome).
    ///
    /// # Errors
    /// INVALID_ARGUMENT naming `trip_id` for a bad id; NOT_FOUND when this node holds nothing of
    /// the trip; UNAVAILABLE when the store fails.
    pub(crate) fn trace_trip(
        &self,
        who: &str,
        r: &proto::TraceTripRequest,
    ) -> Result<proto::TraceTripResponse, ApiError> {
        let parsed = super::trips::parse_trip_id(&r.trip_id);
        let trip_id = parsed.as_ref().ok().copied();
        let answer = parsed.and_then(|id| self.chain_of(id).map(|events| (id, events)));
        let trace = TraceAudit {
            action: TraceAction::TripChain,
            asked_by: who.to_string(),
            trip_id,
            subject_prefix: None,
            count: answer
                .as_ref()
                .map_or(0, |(_, e)| u32::try_from(e.len()).unwrap_or(u32::MAX)),
            refusal: match &answer {
                Ok(_) => String::new(),
                Err(e) => format!("{:?}: {e}", e.code()),
            },
        };
        self.audit
            .queue(AuditRecord::of_trace(self.clock.now(), None, trace));
        let (id, events) = answer?;
        tracing::info!(trip = %id, events = events.len(), "trip chain traced");
        Ok(proto::TraceTripResponse {
            trip_id: id.to_string(),
            held_by: self.province.to_string(),
            events,
        })
    }

    /// The chain of trip `id` as held here, verified and in order.
    fn chain_of(&self, id: TripId) -> Result<Vec<proto::TripEvent>, ApiError> {
        let items = self.held_items(id)?;
        let snapshot = self.trust.snapshot.load_full();
        let peers = self.peer_link();
        let keys = |p: Province| {
            if p == self.province {
                snapshot_keys(&snapshot, p)
            } else {
                peers.peer_keys(p)
            }
        };
        let report = verify_chain(id, &items, keys)
            .map_err(|_| ApiError::NotFound(format!("this node holds nothing of trip {id}")))?;
        Ok(report
            .entries
            .into_iter()
            .map(|e| {
                let signed = items[e.index].signed.clone();
                let verified = e.ok();
                match e.content {
                    Some(c) => proto::TripEvent {
                        kind: c.kind() as i32,
                        at: c.at().secs(),
                        recorded_by: c.recorder().map(|p| p.to_string()).unwrap_or_default(),
                        seat: u32::from(c.seat()),
                        version: c.version(),
                        summary: c.summary(),
                        details: c.details(),
                        signed,
                        verified,
                        fault: e.outcome.err().map(|f| f.to_string()).unwrap_or_default(),
                    },
                    None => proto::TripEvent {
                        kind: e.kind as i32,
                        summary: format!("{} (unreadable)", e.kind.as_str()),
                        signed,
                        fault: e.outcome.err().map(|f| f.to_string()).unwrap_or_default(),
                        ..Default::default()
                    },
                }
            })
            .collect())
    }

    /// Every signed object of trip `id` this node holds, each once.
    fn held_items(&self, id: TripId) -> Result<Vec<ChainItem>, ApiError> {
        let mut items: Vec<ChainItem> = Vec::new();
        let mut push = |kind: ChainKind, signed: Vec<u8>| {
            if !items.iter().any(|i| i.signed == signed) {
                items.push(ChainItem { kind, signed });
            }
        };
        let sealed = |text: &str| {
            SignedManifest::decode(text)
                .map(|m| m.cose_bytes().to_vec())
                .map_err(|_| ApiError::Internal("a stored manifest does not decode"))
        };
        for signed in self.store.trip_events(&id)? {
            match SignedTripEvent::decode(&signed) {
                Ok(e) => push(ChainKind::of_event(e.event.kind()), signed),
                Err(e) => {
                    tracing::warn!(trip = %id, error = %e, "a stored trip event does not decode")
                }
            }
        }
        if let Some(t) = self.store.trip(&id)? {
            for v in 1..=t.version {
                if let Some(text) = self.store.trip_version(&id, v)? {
                    push(ChainKind::Sealed, sealed(&text)?);
                }
            }
            for rep in self.store.trip_reports(&id)? {
                push(ChainKind::Checked, rep.signed);
            }
            if let Some(h) = self.store.trip_handover(&id)? {
                push(handover_kind(h.refused), h.signed);
            }
        }
        if let Some(a) = self.store.arrival(&id)? {
            push(ChainKind::Sealed, sealed(&a.manifest)?);
            if let Some(h) = a.handover {
                push(handover_kind(h.refused), h.signed);
            }
        }
        Ok(items)
    }
}

fn handover_kind(refused: bool) -> ChainKind {
    if refused {
        ChainKind::Refused
    } else {
        ChainKind::HandedOver
    }
}
