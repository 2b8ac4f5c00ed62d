//! The sandbox: a policy component run under wasmtime with fuel, an epoch
//! deadline, bounded memory, tables and stack (H5), a fresh pooled instance per
//! call, and the host's capabilities as its only imports (H1).

mod bindings;
mod convert;
mod engine;

use std::sync::{Arc, Mutex};

use recharge_policy_sdk::caps::{Capabilities, Role};
use recharge_policy_sdk::model::{AccountView, Answer, Event, QueryKind, Refusal};
use wasmtime::component::{ComponentExportIndex, Instance, InstancePre, Resource, TypedFunc};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, Trap};

use self::bindings::v0_1::recharge::policy::{balance, clock, notify, payment, types};
use self::bindings::v0_1::{RechargePolicy, RechargePolicyIndices, exported, wit};
use self::convert::Malformed;
use crate::capabilities::EventContext;
use crate::policy::{Policy, PolicyFault, Verdict};

pub(crate) use self::engine::short_hash;
pub use self::engine::{Interfaces, Limits, LoadError, PolicyEngine, Profile};

type AccountHandle = Resource<balance::Account>;

/// The name of the contract's export interface.
const POLICY_EXPORT: &str = "recharge:policy/policy@0.1.0";

/// What a sandboxed call can reach: the event's context and the store's limits.
pub struct SandboxState {
    ctx: EventContext,
    limits: StoreLimits,
    /// Account handles handed out by `current-subject` and `current-parent` and
    /// not dropped yet.
    lent: u32,
}

/// Account handles a call may hold from `current-subject` and `current-parent`
/// at once: a policy needs two, and each one costs the host an entry in the
/// instance's handle table.
const MAX_LENT_HANDLES: u32 = 8;

/// A policy component, compiled and linked, ready to instantiate.
///
/// Calls run on warm instances by default: an instance that returned normally
/// goes back to a small pool for the next call, with fresh fuel and a fresh
/// deadline; one that faulted is dropped. [`Limits::fresh_instance_per_call`]
/// instantiates anew for every call instead.
#[derive(Clone)]
pub struct WasmPolicy {
    engine: PolicyEngine,
    pre: InstancePre<SandboxState>,
    exports: Arc<Exports>,
    name: String,
    /// What each call may use.
    budget: Arc<Budget>,
    warm: Arc<Mutex<Vec<Warm>>>,
}

/// A policy's profile as its calls use it: the deadline in epoch ticks, worked
/// out once.
struct Budget {
    profile: Profile,
    deadline_ticks: u64,
}

/// Where the policy's exports are, found once per component.
struct Exports {
    /// Every export of the contract, for the generated bindings.
    all: RechargePolicyIndices,
    /// The usage export alone: the hot path looks up and type-checks only it.
    usage: ComponentExportIndex,
}

/// The usage export's signature.
type UsageFunc = TypedFunc<(exported::RatedCall,), (Result<(), exported::PolicyError>,)>;

/// An instantiated policy with its store, between calls. Its exports are looked
/// up and type-checked on first use: a fresh sandbox per usage event checks the
/// one function it calls, not the whole contract.
struct Warm {
    store: Store<SandboxState>,
    instance: Instance,
    // Boxed: the bindings of every export are a few hundred bytes, and an
    // instance moves in and out of the warm pool on every call.
    bindings: Option<Box<RechargePolicy>>,
    usage: Option<UsageFunc>,
}

impl Warm {
    /// Call `call` with the generated bindings of the policy export, loaded
    /// (and type-checked) on first use.
    fn with_policy<R>(
        &mut self,
        exports: &Exports,
        call: impl FnOnce(&exported::Guest, &mut Store<SandboxState>) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        let bindings = match &mut self.bindings {
            Some(bindings) => bindings,
            unloaded @ None => {
                let bindings = exports.all.load(&mut self.store, &self.instance)?;
                unloaded.insert(Box::new(bindings))
            }
        };
        call(bindings.recharge_policy_policy(), &mut self.store)
    }

    /// The usage export.
    fn usage(&mut self, exports: &Exports) -> wasmtime::Result<UsageFunc> {
        if let Some(usage) = self.usage {
            return Ok(usage);
        }
        let usage = self
            .instance
            .get_typed_func(&mut self.store, exports.usage)?;
        self.usage = Some(usage);
        Ok(usage)
    }
}

