//! The sandbox: a policy component run under wasmtime with fuel, an epoch
//! deadline, bounded memory, tables and stack (H5), a fresh pooled instance per
//! call, and the host's capabilities as its only imports (H1).

mod bindings;
mod convert;
mod engine;

use std::sync::{Arc, Mutex};

use recharge_policy_sdk::caps::{Capabilities, Role};
use recharge_policy_sdk::model::{AccountView, Answer, Event, QueryKind, Refusal};
use wasmtime::component::{Instance, InstancePre, Resource};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, Trap};

use self::bindings::{Contract, UsageCall, v0_1, v0_2};
use self::convert::Malformed;
use crate::capabilities::EventContext;
use crate::policy::{Policy, PolicyFault, Verdict};

pub use self::bindings::ContractVersion;
pub(crate) use self::engine::short_hash;
pub use self::engine::{Interfaces, Limits, LoadError, PolicyEngine, Profile};

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

/// A policy component, compiled and linked, ready to instantiate, bound by the
/// version of the contract it declares ([`ContractVersion`]).
///
/// Calls run on warm instances by default: an instance that returned normally
/// goes back to a small pool for the next call, with fresh fuel and a fresh
/// deadline; one that faulted is dropped. [`Limits::fresh_instance_per_call`]
/// instantiates anew for every call instead.
#[derive(Clone)]
pub struct WasmPolicy {
    inner: Arc<dyn Policy>,
    version: ContractVersion,
    profile: Profile,
}

impl std::fmt::Debug for WasmPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPolicy")
            .field("name", &self.inner.name())
            .field("version", &self.version)
            .finish()
    }
}

impl WasmPolicy {
    /// A policy over a linked component of `version`, after checking it
    /// exports the whole contract.
    pub(crate) fn new(
        engine: PolicyEngine,
        pre: InstancePre<SandboxState>,
        name: String,
        profile: Profile,
        version: ContractVersion,
    ) -> wasmtime::Result<Self> {
        let inner: Arc<dyn Policy> = match version {
            ContractVersion::V0_1 => Arc::new(Sandboxed::<v0_1::Binding>::new(
                engine,
                pre,
                name,
                profile.clone(),
            )?),
            ContractVersion::V0_2 => Arc::new(Sandboxed::<v0_2::Binding>::new(
                engine,
                pre,
                name,
                profile.clone(),
            )?),
        };
        Ok(WasmPolicy {
            inner,
            version,
            profile,
        })
    }

    /// The limits this policy's calls run under.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The version of the contract the component declares.
    pub fn version(&self) -> ContractVersion {
        self.version
    }
}

impl Policy for WasmPolicy {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn handle(&self, event: &Event, ctx: &mut EventContext) -> Verdict<()> {
        self.inner.handle(event, ctx)
    }

    fn query(&self, actor: &str, what: QueryKind, ctx: &mut EventContext) -> Verdict<Answer> {
        self.inner.query(actor, what, ctx)
    }

    fn describe(&self, ctx: &mut EventContext) -> Result<AccountView, PolicyFault> {
        self.inner.describe(ctx)
    }
}

/// A component bound by one version of the contract.
struct Sandboxed<C: Contract> {
    engine: PolicyEngine,
    pre: InstancePre<SandboxState>,
    exports: C::Exports,
    name: String,
    /// What each call may use.
    budget: Budget,
    warm: Mutex<Vec<Warm<C::Bound>>>,
}

/// A policy's profile as its calls use it: the deadline in epoch ticks, worked
/// out once.
struct Budget {
    profile: Profile,
    deadline_ticks: u64,
}

/// An instantiated policy with its store, between calls, and its exports as
/// far as they were looked up.
pub struct Warm<B> {
    store: Store<SandboxState>,
    instance: Instance,
    bound: B,
}

/// Warm instances kept per policy.
const WARM_INSTANCES: usize = 2;

