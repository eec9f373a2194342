//! Traceability (docs/tracing.md): what a case's issuing province and its peers exchange about
//! trips, pure. The exposure notice ([`ExposureNotice`]) is what a tracing node sends a fellow
//! traveller's issuing province (section 5).

mod notice;

pub use notice::{
    CaseClass, ExposureNotice, NoticeId, SignedExposureNotice, CTI_PREFIX_LEN, MAX_NOTICE_BYTES,
    NOTICE_FIELDS, NOTICE_FORMAT, NOTICE_ID_LEN, SUBJECT_PREFIX_LEN,
};