/// Warm instances kept per policy.
const WARM_INSTANCES: usize = 2;

impl std::fmt::Debug for WasmPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPolicy")
            .field("name", &self.name)
            .finish()
    }
}

impl WasmPolicy {
    /// A policy over a linked component, after checking it exports the whole
    /// contract.
    pub(crate) fn new(
        engine: PolicyEngine,
        pre: InstancePre<SandboxState>,
        name: String,
        profile: Profile,
    ) -> wasmtime::Result<Self> {
        let all = RechargePolicyIndices::new(&pre)?;
        let component = pre.component();
        let usage = component
            .get_export_index(None, POLICY_EXPORT)
            .and_then(|policy| component.get_export_index(Some(&policy), "usage"))
            .ok_or_else(|| wasmtime::Error::msg(format!("no `usage` in `{POLICY_EXPORT}`")))?;
        Ok(WasmPolicy {
            engine,
            pre,
            exports: Arc::new(Exports { all, usage }),
            name,
            budget: Arc::new(Budget {
                deadline_ticks: engine::deadline_ticks(profile.deadline),
                profile,
            }),
            warm: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The limits this policy's calls run under.
    pub fn profile(&self) -> &Profile {
        &self.budget.profile
    }

    /// A new store with the memory, table and instance limits, and an instance in it.
    fn instantiate(&self) -> Result<Warm, PolicyFault> {
        let budget = &self.budget;
        let state = SandboxState {
            ctx: EventContext::default(),
            lent: 0,
            limits: StoreLimitsBuilder::new()
                .memory_size(budget.profile.memory_bytes)
                .table_elements(self.engine.limits().table_elements)
                .instances(budget.profile.instances)
                .tables(budget.profile.instances)
                .memories(budget.profile.instances / 4)
                .build(),
        };
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        // Instantiation runs the component's start code: it gets the same budget.
        store
            .set_fuel(budget.profile.fuel)
            .map_err(|err| PolicyFault::Instantiate(format!("{err:#}")))?;
        store.set_epoch_deadline(budget.deadline_ticks);
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|err| match fault(err) {
                PolicyFault::Trap(why) => PolicyFault::Instantiate(why),
                other => other,
            })?;
        Ok(Warm {
            store,
            instance,
            bindings: None,
            usage: None,
        })
    }

    fn take_warm(&self) -> Option<Warm> {
        if self.engine.limits().fresh_instance_per_call {
            return None;
        }
        self.warm.lock().ok()?.pop()
    }

    fn give_back(&self, warm: Warm) {
        if self.engine.limits().fresh_instance_per_call {
            return;
        }
        if let Ok(mut pool) = self.warm.lock()
            && pool.len() < WARM_INSTANCES
        {
            pool.push(warm);
        }
    }

    /// Run `call` with the context lent to the instance, under fresh fuel and a
    /// fresh deadline. The instance is reused only if the call returned normally.
    fn sandboxed<R>(
        &self,
        ctx: &mut EventContext,
        call: impl FnOnce(&mut Warm, &Exports) -> wasmtime::Result<R>,
    ) -> Result<R, PolicyFault> {
        let budget = &self.budget;
        let mut warm = match self.take_warm() {
            Some(warm) => warm,
            None => self.instantiate()?,
        };
        // Lend the context by swapping it with the placeholder the store keeps:
        // no allocation on the way in or out.
        std::mem::swap(ctx, &mut warm.store.data_mut().ctx);
        let outcome = warm.store.set_fuel(budget.profile.fuel).and_then(|()| {
            warm.store.set_epoch_deadline(budget.deadline_ticks);
            call(&mut warm, &self.exports)
        });
        let fuel_left = warm.store.get_fuel().unwrap_or(0);
        std::mem::swap(ctx, &mut warm.store.data_mut().ctx);
        ctx.fuel_used = budget.profile.fuel.saturating_sub(fuel_left);
        match outcome {
            Ok(result) => {
                // An instance still holding account handles is not reused: its
                // handle table would only grow from call to call.
                if warm.store.data().lent == 0 {
                    self.give_back(warm);
                }
                Ok(result)
            }
            Err(error) => Err(fault(error)),
        }
    }
}

fn fault(error: wasmtime::Error) -> PolicyFault {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => PolicyFault::OutOfFuel,
        Some(Trap::Interrupt) => PolicyFault::Deadline,
        Some(trap) => PolicyFault::Trap(trap.to_string()),
        None => match error.downcast_ref::<Malformed>() {
            Some(malformed) => PolicyFault::Malformed(malformed.0.clone()),
            None => PolicyFault::Trap(format!("{error:#}")),
        },
    }
}

/// The representation of a handle on the call's subject: handles name roles,
/// never accounts.
const SUBJECT_REP: u32 = 0;
/// The representation of a handle on the subject's parent agency.
const PARENT_REP: u32 = 1;

fn handles(ctx: &EventContext) -> (AccountHandle, Option<AccountHandle>) {
    let parent = ctx.has_parent().then(|| Resource::new_borrow(PARENT_REP));
    (Resource::new_borrow(SUBJECT_REP), parent)
}

impl Policy for WasmPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle(&self, event: &Event, ctx: &mut EventContext) -> Verdict<()> {
        let result = if let Event::Usage(usage) = event {
            // The hot path: flat arguments with the balance and the watermark,
            // and no account lent unless the policy asks for it.
            let balance = Capabilities::balance(&*ctx, Role::Subject).unwrap_or_default();
            let watermark = ctx.watermark(Role::Subject);
            let call = convert::rated_call(usage, balance, watermark, ctx.has_parent())
                .map_err(|err| PolicyFault::Malformed(err.0))?;
            self.sandboxed(ctx, |warm, exports| {
                let usage = warm.usage(exports)?;
                let (result,) = usage.call(&mut warm.store, (call,))?;
                Ok(result)
            })?
        } else {
            let (subject, parent) = handles(ctx);
            let event = convert::event(event).map_err(|err| PolicyFault::Malformed(err.0))?;
            self.sandboxed(ctx, |warm, exports| {
                warm.with_policy(exports, |policy, store| {
                    policy.call_handle(store, &event, subject, parent)
                })
            })?
        };
        Ok(result.map_err(convert::from_policy_error))
    }

