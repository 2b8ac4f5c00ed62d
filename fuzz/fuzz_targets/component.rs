//! Component loading (`PolicyEngine::load`, then `check_component` for whatever
//! loads): raw bytes, mutations of the default policy, and generated core
//! modules wrapped in a component. Every input ends in a load error, a check
//! error or a report, never a panic or a crash of the host.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recharge_fuzz::component::check_input;

fuzz_target!(|data: &[u8]| {
    check_input(data);
});
