//! Trust changes after the first verdicts: a revoked code, a revoked subject, a key rotation and
//! a terminated agreement, each carried to the peers by their sync (triggered here instead of
//! waiting for the interval) and shown as a row of the table.

use std::io::Write;

use super::federation::{issue, rpc, sync, verify_at, Federation};
use super::scenario::Case;
use super::table::Table;
use super::{DemoError, ANHUI, GUANGDONG, SICHUAN, ZHEJIANG};
use crate::proto;
use crate::proto::health_code_service_client::HealthCodeServiceClient;
use crate::proto::operator_service_client::OperatorServiceClient;
use crate::status::HealthStatus;

/// Makes the trust changes and prints their verdicts to `table`; `codes` are the codes of
/// `cases`, in order; `az_id` is the Anhui-Zhejiang agreement, which Zhejiang terminates.
pub(super) async fn trust_changes(
    fed: &Federation,
    table: &mut Table<'_, impl Write>,
    cases: &[Case],
    codes: &[String],
    az_id: &str,
) -> Result<(), DemoError> {
    writeln!(
        table.out,
        "\ntrust changes, carried by each node's signed feed and its peers' sync:"
    )?;
    let code_of = |name: &str| {
        cases
            .iter()
            .zip(codes)
            .find(|(c, _)| c.name == name)
            .map(|(c, code)| (c, code.clone()))
            .expect("the scenario names this worker")
    };
    let mut sc_codes = HealthCodeServiceClient::new(fed.connect(SICHUAN).await?);
    let mut sc_ops = OperatorServiceClient::new(fed.connect(SICHUAN).await?);

    // 1. Sichuan revokes one code (王*国's green: issued in error).
    let (wang, wang_code) = code_of("王建国");
    let cti = crate::code::HealthCode::decode(&wang_code)
        .map(|h| hex::encode(h.cti()))
        .map_err(|e| DemoError::Scenario(e.to_string()))?;
    sc_codes
        .revoke_health_code(proto::RevokeHealthCodeRequest { cti })
        .await
        .map_err(rpc("RevokeHealthCode"))?;
    sync(fed, GUANGDONG).await?;
    let r = verify_at(fed, GUANGDONG, &wang_code).await?;
    table.row(
        SICHUAN,
        GUANGDONG,
        wang.status,
        &r,
        Err(proto::Reason::Revoked),
        "code revoked by Sichuan",
    )?;

    // 2. 李*英's status changes: Sichuan revokes her earlier codes and issues a red one.
    let (li, li_code) = code_of("李秀英");
    sc_codes
        .revoke_subject(proto::RevokeSubjectRequest {
            document_type: proto::DocumentType::ResidentIdentityCard as i32,
            document_number: li.resident().document_number(),
            issued_before: 0,
        })
        .await
        .map_err(rpc("RevokeSubject"))?;
    sync(fed, GUANGDONG).await?;
    let r = verify_at(fed, GUANGDONG, &li_code).await?;
    table.row(
        SICHUAN,
        GUANGDONG,
        li.status,
        &r,
        Err(proto::Reason::Revoked),
        "earlier code, subject revoked",
    )?;
    // Her new code, issued at once: the node dates it after the revocation.
    let fresh = issue(fed, li, HealthStatus::Red, 300).await?.code;
    let r = verify_at(fed, GUANGDONG, &fresh).await?;
    table.row(
        SICHUAN,
        GUANGDONG,
        HealthStatus::Red,
        &r,
        Ok(HealthStatus::Red),
        "new code after the change",
    )?;

    // 3. Sichuan rotates its key; peers learn the new key from the rotation statement.
    let (zhang, zhang_code) = code_of("张伟");
    let rotated = sc_ops
        .rotate_key(proto::RotateKeyRequest {})
        .await
        .map_err(rpc("RotateKey"))?
        .into_inner();
    sync(fed, GUANGDONG).await?;
    sync(fed, ZHEJIANG).await?;
    let (liu, _) = code_of("刘洋");
    let new_code = issue(fed, liu, HealthStatus::Green, 300).await?.code;
    let kid = hex::encode(rotated.new_key.map(|k| k.kid).unwrap_or_default());
    let r = verify_at(fed, ZHEJIANG, &new_code).await?;
    table.row(
        SICHUAN,
        ZHEJIANG,
        HealthStatus::Green,
        &r,
        Ok(HealthStatus::Green),
        &format!("signed by the new key {kid}"),
    )?;
    let r = verify_at(fed, GUANGDONG, &zhang_code).await?;
    table.row(
        SICHUAN,
        GUANGDONG,
        zhang.status,
        &r,
        Ok(HealthStatus::Red),
        "signed by the old key, until exp",
    )?;

    // 4. Zhejiang terminates its agreement with Anhui.
    OperatorServiceClient::new(fed.connect(ZHEJIANG).await?)
        .terminate_agreement(proto::TerminateAgreementRequest {
            id: az_id.to_string(),
            effective_at: 0,
        })
        .await
        .map_err(rpc("TerminateAgreement"))?;
    let (yang, yang_code) = code_of("杨帆");
    let r = verify_at(fed, ZHEJIANG, &yang_code).await?;
    table.row(
        ANHUI,
        ZHEJIANG,
        yang.status,
        &r,
        Err(proto::Reason::AgreementTerminated),
        "Zhejiang ended the agreement",
    )?;

    Ok(())
}