    fn query(&self, actor: &str, what: QueryKind, ctx: &mut EventContext) -> Verdict<Answer> {
        let (subject, parent) = handles(ctx);
        let result = self.sandboxed(ctx, |warm, exports| {
            warm.with_policy(exports, |policy, store| {
                policy.call_query(store, actor, convert::query_kind(what), subject, parent)
            })
        })?;
        match result {
            Ok(answer) => convert::from_answer(answer)
                .map(Ok)
                .map_err(|err| PolicyFault::Malformed(err.0)),
            Err(error) => Ok(Err(convert::from_policy_error(error))),
        }
    }

    fn describe(&self, ctx: &mut EventContext) -> Result<AccountView, PolicyFault> {
        let (subject, _) = handles(ctx);
        let view = self.sandboxed(ctx, |warm, exports| {
            warm.with_policy(exports, |policy, store| {
                policy.call_describe(store, subject)
            })
        })?;
        convert::from_view(view).map_err(|err| PolicyFault::Malformed(err.0))
    }
}

fn role(handle: &AccountHandle) -> Option<Role> {
    match handle.rep() {
        SUBJECT_REP => Some(Role::Subject),
        PARENT_REP => Some(Role::Parent),
        _ => None,
    }
}

impl SandboxState {
    /// The account behind a handle, read in place: each field the policy asks
    /// for costs no copy of the others.
    fn account(&self, handle: &AccountHandle) -> Option<&crate::account::Account> {
        role(handle).and_then(|who| self.ctx.account(who))
    }

    fn view(&self, handle: &AccountHandle) -> Option<recharge_policy_sdk::model::Snapshot> {
        self.account(handle).map(crate::account::Account::snapshot)
    }

    fn decimal(&self, value: rust_decimal::Decimal) -> wit::Decimal {
        convert::decimal(value).unwrap_or(wit::Decimal {
            mantissa: 0,
            scale: 0,
        })
    }
}

impl types::Host for SandboxState {}

