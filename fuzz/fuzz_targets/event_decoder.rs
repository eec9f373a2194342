//! Fuzz target: see `hcmr_fuzz::event_target` for the decoders it runs and what it asserts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hcmr_fuzz::event_target(data);
});
