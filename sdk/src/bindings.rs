//! The thin adapter between the WIT contract and the pure core: it converts the
//! generated binding types to the core's model and back, and lends the core the
//! imported capabilities through [`Capabilities`]. No rule lives here.

use alloc::{string::String, vec::Vec};
use core::marker::PhantomData;
use rust_decimal::Decimal;

use crate::caps::{Capabilities, Role};
use crate::{PolicyRules, model, money};

wit_bindgen::generate!({
    world: "recharge-policy",
    path: "../wit/0.2.0",
    pub_export_macro: true,
    export_macro_name: "__export_recharge_policy",
});

use core::cell::OnceCell;
pub use exports::recharge::policy::policy as exported;
pub use recharge::policy::balance::Account;
pub use recharge::policy::types as wit;
use recharge::policy::{balance, clock, notify, payment};

#[global_allocator]
static ALLOCATOR: crate::heap::Allocator = crate::heap::Allocator::new();

/// Without std there is nothing to print a panic to: trap. The core is written
/// not to panic; this is the last line of defence.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The allocator entry point of the canonical ABI, over the global allocator. On
/// `wasm32-wasip2` it normally comes from wasi-libc, which this `no_std`
/// component does not link (that would bring WASI with it).
///
/// # Safety
///
/// Called by the component runtime only, under the canonical ABI's contract:
/// `old_ptr` was returned by an earlier call with `old_len` and `align`.
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use core::alloc::{GlobalAlloc, Layout};
    if new_len == 0 {
        return align as *mut u8;
    }
    let size = if old_len == 0 { new_len } else { old_len };
    // Straight to the global allocator: the host calls this for every string
    // and list it hands over.
    let ptr = match Layout::from_size_align(size, align) {
        // SAFETY: the layout is valid and non-zero-sized; a reallocation uses
        // the layout the block was allocated with.
        Ok(layout) if old_len == 0 => unsafe { ALLOCATOR.alloc(layout) },
        Ok(layout) => unsafe { ALLOCATOR.realloc(old_ptr, layout, new_len) },
        Err(_) => core::ptr::null_mut(),
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable();
    }
    ptr
}

/// `memcmp` for the comparisons the compiler lowers to it. On `wasm32-wasip2` it
/// normally comes from wasi-libc, which this `no_std` component does not link
/// (that would bring WASI with it).
///
/// # Safety
///
/// `left` and `right` must be valid for reads of `len` bytes.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(left: *const u8, right: *const u8, len: usize) -> i32 {
    // Eight bytes at a time while they agree (state bytes run to a hundred or
    // more), then byte by byte to find the first difference.
    let mut index = 0;
    while index + 8 <= len {
        // SAFETY: the caller guarantees both ranges are readable for `len` bytes.
        let (a, b) = unsafe {
            (
                left.add(index).cast::<u64>().read_unaligned(),
                right.add(index).cast::<u64>().read_unaligned(),
            )
        };
        if a != b {
            break;
        }
        index += 8;
    }
    while index < len {
        // SAFETY: as above.
        let (a, b) = unsafe { (*left.add(index), *right.add(index)) };
        if a != b {
            return i32::from(a) - i32::from(b);
        }
        index += 1;
    }
    0
}

/// `bcmp`, the equality-only `memcmp` the compiler may call instead.
///
/// # Safety
///
/// As [`memcmp`].
#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(left: *const u8, right: *const u8, len: usize) -> i32 {
    // SAFETY: forwarded under the same contract.
    unsafe { memcmp(left, right, len) }
}

/// The raw bindings' `Guest` for any [`PolicyRules`]: each call converts, runs
/// the policy's rules over the imported capabilities and converts back.
pub struct Adapter<P>(PhantomData<P>);

impl<P: PolicyRules> exported::Guest for Adapter<P> {
    fn usage(call: exported::RatedCall) -> Result<(), exported::PolicyError> {
        let balance = decimal_from_wit(call.balance);
        let watermark = call.watermark.map(decimal_from_wit);
        if !P::usage_matters(balance, watermark) {
            return Ok(());
        }
        let event = model::Event::Usage(model::Usage {
            seconds: call.seconds,
            minute_type: match call.minute_type {
                wit::MinuteType::Basic => model::MinuteType::Basic,
                wit::MinuteType::Premium => model::MinuteType::Premium,
            },
            wallet_cost: decimal_from_wit(call.wallet_cost),
        });
        let mut host = Host {
            accounts: Accounts::Asked {
                subject: OnceCell::new(),
                parent: OnceCell::new(),
            },
            handed: Some(Handed { balance, watermark }),
        };
        P::handle(&event, call.has_parent, &mut host).map_err(error_to_wit)
    }