impl SandboxState {
    /// An owned handle on the account in `role`, within the call's allowance.
    fn lend(&mut self, rep: u32) -> Result<AccountHandle, wit::Refusal> {
        if self.lent >= MAX_LENT_HANDLES {
            return Err(wit::Refusal::Invalid(format!(
                "{MAX_LENT_HANDLES} account handles are not dropped yet"
            )));
        }
        self.lent += 1;
        Ok(Resource::new_own(rep))
    }
}

impl balance::Host for SandboxState {
    fn current_subject(&mut self) -> Result<AccountHandle, wit::Refusal> {
        self.lend(SUBJECT_REP)
    }

    fn current_parent(&mut self) -> Result<Option<AccountHandle>, wit::Refusal> {
        if !self.ctx.has_parent() {
            return Ok(None);
        }
        self.lend(PARENT_REP).map(Some)
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
            .map(|account| convert::kind(account.kind))
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
        self.decimal(balance)
    }

    fn status(&mut self, account: AccountHandle) -> wit::AccountStatus {
        self.account(&account)
            .map(|account| convert::status(account.status))
            .unwrap_or(wit::AccountStatus::Paused)
    }

    fn snapshot(&mut self, account: AccountHandle) -> wit::AccountSnapshot {
        let snapshot = self.view(&account);
        snapshot
            .and_then(|snapshot| convert::snapshot(&snapshot).ok())
            .unwrap_or_else(|| wit::AccountSnapshot {
                id: String::new(),
                kind: wit::AccountKind::User,
                parent: None,
                balance: wit::Decimal {
                    mantissa: 0,
                    scale: 0,
                },
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
            .set_status(who, convert::from_status(status))
            .map_err(convert::refusal)
    }

    fn cards(&mut self, account: AccountHandle) -> Vec<String> {
        role(&account)
            .and_then(|who| self.ctx.account(who))
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
        self.ctx.set_state(who, state).map_err(convert::refusal)
    }

    fn watermark(&mut self, account: AccountHandle) -> Option<wit::Decimal> {
        let who = role(&account)?;
        self.ctx
            .watermark(who)
            .and_then(|watermark| convert::decimal(watermark).ok())
    }

    fn set_watermark(
        &mut self,
        account: AccountHandle,
        watermark: Option<wit::Decimal>,
    ) -> Result<(), wit::Refusal> {
        let who = role(&account).ok_or(wit::Refusal::ForeignAccount)?;
        let watermark = watermark
            .map(convert::from_decimal)
            .transpose()
            .map_err(|err| wit::Refusal::Invalid(format!("watermark: {}", err.0)))?;
        self.ctx
            .set_watermark(who, watermark)
            .map_err(convert::refusal)
    }

    fn drop(&mut self, account: AccountHandle) -> wasmtime::Result<()> {
        // A handle names a role in the call, not an account: nothing to free
        // but the allowance of a handle `lend` handed out.
        if account.owned() {
            self.lent = self.lent.saturating_sub(1);
        }
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
        let amount = convert::from_decimal(amount)
            .map_err(|err| convert::refusal(Refusal::BadAmount(err.0)))?;
        self.ctx
            .request_charge(who, &card, amount, convert::from_purpose(purpose), &key)
            .map_err(convert::refusal)
    }
}

impl clock::Host for SandboxState {
    fn now(&mut self) -> wit::Timestamp {
        self.ctx.now()
    }

    fn current_rates(&mut self) -> wit::Rates {
        let rates = Capabilities::rates(&self.ctx);
        convert::rates(&rates).unwrap_or(wit::Rates {
            basic: wit::Decimal {
                mantissa: 0,
                scale: 0,
            },
            premium: wit::Decimal {
                mantissa: 0,
                scale: 0,
            },
        })
    }

    fn wake_me_at(
        &mut self,
        account: AccountHandle,
        at: wit::Timestamp,
        tag: u64,
    ) -> Result<(), wit::Refusal> {
        let who = role(&account).ok_or(wit::Refusal::ForeignAccount)?;
        self.ctx.wake_at(who, at, tag).map_err(convert::refusal)
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
            .notify(who, convert::notice(kind), &message)
            .map_err(convert::refusal)
    }
}
