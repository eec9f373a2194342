//! One module per subcommand: its clap arguments and the code that runs it (`exec`), which calls
//! the node over gRPC or the library.

pub mod agreement;
pub mod arrival;
pub mod audit;
pub mod backup;
pub mod bench;
pub mod bundle;
pub mod caller;
pub mod completions;
pub mod demo;
pub mod exposure;
pub mod health;
pub mod info;
pub mod init;
pub mod inspect;
pub mod issue;
pub mod key;
pub mod man;
pub mod manifest;
pub mod manifest_check;
pub mod manifest_trace;
pub mod match_identity;
pub mod replica;
pub mod revoke;
pub mod serve;
pub mod sync;
pub mod trace;
pub mod verify;