impl<C: Contract> Sandboxed<C> {
    fn new(
        engine: PolicyEngine,
        pre: InstancePre<SandboxState>,
        name: String,
        profile: Profile,
    ) -> wasmtime::Result<Self> {
        let exports = C::exports(&pre)?;
        Ok(Sandboxed {
            engine,
            pre,
            exports,
            name,
            budget: Budget {
                deadline_ticks: engine::deadline_ticks(profile.deadline),
                profile,
            },
            warm: Mutex::new(Vec::new()),
        })
    }

    /// A new store with the memory, table and instance limits, and an instance in it.
    fn instantiate(&self) -> Result<Warm<C::Bound>, PolicyFault> {
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
            bound: C::Bound::default(),
        })
    }

    fn take_warm(&self) -> Option<Warm<C::Bound>> {
        if self.engine.limits().fresh_instance_per_call {
            return None;
        }
        self.warm.lock().ok()?.pop()
    }

    fn give_back(&self, warm: Warm<C::Bound>) {
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
        call: impl FnOnce(&mut Warm<C::Bound>, &C::Exports) -> wasmtime::Result<R>,
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

/// Borrowed handles on the subject and, if it has one, its parent.
fn handles<T: 'static>(has_parent: bool) -> (Resource<T>, Option<Resource<T>>) {
    let parent = has_parent.then(|| Resource::new_borrow(PARENT_REP));
    (Resource::new_borrow(SUBJECT_REP), parent)
}

/// The role a handle names, if it names one.
fn role<T: 'static>(handle: &Resource<T>) -> Option<Role> {
    match handle.rep() {
        SUBJECT_REP => Some(Role::Subject),
        PARENT_REP => Some(Role::Parent),
        _ => None,
    }
}

impl<C: Contract> Policy for Sandboxed<C> {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle(&self, event: &Event, ctx: &mut EventContext) -> Verdict<()> {
        let has_parent = ctx.has_parent();
        if let Event::Usage(usage) = event {
            // The hot path: flat arguments with the balance and the watermark,
            // and no account lent unless the policy asks for it.
            let call = UsageCall {
                usage,
                balance: Capabilities::balance(&*ctx, Role::Subject).unwrap_or_default(),
                watermark: ctx.watermark(Role::Subject),
                has_parent,
            };
            self.sandboxed(ctx, |warm, exports| C::usage(warm, exports, call))
        } else {
            self.sandboxed(ctx, |warm, exports| {
                C::handle(warm, exports, event, has_parent)
            })
        }
    }

    fn query(&self, actor: &str, what: QueryKind, ctx: &mut EventContext) -> Verdict<Answer> {
        let has_parent = ctx.has_parent();
        self.sandboxed(ctx, |warm, exports| {
            C::query(warm, exports, actor, what, has_parent)
        })
    }

    fn describe(&self, ctx: &mut EventContext) -> Result<AccountView, PolicyFault> {
        self.sandboxed(ctx, |warm, exports| C::describe(warm, exports))
    }
}

impl SandboxState {
    /// The account behind a handle, read in place: each field the policy asks
    /// for costs no copy of the others.
    fn account<T: 'static>(&self, handle: &Resource<T>) -> Option<&crate::account::Account> {
        role(handle).and_then(|who| self.ctx.account(who))
    }

    fn view<T: 'static>(
        &self,
        handle: &Resource<T>,
    ) -> Option<recharge_policy_sdk::model::Snapshot> {
        self.account(handle).map(crate::account::Account::snapshot)
    }

    /// An owned handle on the account in `who`, within the call's allowance.
    fn lend<T: 'static>(&mut self, who: Role) -> Result<Resource<T>, Refusal> {
        if self.lent >= MAX_LENT_HANDLES {
            return Err(Refusal::Invalid(format!(
                "{MAX_LENT_HANDLES} account handles are not dropped yet"
            )));
        }
        self.lent += 1;
        Ok(Resource::new_own(match who {
            Role::Subject => SUBJECT_REP,
            Role::Parent => PARENT_REP,
        }))
    }

    /// A handle was dropped: an owned one gives its allowance back.
    fn give_back_handle(&mut self, owned: bool) {
        if owned {
            self.lent = self.lent.saturating_sub(1);
        }
    }
}
