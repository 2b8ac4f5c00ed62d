//! Writing a policy: implement [`PolicyRules`] over the [`Capabilities`] the host
//! lends, then `export_policy!(MyPolicy)` makes the crate a
//! `recharge:policy@0.1.0` component when built for `wasm32-wasip2`. The raw
//! bindings, the allocator, the panic handler and the canonical-ABI plumbing come
//! with this crate; a policy author never touches them.
//!
//! ```
//! use recharge_policy_sdk::model::{AccountView, Answer, Event, PolicyError, QueryKind};
//! use recharge_policy_sdk::{Capabilities, PolicyRules, Role};
//!
//! /// Accepts everything, charges nothing, answers only service queries.
//! struct Quiet;
//!
//! impl PolicyRules for Quiet {
//!     fn handle(_event: &Event, _has_parent: bool, _caps: &mut impl Capabilities) -> Result<(), PolicyError> {
//!         Ok(())
//!     }
//!
//!     fn query(_actor: &str, _what: QueryKind, _has_parent: bool, caps: &impl Capabilities) -> Result<Answer, PolicyError> {
//!         let balance = caps.balance(Role::Subject).map_err(|_| PolicyError::Refused("no subject".into()))?;
//!         Ok(Answer::Service(balance.is_sign_positive()))
//!     }
//!
//!     fn describe(_caps: &impl Capabilities) -> AccountView {
//!         AccountView::default()
//!     }
//! }
//!
//! recharge_policy_sdk::export_policy!(Quiet);
//! ```

use rust_decimal::Decimal;

use crate::caps::Capabilities;
use crate::model::{AccountView, Answer, Event, MinuteQuote, PolicyError, QueryKind, Rates};
use crate::money::{allocation_price, minutes_bought};

/// A billing policy's rules, pure Rust over the host's capabilities.
pub trait PolicyRules {
    /// Handle one event about the subject; on error the host keeps nothing of it.
    fn handle(
        event: &Event,
        has_parent: bool,
        caps: &mut impl Capabilities,
    ) -> Result<(), PolicyError>;

    /// Answer `actor`'s question about the subject; nothing may change.
    fn query(
        actor: &str,
        what: QueryKind,
        has_parent: bool,
        caps: &impl Capabilities,
    ) -> Result<Answer, PolicyError>;

    /// The subject's settings, for the host's reports.
    fn describe(caps: &impl Capabilities) -> AccountView;

    /// The usage hot path's first look, from what a usage event hands over: the
    /// subject's balance after the call and the watermark the policy keeps
    /// (`Capabilities::set_watermark`). `false` means the event changes nothing
    /// and [`PolicyRules::handle`] is not called for it. The default, `true`,
    /// hands every usage event to `handle`.
    fn usage_matters(balance: Decimal, watermark: Option<Decimal>) -> bool {
        let _ = (balance, watermark);
        true
    }

    /// The monthly price of an allocation (default: whole cents at `rates`).
    fn estimate(basic_minutes: i64, premium_minutes: i64, rates: &Rates) -> Decimal {
        allocation_price(basic_minutes, premium_minutes, rates).unwrap_or(Decimal::MAX)
    }

    /// Whole minutes `credit` buys of each type (default: all on one type).
    fn minutes_for(credit: Decimal, rates: &Rates) -> MinuteQuote {
        MinuteQuote {
            basic_minutes: minutes_bought(credit, rates.basic),
            premium_minutes: minutes_bought(credit, rates.premium),
        }
    }
}

/// Export a [`PolicyRules`] implementation as the component's `policy` interface.
/// Natively (tests, the host's baseline) it expands to nothing.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type Export = $crate::bindings::Adapter<$policy>;
    $crate::__export_recharge_policy_impl!(Export with_types_in $crate::bindings);
        };
    };
}