    fn handle(
        event: exported::Event,
        subject: &Account,
        parent: Option<&Account>,
    ) -> Result<(), exported::PolicyError> {
        let event = event_from_wit(event);
        let mut host = Host::new(subject, parent);
        P::handle(&event, parent.is_some(), &mut host).map_err(error_to_wit)
    }

    fn query(
        actor: String,
        what: exported::QueryKind,
        subject: &Account,
        parent: Option<&Account>,
    ) -> Result<exported::Answer, exported::PolicyError> {
        let host = Host::new(subject, parent);
        let what = match what {
            exported::QueryKind::AutoRecharge => model::QueryKind::AutoRecharge,
            exported::QueryKind::Estimate => model::QueryKind::Estimate,
            exported::QueryKind::Service => model::QueryKind::Service,
            exported::QueryKind::Balance => model::QueryKind::Balance,
        };
        let answer = P::query(&actor, what, parent.is_some(), &host).map_err(error_to_wit)?;
        Ok(match answer {
            model::Answer::AutoRecharge(settings) => {
                exported::Answer::AutoRecharge(settings.map(auto_recharge_to_wit))
            }
            model::Answer::Estimate(estimate) => {
                exported::Answer::Estimate(decimal_to_wit(estimate))
            }
            model::Answer::Service(can_call) => exported::Answer::Service(can_call),
            model::Answer::Balance(snapshot) => {
                exported::Answer::Balance(snapshot_to_wit(snapshot))
            }
        })
    }

    fn describe(subject: &Account) -> wit::AccountView {
        let view = P::describe(&Host::new(subject, None));
        wit::AccountView {
            auto_recharge: view.auto_recharge.map(auto_recharge_to_wit),
            allocation: view.allocation.map(|allocation| wit::AllocationView {
                settings: allocation_to_wit(allocation.settings),
                next_run: allocation.next_run,
            }),
        }
    }

    fn estimate(basic_minutes: i64, premium_minutes: i64, rates: wit::Rates) -> wit::Decimal {
        decimal_to_wit(P::estimate(
            basic_minutes,
            premium_minutes,
            &rates_from_wit(rates),
        ))
    }

    fn minutes_for(credit: wit::Decimal, rates: wit::Rates) -> exported::MinuteQuote {
        let quote = P::minutes_for(decimal_from_wit(credit), &rates_from_wit(rates));
        exported::MinuteQuote {
            basic_minutes: quote.basic_minutes,
            premium_minutes: quote.premium_minutes,
        }
    }
}

/// The capabilities of one call: its accounts, what the call handed over, and
/// the imported interfaces.
struct Host<'a> {
    accounts: Accounts<'a>,
    handed: Option<Handed>,
}

/// The accounts of a call.
enum Accounts<'a> {
    /// Lent with the call.
    Lent {
        subject: &'a Account,
        parent: Option<&'a Account>,
    },
    /// Asked for on first need: a usage call lends none, and deciding that
    /// nothing is to be done needs none. Dropped (and given back) with the call.
    Asked {
        subject: OnceCell<Result<Account, model::Refusal>>,
        parent: OnceCell<Result<Option<Account>, model::Refusal>>,
    },
}

/// The subject's balance and watermark as a usage call hands them over: read
/// from here, they cost no call back to the host.
struct Handed {
    balance: Decimal,
    watermark: Option<Decimal>,
}

impl<'a> Host<'a> {
    fn new(subject: &'a Account, parent: Option<&'a Account>) -> Self {
        Host {
            accounts: Accounts::Lent { subject, parent },
            handed: None,
        }
    }

    fn account(&self, who: Role) -> Result<&Account, model::Refusal> {
        match who {
            Role::Subject => match &self.accounts {
                Accounts::Lent { subject, .. } => Ok(subject),
                Accounts::Asked { subject, .. } => subject
                    .get_or_init(|| balance::current_subject().map_err(refusal_from_wit))
                    .as_ref()
                    .map_err(Clone::clone),
            },
            Role::Parent => match &self.accounts {
                Accounts::Lent { parent, .. } => parent.ok_or(model::Refusal::ForeignAccount),
                Accounts::Asked { parent, .. } => parent
                    .get_or_init(|| balance::current_parent().map_err(refusal_from_wit))
                    .as_ref()
                    .map_err(Clone::clone)?
                    .as_ref()
                    .ok_or(model::Refusal::ForeignAccount),
            },
        }
    }
}

