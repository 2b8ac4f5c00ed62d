// What every version of the contract needs on the host side, written once and
// included (`include!`) in each version's module (`v0_1`, `v0_2`), where `wit`,
// `exported` and the generated `recharge::policy` interfaces are that version's.
// Beside the inclusion each version module defines what differs between
// versions: `POLICY_EXPORT`, `outcome`, `notice` and `payment_outcome`.
//
// Conversions between the generated WIT types and the policy core's model:
// decimals from a policy are untrusted (a scale over 28 is refused, never a
// panic). Then the host's imports (the capabilities of `EventContext`, reached
// through account handles that name roles), and the calls into the exports.

use recharge_policy_sdk::caps::{Capabilities, Role};
use recharge_policy_sdk::model::{
    AccountKind, AccountView, AllocationSettings, AllocationView, Answer, AutoRechargeSettings,
    Event, MinutePurchase, MinuteType, Mode, PolicyError, Purpose, QueryKind, Rates, Refusal,
    Snapshot, Status,
};
use recharge_policy_sdk::money::{from_parts, to_parts};
use rust_decimal::Decimal;
use wasmtime::component::{
    ComponentExportIndex, HasSelf, InstancePre, Linker, Resource, TypedFunc,
};

use self::recharge::policy::{balance, clock, notify, payment, types};
use super::{Contract, UsageCall};
use crate::sandbox::convert::Malformed;
use crate::sandbox::{SandboxState, Warm, handles, role};

type AccountHandle = Resource<balance::Account>;

/// Where a component's exports are, found once per component.
pub struct Exports {
    /// Every export of the contract, for the generated bindings.
    all: RechargePolicyIndices,
    /// The usage export alone: the hot path looks up and type-checks only it.
    usage: ComponentExportIndex,
}

/// The usage export's signature.
type UsageFunc = TypedFunc<(exported::RatedCall,), (Result<(), exported::PolicyError>,)>;

/// An instance's exports, looked up and type-checked on first use: a fresh
/// sandbox per usage event checks the one function it calls, not the whole
/// contract.
#[derive(Default)]
pub struct Bound {
    // Boxed: the bindings of every export are a few hundred bytes, and an
    // instance moves in and out of the warm pool on every call.
    bindings: Option<Box<RechargePolicy>>,
    usage: Option<UsageFunc>,
}

