//! The policy abstraction: one trait, two implementations — the sandboxed wasm
//! component ([`crate::WasmPolicy`]) and the native build of the default core
//! ([`NativePolicy`], the speed baseline). Both run against the same
//! [`EventContext`].

use recharge_policy_sdk::model::{AccountView, Answer, Event, PolicyError, QueryKind};
use thiserror::Error;

use crate::capabilities::EventContext;

/// What went wrong inside a policy: the event changes nothing (H5).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyFault {
    /// The policy ran out of fuel.
    #[error("policy ran out of fuel")]
    OutOfFuel,
    /// The policy ran past its wall-clock deadline.
    #[error("policy ran past its deadline")]
    Deadline,
    /// The policy trapped (a panic, an out-of-bounds access, stack exhaustion...).
    #[error("policy trapped: {0}")]
    Trap(String),
    /// The policy returned something the host cannot accept.
    #[error("policy misbehaved: {0}")]
    Malformed(String),
    /// The policy kept waking itself up past the per-advance limit.
    #[error("policy kept waking itself: {0} wake-ups in one advance of the clock")]
    Runaway(u32),
    /// The policy could not be instantiated.
    #[error("policy could not start: {0}")]
    Instantiate(String),
}

/// The verdict of a policy call: a fault, or the policy's own answer.
pub type Verdict<T> = Result<Result<T, PolicyError>, PolicyFault>;

/// A billing policy the host can drive.
pub trait Policy: Send + Sync {
    /// A short name for reports (`default`, `native`, a component's hash...).
    fn name(&self) -> &str;

    /// Handle one event; on success the context holds what to commit.
    fn handle(&self, event: &Event, ctx: &mut EventContext) -> Verdict<()>;

    /// Answer a query; the context's effects are discarded.
    fn query(&self, actor: &str, what: QueryKind, ctx: &mut EventContext) -> Verdict<Answer>;

    /// Describe the policy's settings for the subject.
    fn describe(&self, ctx: &mut EventContext) -> Result<AccountView, PolicyFault>;
}

/// The default policy's core compiled natively into the host: no sandbox, no
/// limits. The baseline for benchmarks, and a reference in tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct NativePolicy;

impl Policy for NativePolicy {
    fn name(&self) -> &str {
        "native"
    }

    fn handle(&self, event: &Event, ctx: &mut EventContext) -> Verdict<()> {
        let has_parent = ctx.has_parent();
        Ok(recharge_guest::policy::handle(event, has_parent, ctx))
    }

    fn query(&self, actor: &str, what: QueryKind, ctx: &mut EventContext) -> Verdict<Answer> {
        let has_parent = ctx.has_parent();
        Ok(recharge_guest::policy::query(actor, what, has_parent, ctx))
    }

    fn describe(&self, ctx: &mut EventContext) -> Result<AccountView, PolicyFault> {
        Ok(recharge_guest::policy::describe(ctx))
    }
}