impl Capabilities for Host<'_> {
    fn snapshot(&self, who: Role) -> Result<model::Snapshot, model::Refusal> {
        Ok(snapshot_from_wit(self.account(who)?.snapshot()))
    }

    fn balance(&self, who: Role) -> Result<Decimal, model::Refusal> {
        if let (Role::Subject, Some(handed)) = (who, &self.handed) {
            return Ok(handed.balance);
        }
        Ok(decimal_from_wit(self.account(who)?.balance()))
    }

    fn id(&self, who: Role) -> Result<String, model::Refusal> {
        Ok(self.account(who)?.id())
    }

    fn status(&self, who: Role) -> Result<model::Status, model::Refusal> {
        Ok(status_from_wit(self.account(who)?.status()))
    }

    fn has_card(&self, who: Role, card: &str) -> bool {
        self.account(who)
            .is_ok_and(|account| account.has_card(card))
    }

    fn state(&self, who: Role) -> Vec<u8> {
        self.account(who).map(Account::state).unwrap_or_default()
    }

    fn set_state(&mut self, who: Role, state: Vec<u8>) -> Result<(), model::Refusal> {
        self.account(who)?
            .set_state(&state)
            .map_err(refusal_from_wit)
    }

    fn watermark(&self, who: Role) -> Option<Decimal> {
        if let (Role::Subject, Some(handed)) = (who, &self.handed) {
            return handed.watermark;
        }
        self.account(who)
            .ok()
            .and_then(Account::watermark)
            .map(decimal_from_wit)
    }

    fn set_watermark(
        &mut self,
        who: Role,
        watermark: Option<Decimal>,
    ) -> Result<(), model::Refusal> {
        let watermark = match watermark {
            Some(value) => Some(exact_decimal_to_wit(value).ok_or_else(|| {
                model::Refusal::BadAmount(String::from("watermark: too many digits"))
            })?),
            None => None,
        };
        self.account(who)?
            .set_watermark(watermark)
            .map_err(refusal_from_wit)
    }

    fn set_status(&mut self, who: Role, status: model::Status) -> Result<(), model::Refusal> {
        self.account(who)?
            .set_status(status_to_wit(status))
            .map_err(refusal_from_wit)
    }

    fn now(&self) -> model::Timestamp {
        clock::now()
    }

    fn rates(&self) -> model::Rates {
        rates_from_wit(clock::current_rates())
    }

    fn request_charge(
        &mut self,
        payer: Role,
        card: &str,
        amount: Decimal,
        purpose: model::Purpose,
        key: &str,
    ) -> Result<(), model::Refusal> {
        let payer = self.account(payer)?;
        let amount = exact_decimal_to_wit(amount)
            .ok_or_else(|| model::Refusal::BadAmount(String::from("too many digits")))?;
        let purpose = match purpose {
            model::Purpose::AutoRecharge => wit::Purpose::AutoRecharge,
            model::Purpose::TopUp => wit::Purpose::TopUp,
            model::Purpose::Allocation(bought) => wit::Purpose::Allocation(wit::MinutePurchase {
                beneficiary: bought.beneficiary,
                basic_minutes: bought.basic_minutes,
                premium_minutes: bought.premium_minutes,
            }),
        };
        payment::request_charge(payer, card, amount, &purpose, key).map_err(refusal_from_wit)
    }

    fn wake_at(&mut self, who: Role, at: model::Timestamp, tag: u64) -> Result<(), model::Refusal> {
        clock::wake_me_at(self.account(who)?, at, tag).map_err(refusal_from_wit)
    }

    fn notify(
        &mut self,
        who: Role,
        kind: model::Notice,
        message: &str,
    ) -> Result<(), model::Refusal> {
        let kind = match kind {
            model::Notice::RechargeSucceeded => wit::NoticeKind::RechargeSucceeded,
            model::Notice::RechargeFailed => wit::NoticeKind::RechargeFailed,
            model::Notice::RechargeLimitReached => wit::NoticeKind::RechargeLimitReached,
            model::Notice::AccountPaused => wit::NoticeKind::AccountPaused,
            model::Notice::AccountResumed => wit::NoticeKind::AccountResumed,
            model::Notice::AllocationSucceeded => wit::NoticeKind::AllocationSucceeded,
            model::Notice::AllocationFailed => wit::NoticeKind::AllocationFailed,
            model::Notice::TopUpFailed => wit::NoticeKind::TopUpFailed,
            model::Notice::PaymentActionRequired => wit::NoticeKind::PaymentActionRequired,
            model::Notice::RechargeDeferred => wit::NoticeKind::RechargeDeferred,
        };
        notify::send(self.account(who)?, kind, message).map_err(refusal_from_wit)
    }
}