/// Call `call` with the generated bindings of the policy export, loaded (and
/// type-checked) on first use.
fn with_policy<R>(
    warm: &mut Warm<Bound>,
    exports: &Exports,
    call: impl FnOnce(&exported::Guest, &mut wasmtime::Store<SandboxState>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let bindings = match &mut warm.bound.bindings {
        Some(bindings) => bindings,
        unloaded @ None => {
            let bindings = exports.all.load(&mut warm.store, &warm.instance)?;
            unloaded.insert(Box::new(bindings))
        }
    };
    call(bindings.recharge_policy_policy(), &mut warm.store)
}

/// A value that does not cross the boundary, as the error a call fails with.
fn malformed(error: Malformed) -> wasmtime::Error {
    wasmtime::Error::new(error)
}

impl Contract for Binding {
    type Exports = Exports;
    type Bound = Bound;

    fn add_to_linker(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
        RechargePolicy::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
    }

    fn exports(pre: &InstancePre<SandboxState>) -> wasmtime::Result<Exports> {
        let all = RechargePolicyIndices::new(pre)?;
        let component = pre.component();
        let usage = component
            .get_export_index(None, POLICY_EXPORT)
            .and_then(|policy| component.get_export_index(Some(&policy), "usage"))
            .ok_or_else(|| wasmtime::Error::msg(format!("no `usage` in `{POLICY_EXPORT}`")))?;
        Ok(Exports { all, usage })
    }

    fn usage(
        warm: &mut Warm<Bound>,
        exports: &Exports,
        call: UsageCall<'_>,
    ) -> wasmtime::Result<Result<(), PolicyError>> {
        let call = rated_call(call).map_err(malformed)?;
        let usage = match warm.bound.usage {
            Some(usage) => usage,
            None => {
                let usage = warm
                    .instance
                    .get_typed_func(&mut warm.store, exports.usage)?;
                *warm.bound.usage.insert(usage)
            }
        };
        let (result,) = usage.call(&mut warm.store, (call,))?;
        Ok(result.map_err(from_policy_error))
    }

    fn handle(
        warm: &mut Warm<Bound>,
        exports: &Exports,
        event: &Event,
        has_parent: bool,
    ) -> wasmtime::Result<Result<(), PolicyError>> {
        let event = self::event(event).map_err(malformed)?;
        let (subject, parent) = handles(has_parent);
        let result = with_policy(warm, exports, |policy, store| {
            policy.call_handle(store, &event, subject, parent)
        })?;
        Ok(result.map_err(from_policy_error))
    }

    fn query(
        warm: &mut Warm<Bound>,
        exports: &Exports,
        actor: &str,
        what: QueryKind,
        has_parent: bool,
    ) -> wasmtime::Result<Result<Answer, PolicyError>> {
        let (subject, parent) = handles(has_parent);
        let result = with_policy(warm, exports, |policy, store| {
            policy.call_query(store, actor, query_kind(what), subject, parent)
        })?;
        match result {
            Ok(answer) => from_answer(answer).map(Ok).map_err(malformed),
            Err(error) => Ok(Err(from_policy_error(error))),
        }
    }

    fn describe(warm: &mut Warm<Bound>, exports: &Exports) -> wasmtime::Result<AccountView> {
        let (subject, _) = handles(false);
        let view = with_policy(warm, exports, |policy, store| {
            policy.call_describe(store, subject)
        })?;
        from_view(view).map_err(malformed)
    }
}

// Conversions -------------------------------------------------------------------

/// A decimal for the contract; money beyond 64-bit mantissas is clamped to its
/// scale-reduced form and refused if it still does not fit.
fn decimal(value: Decimal) -> Result<wit::Decimal, Malformed> {
    let parts = to_parts(value).or_else(|| to_parts(value.normalize()));
    parts
        .map(|(mantissa, scale)| wit::Decimal { mantissa, scale })
        .ok_or_else(|| Malformed(format!("{value} does not fit a 64-bit mantissa")))
}

/// A decimal for the contract, or zero where there is no way to say it fails.
fn decimal_or_zero(value: Decimal) -> wit::Decimal {
    decimal(value).unwrap_or(wit::Decimal {
        mantissa: 0,
        scale: 0,
    })
}

/// A decimal from the contract.
fn from_decimal(value: wit::Decimal) -> Result<Decimal, Malformed> {
    from_parts(value.mantissa, value.scale)
        .ok_or_else(|| Malformed(format!("decimal scale {} is over 28", value.scale)))
}

fn rates(rates: &Rates) -> Result<wit::Rates, Malformed> {
    Ok(wit::Rates {
        basic: decimal(rates.basic)?,
        premium: decimal(rates.premium)?,
    })
}

fn kind(kind: AccountKind) -> wit::AccountKind {
    match kind {
        AccountKind::User => wit::AccountKind::User,
        AccountKind::Agency => wit::AccountKind::Agency,
        AccountKind::SubAccount => wit::AccountKind::SubAccount,
    }
}

fn status(status: Status) -> wit::AccountStatus {
    match status {
        Status::Active => wit::AccountStatus::Active,
        Status::Paused => wit::AccountStatus::Paused,
    }
}

fn from_status(status: wit::AccountStatus) -> Status {
    match status {
        wit::AccountStatus::Active => Status::Active,
        wit::AccountStatus::Paused => Status::Paused,
    }
}

fn snapshot(snapshot: &Snapshot) -> Result<wit::AccountSnapshot, Malformed> {
    Ok(wit::AccountSnapshot {
        id: snapshot.id.clone(),
        kind: kind(snapshot.kind),
        parent: snapshot.parent.clone(),
        balance: decimal(snapshot.balance)?,
        included_basic_seconds: snapshot.included_basic_seconds,
        included_premium_seconds: snapshot.included_premium_seconds,
        basic_seconds: snapshot.basic_seconds,
        premium_seconds: snapshot.premium_seconds,
        status: status(snapshot.status),
    })
}

fn from_kind(kind: wit::AccountKind) -> AccountKind {
    match kind {
        wit::AccountKind::User => AccountKind::User,
        wit::AccountKind::Agency => AccountKind::Agency,
        wit::AccountKind::SubAccount => AccountKind::SubAccount,
    }
}

fn from_snapshot(snapshot: wit::AccountSnapshot) -> Result<Snapshot, Malformed> {
    Ok(Snapshot {
        id: snapshot.id,
        kind: from_kind(snapshot.kind),
        parent: snapshot.parent,
        balance: from_decimal(snapshot.balance)?,
        included_basic_seconds: snapshot.included_basic_seconds,
        included_premium_seconds: snapshot.included_premium_seconds,
        basic_seconds: snapshot.basic_seconds,
        premium_seconds: snapshot.premium_seconds,
        status: from_status(snapshot.status),
    })
}

fn minute_type(minute_type: MinuteType) -> wit::MinuteType {
    match minute_type {
        MinuteType::Basic => wit::MinuteType::Basic,
        MinuteType::Premium => wit::MinuteType::Premium,
    }
}

fn settings(settings: &AutoRechargeSettings) -> Result<wit::AutoRechargeSettings, Malformed> {
    Ok(wit::AutoRechargeSettings {
        enabled: settings.enabled,
        threshold: decimal(settings.threshold)?,
        amount: decimal(settings.amount)?,
        card: settings.card.clone(),
        mode: match settings.mode {
            Mode::Fixed => wit::RechargeMode::Fixed,
            Mode::Target => wit::RechargeMode::Target,
        },
        monthly_limit: settings.monthly_limit.map(decimal).transpose()?,
    })
}

fn from_settings(settings: wit::AutoRechargeSettings) -> Result<AutoRechargeSettings, Malformed> {
    Ok(AutoRechargeSettings {
        enabled: settings.enabled,
        threshold: from_decimal(settings.threshold)?,
        amount: from_decimal(settings.amount)?,
        card: settings.card,
        mode: match settings.mode {
            wit::RechargeMode::Fixed => Mode::Fixed,
            wit::RechargeMode::Target => Mode::Target,
        },
        monthly_limit: settings.monthly_limit.map(from_decimal).transpose()?,
    })
}

fn allocation(settings: &AllocationSettings) -> wit::AllocationSettings {
    wit::AllocationSettings {
        basic_minutes: settings.basic_minutes,
        premium_minutes: settings.premium_minutes,
        card: settings.card.clone(),
    }
}

fn from_allocation(settings: wit::AllocationSettings) -> AllocationSettings {
    AllocationSettings {
        basic_minutes: settings.basic_minutes,
        premium_minutes: settings.premium_minutes,
        card: settings.card,
    }
}

fn purpose(purpose: &Purpose) -> wit::Purpose {
    match purpose {
        Purpose::AutoRecharge => wit::Purpose::AutoRecharge,
        Purpose::TopUp => wit::Purpose::TopUp,
        Purpose::Allocation(purchase) => wit::Purpose::Allocation(wit::MinutePurchase {
            beneficiary: purchase.beneficiary.clone(),
            basic_minutes: purchase.basic_minutes,
            premium_minutes: purchase.premium_minutes,
        }),
    }
}

fn from_purpose(purpose: wit::Purpose) -> Purpose {
    match purpose {
        wit::Purpose::AutoRecharge => Purpose::AutoRecharge,
        wit::Purpose::TopUp => Purpose::TopUp,
        wit::Purpose::Allocation(purchase) => Purpose::Allocation(MinutePurchase {
            beneficiary: purchase.beneficiary,
            basic_minutes: purchase.basic_minutes,
            premium_minutes: purchase.premium_minutes,
        }),
    }
}

fn refusal(refusal: Refusal) -> wit::Refusal {
    match refusal {
        Refusal::ForeignAccount => wit::Refusal::ForeignAccount,
        Refusal::UnknownCard => wit::Refusal::UnknownCard,
        Refusal::BadAmount(why) => wit::Refusal::BadAmount(why),
        Refusal::PriceMismatch => wit::Refusal::PriceMismatch,
        Refusal::TooManyCharges => wit::Refusal::TooManyCharges,
        Refusal::DuplicateKey => wit::Refusal::DuplicateKey,
        Refusal::Invalid(why) => wit::Refusal::Invalid(why),
    }
}

/// A usage event as the contract's flat `rated-call`, with the subject's balance
/// and watermark handed over with it.
fn rated_call(call: UsageCall<'_>) -> Result<exported::RatedCall, Malformed> {
    Ok(exported::RatedCall {
        seconds: call.usage.seconds,
        minute_type: minute_type(call.usage.minute_type),
        wallet_cost: decimal(call.usage.wallet_cost)?,
        balance: decimal(call.balance)?,
        watermark: call.watermark.map(decimal).transpose()?,
        has_parent: call.has_parent,
    })
}

/// Any other event in the contract's form (usage goes through [`rated_call`]).
fn event(event: &Event) -> Result<exported::Event, Malformed> {
    Ok(match event {
        Event::Usage(_) => {
            return Err(Malformed(String::from(
                "a usage event goes through the policy's usage export",
            )));
        }
        Event::SaveAutoRecharge {
            actor,
            settings: saved,
        } => exported::Event::SaveAutoRecharge(exported::AutoRechargeRequest {
            actor: actor.clone(),
            settings: settings(saved)?,
        }),
        Event::SaveAllocation {
            actor,
            settings: saved,
        } => exported::Event::SaveAllocation(exported::AllocationRequest {
            actor: actor.clone(),
            settings: allocation(saved),
        }),
        Event::TopUp {
            actor,
            card,
            amount,
        } => exported::Event::TopUp(exported::TopUpRequest {
            actor: actor.clone(),
            card: card.clone(),
            amount: decimal(*amount)?,
        }),
        Event::CardUpdated(card) => exported::Event::CardUpdated(card.clone()),
        Event::PaymentOutcome(result) => exported::Event::PaymentOutcome(payment_outcome(result)?),
        Event::Timer(tag) => exported::Event::Timer(*tag),
    })
}

fn query_kind(what: QueryKind) -> exported::QueryKind {
    match what {
        QueryKind::AutoRecharge => exported::QueryKind::AutoRecharge,
        QueryKind::Estimate => exported::QueryKind::Estimate,
        QueryKind::Service => exported::QueryKind::Service,
        QueryKind::Balance => exported::QueryKind::Balance,
    }
}

fn from_answer(answer: exported::Answer) -> Result<Answer, Malformed> {
    Ok(match answer {
        exported::Answer::AutoRecharge(saved) => {
            Answer::AutoRecharge(saved.map(from_settings).transpose()?)
        }
        exported::Answer::Estimate(value) => Answer::Estimate(from_decimal(value)?),
        exported::Answer::Service(can_call) => Answer::Service(can_call),
        exported::Answer::Balance(snapshot) => Answer::Balance(from_snapshot(snapshot)?),
    })
}

fn from_policy_error(error: exported::PolicyError) -> PolicyError {
    match error {
        exported::PolicyError::Forbidden(why) => PolicyError::Forbidden(why),
        exported::PolicyError::InvalidSettings(why) => PolicyError::InvalidSettings(why),
        exported::PolicyError::PaymentMethodRequired(why) => {
            PolicyError::PaymentMethodRequired(why)
        }
        exported::PolicyError::Refused(why) => PolicyError::Refused(why),
    }
}

fn from_view(view: wit::AccountView) -> Result<AccountView, Malformed> {
    Ok(AccountView {
        auto_recharge: view.auto_recharge.map(from_settings).transpose()?,
        allocation: view.allocation.map(|running| AllocationView {
            settings: from_allocation(running.settings),
            next_run: running.next_run,
        }),
    })
}

// The host's imports ------------------------------------------------------------

impl types::Host for SandboxState {}

impl balance::Host for SandboxState {
    fn current_subject(&mut self) -> Result<AccountHandle, wit::Refusal> {
        self.lend(Role::Subject).map_err(refusal)
    }

    fn current_parent(&mut self) -> Result<Option<AccountHandle>, wit::Refusal> {
        if !self.ctx.has_parent() {
            return Ok(None);
        }
        self.lend(Role::Parent).map(Some).map_err(refusal)
    }
}

impl balance::HostAccount for SandboxState {
    fn id(&mut self, account: AccountHandle) -> String {
        self.account(&account)
            .map(|account| account.id.0.clone())
            .unwrap_or_default()
    }

    fn kind(&mut self, account: AccountHandle) -> wit::AccountKind {
        self.account(&account)
            .map(|account| kind(account.kind))
            .unwrap_or(wit::AccountKind::User)
    }

    fn parent(&mut self, account: AccountHandle) -> Option<String> {
        self.account(&account)
            .and_then(|account| account.parent.as_ref())
            .map(|parent| parent.0.clone())
    }

    fn balance(&mut self, account: AccountHandle) -> wit::Decimal {
        let balance = self
            .account(&account)
            .map(|account| account.balance)
            .unwrap_or_default();
        decimal_or_zero(balance)
    }

    fn status(&mut self, account: AccountHandle) -> wit::AccountStatus {
        self.account(&account)
            .map(|account| status(account.status))
            .unwrap_or(wit::AccountStatus::Paused)
    }

    fn snapshot(&mut self, account: AccountHandle) -> wit::AccountSnapshot {
        let snapshot = self.view(&account);
        snapshot
            .and_then(|snapshot| self::snapshot(&snapshot).ok())
            .unwrap_or_else(|| wit::AccountSnapshot {
                id: String::new(),
                kind: wit::AccountKind::User,
                parent: None,
                balance: decimal_or_zero(Decimal::ZERO),
                included_basic_seconds: 0,
                included_premium_seconds: 0,
                basic_seconds: 0,
                premium_seconds: 0,
                status: wit::AccountStatus::Paused,
            })
    }

    fn set_status(
        &mut self,
        account: AccountHandle,
        status: wit::AccountStatus,
    ) -> Result<(), wit::Refusal> {
        let who = role(&account).ok_or(wit::Refusal::ForeignAccount)?;
        self.ctx
            .set_status(who, from_status(status))
            .map_err(refusal)
    }

    fn cards(&mut self, account: AccountHandle) -> Vec<String> {
        self.account(&account)
            .map(|account| account.cards.clone())
            .unwrap_or_default()
    }

    fn has_card(&mut self, account: AccountHandle, card: String) -> bool {
        role(&account).is_some_and(|who| self.ctx.has_card(who, &card))
    }

    fn state(&mut self, account: AccountHandle) -> Vec<u8> {
        role(&account)
            .map(|who| self.ctx.state(who))
            .unwrap_or_default()
    }

    fn set_state(&mut self, account: AccountHandle, state: Vec<u8>) -> Result<(), wit::Refusal> {
        let who = role(&account).ok_or(wit::Refusal::ForeignAccount)?;
        self.ctx.set_state(who, state).map_err(refusal)
    }

    fn watermark(&mut self, account: AccountHandle) -> Option<wit::Decimal> {
        let who = role(&account)?;
        self.ctx
            .watermark(who)
            .and_then(|watermark| decimal(watermark).ok())
    }

    fn set_watermark(
        &mut self,
        account: AccountHandle,
        watermark: Option<wit::Decimal>,
    ) -> Result<(), wit::Refusal> {
        let who = role(&account).ok_or(wit::Refusal::ForeignAccount)?;
        let watermark = watermark
            .map(from_decimal)
            .transpose()
            .map_err(|err| wit::Refusal::Invalid(format!("watermark: {}", err.0)))?;
        self.ctx.set_watermark(who, watermark).map_err(refusal)
    }

    fn drop(&mut self, account: AccountHandle) -> wasmtime::Result<()> {
        // A handle names a role in the call, not an account: nothing to free
        // but the allowance of a handle `lend` handed out.
        self.give_back_handle(account.owned());
        Ok(())
    }
}

impl payment::Host for SandboxState {
    fn request_charge(
        &mut self,
        payer: AccountHandle,
        card: String,
        amount: wit::Decimal,
        purpose: wit::Purpose,
        key: String,
    ) -> Result<(), wit::Refusal> {
        let who = role(&payer).ok_or(wit::Refusal::ForeignAccount)?;
        let amount = from_decimal(amount).map_err(|err| refusal(Refusal::BadAmount(err.0)))?;
        self.ctx
            .request_charge(who, &card, amount, from_purpose(purpose), &key)
            .map_err(refusal)
    }
}

impl clock::Host for SandboxState {
    fn now(&mut self) -> wit::Timestamp {
        self.ctx.now()
    }

    fn current_rates(&mut self) -> wit::Rates {
        let current = Capabilities::rates(&self.ctx);
        rates(&current).unwrap_or(wit::Rates {
            basic: decimal_or_zero(Decimal::ZERO),
            premium: decimal_or_zero(Decimal::ZERO),
        })
    }

    fn wake_me_at(
        &mut self,
        account: AccountHandle,
        at: wit::Timestamp,
        tag: u64,
    ) -> Result<(), wit::Refusal> {
        let who = role(&account).ok_or(wit::Refusal::ForeignAccount)?;
        self.ctx.wake_at(who, at, tag).map_err(refusal)
    }
}

impl notify::Host for SandboxState {
    fn send(
        &mut self,
        account: AccountHandle,
        kind: wit::NoticeKind,
        message: String,
    ) -> Result<(), wit::Refusal> {
        let who = role(&account).ok_or(wit::Refusal::ForeignAccount)?;
        self.ctx
            .notify(who, notice(kind), &message)
            .map_err(refusal)
    }
}
