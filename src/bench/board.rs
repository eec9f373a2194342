//! The trips of `board`: TripService.BoardPerson at the node under load, every call a real
//! boarding. Lanes of 55 own-province codes (distinct residents, issued before the measurement)
//! each fill a trip of their own; a full trip is replaced by a new one and cancelled, which frees
//! its people to board the next (docs/transport.md section 3.5: a holder is on at most one open
//! trip). A request takes a free lane, so no two boardings race for one trip or one person.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::Failure;
use crate::client::NodeChannel;
use crate::proto;
use crate::proto::health_code_service_client::HealthCodeServiceClient;
use crate::proto::trip_service_client::TripServiceClient;
use crate::status::HealthStatus;
use crate::synthetic::Resident;

/// People per trip: a full coach, as in the issue's target (a manifest may list more).
pub(super) const TRIP_PEOPLE: usize = 55;

/// Lanes at most: more requests in flight than lanes wait for one.
const MAX_LANES: usize = 64;

/// Codes of one lane, and its open trip.
struct Lane {
    codes: Vec<String>,
    trip: Option<String>,
    next: usize,
}

/// The lanes of `board`, and the trip every lane's trips copy.
pub(super) struct Boarding {
    lanes: Vec<Arc<Mutex<Lane>>>,
    trip: proto::CreateManifestRequest,
}

/// A request for a green code, valid a day, of the synthetic resident `seq` of lane `lane`:
/// residents of one lane share a birth year, so no two lanes share a person.
fn board_request(lane: usize, seq: usize) -> proto::IssueHealthCodeRequest {
    let birth = format!("{}0101", 1940 + lane);
    Resident {
        name: "李志强",
        address: "440106",
        birth: &birth,
        seq: seq as u16,
    }
    .issue_request(HealthStatus::Green, 86_400, 3_600)
}

impl Boarding {
    /// Issues `TRIP_PEOPLE` codes for each of `min(concurrency, 64)` lanes at the node behind
    /// `ch`, lanes in parallel; the trips leave from the codes' province (its county `+101`) in
    /// 10 minutes, for Zhejiang (Guangdong from Zhejiang), arriving an hour later.
    ///
    /// # Errors
    /// The first failed issue's status, or an issued code that does not decode.
    pub(super) async fn prepare(
        ch: &NodeChannel,
        concurrency: usize,
    ) -> Result<Boarding, tonic::Status> {
        let lanes = concurrency.clamp(1, MAX_LANES);
        let mut tasks = tokio::task::JoinSet::new();
        for lane in 0..lanes {
            let mut hc = HealthCodeServiceClient::new(ch.clone());
            tasks.spawn(async move {
                let mut codes = Vec::with_capacity(TRIP_PEOPLE);
                for seq in 0..TRIP_PEOPLE {
                    codes.push(
                        hc.issue_health_code(board_request(lane, seq))
                            .await?
                            .into_inner()
                            .code,
                    );
                }
                Ok::<_, tonic::Status>((lane, codes))
            });
        }
        let mut made = vec![Vec::new(); lanes];
        while let Some(done) = tasks.join_next().await {
            let (lane, codes) = done.map_err(|e| tonic::Status::internal(e.to_string()))??;
            made[lane] = codes;
        }
        let province: crate::province::Province = crate::code::HealthCode::decode(&made[0][0])
            .map_err(|e| tonic::Status::internal(format!("an issued code: {e}")))?
            .claims
            .iss
            .parse()
            .map_err(|e| tonic::Status::internal(format!("an issued code's province: {e}")))?;
        let destination = if province.code() == 330000 {
            "440106"
        } else {
            "330200"
        };
        let now = crate::unix_now().secs();
        Ok(Boarding {
            lanes: made
                .into_iter()
                .map(|codes| {
                    Arc::new(Mutex::new(Lane {
                        codes,
                        trip: None,
                        next: 0,
                    }))
                })
                .collect(),
            trip: proto::CreateManifestRequest {
                vehicle: "BENCH-002".into(),
                origin: (province.code() + 101).to_string(),
                destination: destination.into(),
                place: "bench factory".into(),
                transit: Vec::new(),
                departure: now + 600,
                arrival: now + 600 + 3600,
                escort: "王*".into(),
            },
        })
    }

    /// One boarding: the next person of a free lane (the one `n` names when free) boards its
    /// trip; a full trip is first replaced by a new one and cancelled. Ok only when boarded.
    ///
    /// # Errors
    /// The gRPC status of a failed call, or the refusal's name (`BOARDING_REFUSAL_...`).
    pub(super) async fn board(&self, ch: NodeChannel, n: u64) -> Result<(), Failure> {
        let status = |s: tonic::Status| Failure::Status(s.code());
        let first = n as usize % self.lanes.len();
        let mut lane = None;
        for i in 0..self.lanes.len() {
            if let Ok(l) = self.lanes[(first + i) % self.lanes.len()].try_lock() {
                lane = Some(l);
                break;
            }
        }
        let mut lane = match lane {
            Some(l) => l,
            None => self.lanes[first].lock().await,
        };
        let mut trips = TripServiceClient::new(ch);
        if lane.trip.is_none() || lane.next >= lane.codes.len() {
            let new = trips
                .create_manifest(self.trip.clone())
                .await
                .map_err(status)?
                .into_inner()
                .trip_id;
            if let Some(full) = lane.trip.replace(new) {
                trips
                    .cancel_manifest(proto::CancelManifestRequest { trip_id: full })
                    .await
                    .map_err(status)?;
            }
            lane.next = 0;
        }
        let code = lane.codes[lane.next].clone();
        // A refused person is not tried again on this trip.
        lane.next += 1;
        let r = trips
            .board_person(proto::BoardPersonRequest {
                trip_id: lane.trip.clone().unwrap_or_default(),
                code,
                seat: 0,
                crew: false,
            })
            .await
            .map_err(status)?
            .into_inner();
        if r.boarded {
            return Ok(());
        }
        Err(Failure::Verdict(
            proto::BoardingRefusal::try_from(r.refusal)
                .map_or("UNKNOWN_REFUSAL", |k| k.as_str_name()),
        ))
    }

    /// Cancels the lanes' open trips after the run, so their people may board elsewhere (a
    /// node loaded again, or by hand). Best effort: a trip left open only holds the bench's
    /// synthetic residents, and the report is worth more than the clean-up.
    pub(super) async fn cancel_all(&self, ch: &NodeChannel) {
        let mut trips = TripServiceClient::new(ch.clone());
        for lane in &self.lanes {
            if let Some(trip_id) = lane.lock().await.trip.take() {
                let _ = trips
                    .cancel_manifest(proto::CancelManifestRequest { trip_id })
                    .await;
            }
        }
    }
}
