//! Decision speed, measured with criterion (`cargo bench --bench decisions`):
//!
//! 1. `usage`: a usage event through the host, default policy as wasm versus its
//!    native build, same host and store;
//! 2. `events`: each event type through the wasm default policy;
//! 3. `sandbox`: a fresh pooled instance per event versus a warm instance;
//! 4. `replay`: throughput over a generated trace of 1,000,000 events;
//! 5. `load`: loading the component compiled from scratch versus precompiled;
//! 6. `decision`: the policy's decision alone on a usage event (a warm
//!    `Policy::handle` over in-memory capabilities), wasm versus native.
//!
//! Figures and method: BENCHMARKS.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use recharge_host::model::{
    AccountKind, AutoRechargeSettings, Event, MinuteType, Mode, QueryKind, Timestamp, Usage,
};
use recharge_host::{
    Account, AccountId, DEFAULT_POLICY, EventContext, Limits, NativePolicy, Platform, Policy,
    PolicyEngine, SimulatedGateway, default_rates,
};
use recharge_sim::replay::replay;
use recharge_sim::script::{Command, Line};
use rust_decimal::Decimal;

/// 2026-01-05T00:00:00Z, a Monday.
const START: Timestamp = 1_767_571_200_000;
const USERS: usize = 1_000;

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-cache")
}

#[derive(Clone, Copy)]
enum Flavor {
    Wasm,
    WasmFresh,
    Native,
}

fn settings() -> AutoRechargeSettings {
    AutoRechargeSettings {
        enabled: true,
        threshold: Decimal::new(10_00, 2),
        amount: Decimal::new(50_00, 2),
        card: "visa".into(),
        mode: Mode::Fixed,
        monthly_limit: None,
    }
}

/// A platform with `USERS` users on auto-recharge, each with plenty of credit and
/// included minutes, so usage events decide but rarely charge.
fn platform(flavor: Flavor) -> (Platform, Vec<AccountId>) {
    let limits = Limits {
        fresh_instance_per_call: matches!(flavor, Flavor::WasmFresh),
        ..Limits::default()
    };
    let engine = PolicyEngine::new(limits, Some(cache_dir())).expect("engine");
    let default: Arc<dyn Policy> = match flavor {
        Flavor::Native => Arc::new(NativePolicy),
        Flavor::Wasm | Flavor::WasmFresh => {
            Arc::new(engine.load(DEFAULT_POLICY).expect("default policy"))
        }
    };
    let platform = Platform::builder()
        .engine(engine)
        .default_policy(default)
        .gateway(Arc::new(SimulatedGateway::new()))
        .simulated_clock(START)
        .build()
        .expect("platform");
    let users: Vec<_> = (0..USERS).map(|n| AccountId(format!("user-{n}"))).collect();
    for user in &users {
        platform
            .open_account(user.clone(), AccountKind::User, None)
            .unwrap();
        platform.add_card(user, "visa").unwrap();
        platform
            .top_up(user, user, "visa", Decimal::from(500))
            .unwrap();
        platform
            .include_minutes(user, 1_000_000_000, 1_000_000_000)
            .unwrap();
        platform.save_auto_recharge(user, user, settings()).unwrap();
    }
    (platform, users)
}

/// Record one call on the next user, round robin.
fn usage_loop(platform: &Platform, users: &[AccountId]) -> impl FnMut() {
    let mut call: u64 = 0;
    move || {
        let user = &users[(call as usize) % users.len()];
        platform
            .record_usage(user, &format!("c{call}"), 60, MinuteType::Basic)
            .unwrap();
        call += 1;
    }
}

fn usage(c: &mut Criterion) {
    let mut group = c.benchmark_group("usage");
    group.throughput(Throughput::Elements(1));
    for (name, flavor) in [("wasm", Flavor::Wasm), ("native", Flavor::Native)] {
        let (platform, users) = platform(flavor);
        let mut next = usage_loop(&platform, &users);
        group.bench_function(name, |b| b.iter(&mut next));
    }
    group.finish();
}

fn events(c: &mut Criterion) {
    let mut group = c.benchmark_group("events");
    group.throughput(Throughput::Elements(1));
    let (platform, users) = platform(Flavor::Wasm);
    let mut n = 0usize;
    let mut next_user = || {
        n += 1;
        &users[n % USERS]
    };
    let mut call = 0u64;
    group.bench_function("usage", |b| {
        b.iter(|| {
            call += 1;
            let user = next_user();
            platform
                .record_usage(user, &format!("e{call}"), 60, MinuteType::Premium)
                .unwrap()
        })
    });
    group.bench_function("save_auto_recharge", |b| {
        b.iter(|| {
            let user = next_user();
            platform.save_auto_recharge(user, user, settings()).unwrap()
        })
    });
    group.bench_function("query_service", |b| {
        b.iter(|| {
            let user = next_user();
            platform.query(user, user, QueryKind::Service).unwrap()
        })
    });
    group.bench_function("card_update", |b| {
        b.iter(|| {
            let user = next_user();
            platform.update_card(user, "visa").unwrap()
        })
    });
    group.bench_function("top_up_with_outcome", |b| {
        b.iter(|| {
            let user = next_user();
            platform.top_up(user, user, "visa", Decimal::ONE).unwrap()
        })
    });
    group.finish();
}

