//! A platform embedding recharge in about forty lines: build a platform, open
//! accounts, record usage, drive timers and the outbox.
//!
//! `cargo run --example embed`

use std::sync::Arc;

use recharge_host::model::{AccountKind, AutoRechargeSettings, MinuteType, Mode};
use recharge_host::{AccountId, HostError, MemoryStore, Platform, SimulatedGateway, money};
use rust_decimal::Decimal;

fn main() -> Result<(), HostError> {
    // Your store and your gateway here; these keep everything in memory.
    let platform = Platform::builder()
        .store(Arc::new(MemoryStore::new()))
        .gateway(Arc::new(SimulatedGateway::new()))
        .build()?;

    let alice = AccountId::from("alice");
    platform.open_account(alice.clone(), AccountKind::User, None)?;
    platform.add_card(&alice, "visa")?;
    let saved = platform.save_auto_recharge(
        &alice,
        &alice,
        AutoRechargeSettings {
            enabled: true,
            threshold: Decimal::new(5_00, 2),
            amount: Decimal::new(20_00, 2),
            card: "visa".into(),
            mode: Mode::Fixed,
            monthly_limit: None,
        },
    )?;
    println!("saving charged {} time(s)", saved.charges.len());

    // Every finished call, rated and decided in one atomic event.
    for call in 0..10 {
        let report =
            platform.record_usage(&alice, &format!("call-{call}"), 300, MinuteType::Premium)?;
        for charge in &report.charges {
            println!("call-{call} queued a charge of {}", money(charge.amount));
        }
    }

    // A worker loop would do this on a tick: fire due timers, then anything
    // left in the outbox (after a restart, say).
    platform.advance_to(platform.now())?;
    platform.run_outbox()?;

    let account = platform.account(&alice)?;
    println!(
        "alice: balance {}, {:?}",
        money(account.balance),
        account.status
    );
    Ok(())
}