/// A contract decimal as the core's. A scale beyond 28 (which no sane host
/// sends) keeps the 28 digits that fit, truncating the rest, rather than failing.
fn decimal_from_wit(value: wit::Decimal) -> Decimal {
    if let Some(exact) = money::from_parts(value.mantissa, value.scale) {
        return exact;
    }
    let excess = u32::from(value.scale).saturating_sub(28);
    let mantissa = 10i128
        .checked_pow(excess)
        .map_or(0, |divisor| i128::from(value.mantissa) / divisor);
    Decimal::try_from_i128_with_scale(mantissa, 28).unwrap_or(Decimal::ZERO)
}

/// The core's decimal in the contract's form, when it fits exactly.
fn exact_decimal_to_wit(value: Decimal) -> Option<wit::Decimal> {
    money::to_parts(value).map(|(mantissa, scale)| wit::Decimal { mantissa, scale })
}

/// The core's decimal in the contract's form, dropping trailing decimal places
/// (then saturating) when the mantissa does not fit 64 bits.
fn decimal_to_wit(value: Decimal) -> wit::Decimal {
    let mut value = value;
    loop {
        if let Some(exact) = exact_decimal_to_wit(value) {
            return exact;
        }
        if value.scale() == 0 {
            let mantissa = if value.is_sign_negative() {
                i64::MIN
            } else {
                i64::MAX
            };
            return wit::Decimal { mantissa, scale: 0 };
        }
        value = value.round_dp(value.scale() - 1);
    }
}

fn rates_from_wit(rates: wit::Rates) -> model::Rates {
    model::Rates {
        basic: decimal_from_wit(rates.basic),
        premium: decimal_from_wit(rates.premium),
    }
}

fn status_to_wit(status: model::Status) -> wit::AccountStatus {
    match status {
        model::Status::Active => wit::AccountStatus::Active,
        model::Status::Paused => wit::AccountStatus::Paused,
    }
}

fn snapshot_from_wit(snapshot: wit::AccountSnapshot) -> model::Snapshot {
    model::Snapshot {
        id: snapshot.id,
        kind: match snapshot.kind {
            wit::AccountKind::User => model::AccountKind::User,
            wit::AccountKind::Agency => model::AccountKind::Agency,
            wit::AccountKind::SubAccount => model::AccountKind::SubAccount,
        },
        parent: snapshot.parent,
        balance: decimal_from_wit(snapshot.balance),
        included_basic_seconds: snapshot.included_basic_seconds,
        included_premium_seconds: snapshot.included_premium_seconds,
        basic_seconds: snapshot.basic_seconds,
        premium_seconds: snapshot.premium_seconds,
        status: status_from_wit(snapshot.status),
    }
}

fn status_from_wit(status: wit::AccountStatus) -> model::Status {
    match status {
        wit::AccountStatus::Active => model::Status::Active,
        wit::AccountStatus::Paused => model::Status::Paused,
    }
}

fn snapshot_to_wit(snapshot: model::Snapshot) -> wit::AccountSnapshot {
    wit::AccountSnapshot {
        id: snapshot.id,
        kind: match snapshot.kind {
            model::AccountKind::User => wit::AccountKind::User,
            model::AccountKind::Agency => wit::AccountKind::Agency,
            model::AccountKind::SubAccount => wit::AccountKind::SubAccount,
        },
        parent: snapshot.parent,
        balance: decimal_to_wit(snapshot.balance),
        included_basic_seconds: snapshot.included_basic_seconds,
        included_premium_seconds: snapshot.included_premium_seconds,
        basic_seconds: snapshot.basic_seconds,
        premium_seconds: snapshot.premium_seconds,
        status: status_to_wit(snapshot.status),
    }
}

fn auto_recharge_from_wit(settings: wit::AutoRechargeSettings) -> model::AutoRechargeSettings {
    model::AutoRechargeSettings {
        enabled: settings.enabled,
        threshold: decimal_from_wit(settings.threshold),
        amount: decimal_from_wit(settings.amount),
        card: settings.card,
        mode: match settings.mode {
            wit::RechargeMode::Fixed => model::Mode::Fixed,
            wit::RechargeMode::Target => model::Mode::Target,
        },
        monthly_limit: settings.monthly_limit.map(decimal_from_wit),
    }
}

