//! The generated API is checked, not trusted: the descriptor set compiled by protox (no protoc)
//! holds every service and RPC of hcmr.v1, and every message, field, enum, enum value, service and
//! RPC carries a comment in proto/hcmr/v1/hcmr.proto.

use prost::Message;
use prost_types::FileDescriptorSet;

fn descriptor() -> FileDescriptorSet {
    FileDescriptorSet::decode(hcmr::proto::FILE_DESCRIPTOR_SET).unwrap()
}

#[test]
fn services_and_rpcs_are_as_documented() {
    let fds = descriptor();
    let file = fds
        .file
        .iter()
        .find(|f| f.package() == "hcmr.v1")
        .expect("package hcmr.v1");
    let rpcs: Vec<String> = file
        .service
        .iter()
        .flat_map(|s| {
            s.method
                .iter()
                .map(move |m| format!("{}/{}", s.name(), m.name()))
        })
        .collect();
    assert_eq!(
        rpcs,
        [
            "ReplicaService/FollowState",
            "ReplicaService/SubmitAuditBatch",
            "ReplicaService/ReportManifestCheck",
            "TraceService/TraceTrip",
            "TraceService/TraceSubject",
            "TraceService/ListExposureNotices",
            "HealthCodeService/IssueHealthCode",
            "HealthCodeService/VerifyHealthCode",
            "HealthCodeService/BatchVerifyHealthCodes",
            "HealthCodeService/RevokeHealthCode",
            "HealthCodeService/RevokeSubject",
            "HealthCodeService/MatchIdentity",
            "HealthCodeService/VerifyManifest",
            "TripService/CreateManifest",
            "TripService/BoardPerson",
            "TripService/RemovePerson",
            "TripService/SealManifest",
            "TripService/CancelManifest",
            "TripService/GetManifest",
            "TripService/ListManifests",
            "ArrivalService/CheckInManifest",
            "ArrivalService/ConfirmPerson",
            "ArrivalService/CompleteHandover",
            "ArrivalService/RefuseVehicle",
            "ArrivalService/ListArrivals",
            "FederationService/GetNodeInfo",
            "FederationService/ProposeAgreement",
            "FederationService/AcceptAgreement",
            "FederationService/NotifyTermination",
            "FederationService/NotifyProposalDropped",
            "FederationService/GetFeed",
            "FederationService/GetAgreements",
            "FederationService/MatchSubject",
            "FederationService/SubmitTripRecord",
            "FederationService/FindTrips",
            "OperatorService/CreateAgreement",
            "OperatorService/ListAgreements",
            "OperatorService/ApproveAgreement",
            "OperatorService/TerminateAgreement",
            "OperatorService/RejectAgreement",
            "OperatorService/WithdrawAgreement",
            "OperatorService/RotateKey",
            "OperatorService/WithdrawKey",
            "OperatorService/SyncNow",
            "OperatorService/ExportTrustBundle",
            "OperatorService/ListAuditRecords",
            "OperatorService/AddCaller",
            "OperatorService/ListCallers",
            "OperatorService/RemoveCaller",
            "OperatorService/ListAccessDenials",
            "OperatorService/ExportBackup",
            "OperatorService/EnrollReplica",
            "OperatorService/ListReplicas",
            "OperatorService/RemoveReplica",
        ]
    );
    // One request message per RPC (the two revocations share one response message).
    let mut inputs: Vec<&str> = file
        .service
        .iter()
        .flat_map(|s| s.method.iter().map(|m| m.input_type()))
        .collect();
    inputs.sort_unstable();
    inputs.dedup();
    assert_eq!(inputs.len(), rpcs.len());
}

#[test]
fn every_element_has_a_comment() {
    let fds = descriptor();
    let file = fds.file.iter().find(|f| f.package() == "hcmr.v1").unwrap();
    let info = file
        .source_code_info
        .as_ref()
        .expect("protox keeps source info");
    let commented = |path: &[i32]| {
        info.location.iter().any(|l| {
            l.path == path
                && (!l.leading_comments().trim().is_empty()
                    || !l.trailing_comments().trim().is_empty())
        })
    };
    let mut missing = Vec::new();
    let mut checked = 0;
    for (i, m) in file.message_type.iter().enumerate() {
        let i = i as i32;
        checked += 1;
        if !commented(&[4, i]) {
            missing.push(m.name().to_string());
        }
        for (j, f) in m.field.iter().enumerate() {
            checked += 1;
            if !commented(&[4, i, 2, j as i32]) {
                missing.push(format!("{}.{}", m.name(), f.name()));
            }
        }
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        let i = i as i32;
        checked += 1;
        if !commented(&[5, i]) {
            missing.push(e.name().to_string());
        }
        for (j, v) in e.value.iter().enumerate() {
            checked += 1;
            if !commented(&[5, i, 2, j as i32]) {
                missing.push(format!("{}.{}", e.name(), v.name()));
            }
        }
    }
    for (i, s) in file.service.iter().enumerate() {
        let i = i as i32;
        checked += 1;
        if !commented(&[6, i]) {
            missing.push(s.name().to_string());
        }
        for (j, m) in s.method.iter().enumerate() {
            checked += 1;
            if !commented(&[6, i, 2, j as i32]) {
                missing.push(format!("{}.{}", s.name(), m.name()));
            }
        }
    }
    assert!(checked > 150, "walked {checked} elements");
    assert!(missing.is_empty(), "uncommented: {missing:?}");
}
