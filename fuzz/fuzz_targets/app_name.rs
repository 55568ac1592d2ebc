#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| paas_fuzz::app_name(data));