fn auto_recharge_to_wit(settings: model::AutoRechargeSettings) -> wit::AutoRechargeSettings {
    wit::AutoRechargeSettings {
        enabled: settings.enabled,
        threshold: decimal_to_wit(settings.threshold),
        amount: decimal_to_wit(settings.amount),
        card: settings.card,
        mode: match settings.mode {
            model::Mode::Fixed => wit::RechargeMode::Fixed,
            model::Mode::Target => wit::RechargeMode::Target,
        },
        monthly_limit: settings.monthly_limit.map(decimal_to_wit),
    }
}

fn allocation_from_wit(settings: wit::AllocationSettings) -> model::AllocationSettings {
    model::AllocationSettings {
        basic_minutes: settings.basic_minutes,
        premium_minutes: settings.premium_minutes,
        card: settings.card,
    }
}

fn allocation_to_wit(settings: model::AllocationSettings) -> wit::AllocationSettings {
    wit::AllocationSettings {
        basic_minutes: settings.basic_minutes,
        premium_minutes: settings.premium_minutes,
        card: settings.card,
    }
}

fn event_from_wit(event: exported::Event) -> model::Event {
    match event {
        exported::Event::SaveAutoRecharge(request) => model::Event::SaveAutoRecharge {
            actor: request.actor,
            settings: auto_recharge_from_wit(request.settings),
        },
        exported::Event::SaveAllocation(request) => model::Event::SaveAllocation {
            actor: request.actor,
            settings: allocation_from_wit(request.settings),
        },
        exported::Event::TopUp(request) => model::Event::TopUp {
            actor: request.actor,
            card: request.card,
            amount: decimal_from_wit(request.amount),
        },
        exported::Event::CardUpdated(card) => model::Event::CardUpdated(card),
        exported::Event::PaymentOutcome(outcome) => {
            model::Event::PaymentOutcome(model::PaymentOutcome {
                key: outcome.key,
                outcome: match outcome.outcome {
                    wit::ChargeOutcome::Succeeded => model::ChargeOutcome::Succeeded,
                    wit::ChargeOutcome::Declined => model::ChargeOutcome::Declined,
                    wit::ChargeOutcome::Failed => model::ChargeOutcome::Failed,
                    wit::ChargeOutcome::RequiresAction => model::ChargeOutcome::RequiresAction,
                },
                amount: decimal_from_wit(outcome.amount),
                purpose: match outcome.purpose {
                    wit::Purpose::AutoRecharge => model::Purpose::AutoRecharge,
                    wit::Purpose::TopUp => model::Purpose::TopUp,
                    wit::Purpose::Allocation(bought) => {
                        model::Purpose::Allocation(model::MinutePurchase {
                            beneficiary: bought.beneficiary,
                            basic_minutes: bought.basic_minutes,
                            premium_minutes: bought.premium_minutes,
                        })
                    }
                },
                payer: outcome.payer,
                reference: outcome.reference,
                reason: outcome.reason,
            })
        }
        exported::Event::Timer(tag) => model::Event::Timer(tag),
    }
}

fn refusal_from_wit(refusal: wit::Refusal) -> model::Refusal {
    match refusal {
        wit::Refusal::ForeignAccount => model::Refusal::ForeignAccount,
        wit::Refusal::UnknownCard => model::Refusal::UnknownCard,
        wit::Refusal::BadAmount(why) => model::Refusal::BadAmount(why),
        wit::Refusal::PriceMismatch => model::Refusal::PriceMismatch,
        wit::Refusal::TooManyCharges => model::Refusal::TooManyCharges,
        wit::Refusal::DuplicateKey => model::Refusal::DuplicateKey,
        wit::Refusal::Invalid(why) => model::Refusal::Invalid(why),
    }
}

fn error_to_wit(error: model::PolicyError) -> exported::PolicyError {
    match error {
        model::PolicyError::Forbidden(why) => exported::PolicyError::Forbidden(why),
        model::PolicyError::InvalidSettings(why) => exported::PolicyError::InvalidSettings(why),
        model::PolicyError::PaymentMethodRequired(why) => {
            exported::PolicyError::PaymentMethodRequired(why)
        }
        model::PolicyError::Refused(why) => exported::PolicyError::Refused(why),
    }
}