fn sandbox(c: &mut Criterion) {
    let mut group = c.benchmark_group("sandbox");
    group.throughput(Throughput::Elements(1));
    for (name, flavor) in [("warm", Flavor::Wasm), ("fresh", Flavor::WasmFresh)] {
        let (platform, users) = platform(flavor);
        let mut next = usage_loop(&platform, &users);
        group.bench_function(name, |b| b.iter(&mut next));
    }
    group.finish();
}

/// A script of `events` lines: 1,000 users opened and set up, then usage spread
/// over them, a second apart.
fn trace(events: usize) -> Vec<Line> {
    let mut lines = Vec::with_capacity(events);
    let account = |n: usize| format!("user-{}", n % USERS);
    let push = |lines: &mut Vec<Line>, at: Timestamp, command: Command| {
        let number = lines.len() + 1;
        lines.push(Line {
            number,
            at,
            command,
        });
    };
    for n in 0..USERS {
        push(
            &mut lines,
            START,
            Command::Open {
                account: account(n),
                kind: AccountKind::User,
                parent: None,
            },
        );
        push(
            &mut lines,
            START,
            Command::AddCard {
                account: account(n),
                card: "visa".into(),
                behavior: Default::default(),
            },
        );
        push(
            &mut lines,
            START,
            Command::AutoRecharge {
                actor: account(n),
                account: account(n),
                settings: settings(),
            },
        );
    }
    let mut n = 0;
    while lines.len() < events {
        let minute_type = if n % 3 == 0 {
            MinuteType::Premium
        } else {
            MinuteType::Basic
        };
        let at = START + 1_000 * i64::try_from(n).unwrap_or(i64::MAX);
        push(
            &mut lines,
            at,
            Command::Usage {
                account: account(n),
                call: format!("c{n}"),
                seconds: 30 + (n % 300) as i64,
                minute_type,
            },
        );
        n += 1;
    }
    lines
}

fn replay_trace(c: &mut Criterion) {
    const EVENTS: usize = 1_000_000;
    let lines = trace(EVENTS);
    let engine = PolicyEngine::new(Limits::default(), Some(cache_dir())).expect("engine");
    let default: Arc<dyn Policy> = Arc::new(engine.load(DEFAULT_POLICY).expect("default policy"));
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.bench_function("1m_events", |b| {
        b.iter(|| {
            let builder = Platform::builder()
                .engine(engine.clone())
                .default_policy(Arc::clone(&default));
            replay(std::path::Path::new("trace.jsonl"), &lines, builder).unwrap()
        })
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    let compiling = PolicyEngine::new(Limits::default(), None).expect("engine");
    group.bench_function("compile", |b| {
        b.iter(|| compiling.load(DEFAULT_POLICY).unwrap())
    });
    let cached = PolicyEngine::new(Limits::default(), Some(cache_dir())).expect("engine");
    cached.load(DEFAULT_POLICY).unwrap();
    group.bench_function("precompiled", |b| {
        b.iter_batched(
            || (),
            |()| cached.load(DEFAULT_POLICY).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A usage event's decision with everything else taken away: one context, built
/// once from a user on auto-recharge well above its threshold, handed to the
/// policy again and again (the decision changes nothing, so the context stays
/// valid).
fn decision(c: &mut Criterion) {
    let (platform, users) = platform(Flavor::Wasm);
    let account: Account = platform.account(&users[0]).unwrap();
    let engine = PolicyEngine::new(Limits::default(), Some(cache_dir())).expect("engine");
    let wasm: Arc<dyn Policy> = Arc::new(engine.load(DEFAULT_POLICY).expect("default policy"));
    let native: Arc<dyn Policy> = Arc::new(NativePolicy);
    let event = Event::Usage(Usage {
        seconds: 60,
        minute_type: MinuteType::Basic,
        wallet_cost: Decimal::new(9, 2),
    });
    let mut group = c.benchmark_group("decision");
    group.throughput(Throughput::Elements(1));
    for (name, policy) in [("wasm", wasm), ("native", native)] {
        let mut ctx = EventContext::offline(account.clone(), "default", START, default_rates());
        policy.handle(&event, &mut ctx).unwrap().unwrap();
        assert!(ctx.charges().is_empty(), "the decision must not charge");
        group.bench_function(name, |b| {
            b.iter(|| policy.handle(&event, &mut ctx).unwrap().unwrap())
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    decision,
    usage,
    events,
    sandbox,
    load,
    replay_trace
);
criterion_main!(benches);
