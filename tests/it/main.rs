//! The integration tests, one module per area, in one test binary so the crate links once
//! (`cargo test --test it`; one area: `cargo test --test it cli::`). Every test starts its own
//! nodes on 127.0.0.1 port 0 in its own temporary folder, so tests run in parallel in this one
//! process; none sets a global tracing subscriber, and a test that sets an environment variable
//! uses a name that no other test reads.

mod common;

mod arrival;
mod backup;
mod batch;
mod bench;
mod browser;
mod checkpoint;
mod cli;
mod cli_operator;
mod clock;
mod config;
mod crash;
mod demo;
mod deploy;
mod exposure;
mod federation;
mod feed_watch;
mod health_port;
mod hostile;
mod hostile_corpus;
mod inspect;
mod lifecycle;
mod load_balancer;
mod manifest_check;
mod operations;
mod peer_faults;
mod privacy;
mod proto;
mod python_client;
mod qr;
mod readme;
mod replica;
mod replica_audit;
mod resources;
mod retention;
mod security;
mod storage_faults;
mod trace_chain;
mod trace_notices;
mod trace_subject;
mod transport;
mod trips;
