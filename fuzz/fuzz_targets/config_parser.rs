//! Any bytes given to the manifest reader and the validator: never a panic, and every
//! problem is reported as an error value.
#![no_main]

use ferrolb_shared::config::validate;
use ferrolb_shared::manifest::parse_documents;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = parse_documents("fuzz.yaml", &text);
    let objects: Vec<_> = parsed.config_objects();
    if let Err(errors) = validate(&objects) {
        assert!(!errors.is_empty());
    }
});
