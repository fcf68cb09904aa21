//! Any bytes as a produced record batch: validation and record decoding (with every
//! compression codec) return errors, never panic, and never allocate past their bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let batch = bytes::Bytes::copy_from_slice(data);
    if let Ok(records) = sluice_log::record::decode_records(&batch, 1 << 20) {
        for r in records.take(10_000) {
            if r.is_err() {
                break;
            }
        }
    }
});
