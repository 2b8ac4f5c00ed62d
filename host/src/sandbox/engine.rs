//! The wasmtime engine: configuration, per-call limits (H5), the epoch ticker that
//! enforces wall-clock deadlines, and the on-disk cache of compiled components.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use thiserror::Error;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::RechargePolicy;
use super::{SandboxState, WasmPolicy};

/// Per-call limits of a policy sandbox (H5); all configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Instructions (fuel) one call may burn.
    pub fuel: u64,
    /// Wall-clock time one call may take.
    pub deadline: Duration,
    /// Linear memory one instance may grow to, bytes.
    pub memory_bytes: usize,
    /// Wasm stack, bytes.
    pub stack_bytes: usize,
    /// Size of a component binary, bytes.
    pub component_bytes: usize,
    /// Table elements one instance may have.
    pub table_elements: usize,
    /// Instances that may exist at once (the pooling allocator's size), warm
    /// ones included.
    pub concurrent_instances: u32,
    /// Instantiate a fresh sandbox for every call instead of reusing warm ones.
    pub fresh_instance_per_call: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000,
            deadline: Duration::from_millis(100),
            memory_bytes: 16 << 20,
            stack_bytes: 512 << 10,
            component_bytes: 8 << 20,
            table_elements: 10_000,
            concurrent_instances: 128,
            fresh_instance_per_call: false,
        }
    }
}

/// Linear memory kept resident per pooled slot: the default policy's initial
/// memory (see [`PolicyEngine::new`]).
const RESIDENT_MEMORY_BYTES: usize = 64 << 10;
/// Table memory kept resident per pooled slot.
const RESIDENT_TABLE_BYTES: usize = 16 << 10;

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Why a component could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The binary is over the size limit.
    #[error("component is {size} bytes, over the {limit} byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are a core module, not a component.
    #[error(
        "not a component: this is a core WebAssembly module (build for wasm32-wasip2 or run `wasm-tools component new`)"
    )]
    CoreModule,
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly component (bad magic bytes)")]
    NotWasm,
    /// The component does not compile.
    #[error("component does not compile: {0}")]
    Compile(String),
    /// The component does not fit the `recharge:policy@0.1.0` contract.
    #[error("component does not fit the recharge:policy@0.1.0 contract: {0}")]
    Contract(String),
    /// The engine could not be built.
    #[error("engine configuration failed: {0}")]
    Engine(String),
}

/// A configured wasmtime engine for policies, shared by every tenant.
#[derive(Clone)]
pub struct PolicyEngine {
    engine: Engine,
    limits: Arc<Limits>,
    /// The deadline in epoch ticks, worked out once: every call sets it.
    deadline_ticks: u64,
    linker: Arc<Linker<SandboxState>>,
    cache_dir: Option<PathBuf>,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("limits", &self.limits)
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

impl PolicyEngine {
    /// An engine with these limits and the pooling allocator; compiled components
    /// are cached in `cache_dir` when given.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self, LoadError> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(limits.concurrent_instances)
            .total_core_instances(limits.concurrent_instances * 4)
            .total_memories(limits.concurrent_instances * 2)
            .total_tables(limits.concurrent_instances * 4)
            .max_memory_size(limits.memory_bytes)
            .table_elements(limits.table_elements)
            // The default policy starts with one 64 KiB page (a 32 KiB shadow
            // stack and its data), and a usage decision touches nothing beyond
            // it: reset that page with memset and keep it mapped, instead of
            // madvise and page faults at every instantiation. For one page a
            // memset is cheaper than asking the kernel which pages are dirty
            // (pagemap scan), measured with `sandbox/fresh`.
            .linear_memory_keep_resident(RESIDENT_MEMORY_BYTES)
            .table_keep_resident(RESIDENT_TABLE_BYTES)
            .pagemap_scan(Enabled::No)
            // Whatever lies beyond is given back to the kernel in batches.
            .decommit_batch_size(16);
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(limits.stack_bytes)
            .concurrency_support(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|err| LoadError::Engine(format!("{err:#}")))?;
        spawn_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        RechargePolicy::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |state| {
            state
        })
        .map_err(|err| LoadError::Engine(format!("{err:#}")))?;
        let ticks = limits.deadline.as_millis() / EPOCH_TICK.as_millis();
        let deadline_ticks = u64::try_from(ticks).unwrap_or(u64::MAX).max(1);
        Ok(PolicyEngine {
            engine,
            deadline_ticks,
            limits: Arc::new(limits),
            linker: Arc::new(linker),
            cache_dir,
        })
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Ticks of [`EPOCH_TICK`] a call may run.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        self.deadline_ticks
    }

    /// Check, compile (or fetch from the cache) and link a policy component.
    pub fn load(&self, bytes: &[u8]) -> Result<WasmPolicy, LoadError> {
        self.link(&self.compile(bytes)?, short_hash(bytes))
    }

    /// Link a compiled component against the contract, as a policy named `name`.
    pub fn link(&self, component: &Component, name: String) -> Result<WasmPolicy, LoadError> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|err| LoadError::Contract(format!("{err:#}")))?;
        WasmPolicy::new(self.clone(), pre, name)
            .map_err(|err| LoadError::Contract(format!("{err:#}")))
    }

    /// Compile a component, through the on-disk cache when there is one.
    pub fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        check_header(bytes, self.limits.component_bytes)?;
        let Some(path) = self.cache_path(bytes) else {
            return Component::new(&self.engine, bytes)
                .map_err(|err| LoadError::Compile(format!("{err:#}")));
        };
        if let Ok(precompiled) = std::fs::read(&path) {
            // SAFETY: the file is written only by `precompile_component` of an engine
            // with the same compatibility hash (it is part of the file name), in a
            // cache directory the host owns. A stale or corrupt file is detected by
            // wasmtime's header checks and recompiled below.
            if let Ok(component) = unsafe { Component::deserialize(&self.engine, &precompiled) } {
                return Ok(component);
            }
        }
        let precompiled = self
            .engine
            .precompile_component(bytes)
            .map_err(|err| LoadError::Compile(format!("{err:#}")))?;
        write_atomically(&path, &precompiled);
        // SAFETY: these bytes were produced just now by this engine.
        unsafe { Component::deserialize(&self.engine, &precompiled) }
            .map_err(|err| LoadError::Compile(format!("{err:#}")))
    }

    fn cache_path(&self, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        Some(dir.join(format!(
            "{}-{:016x}.cwasm",
            hex(&Sha256::digest(bytes)),
            hasher.finish()
        )))
    }
}

/// Reject what is not a component before compiling: too large, a core module, not wasm.
fn check_header(bytes: &[u8], limit: usize) -> Result<(), LoadError> {
    if bytes.len() > limit {
        return Err(LoadError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) {
    // The cache is an optimisation: failing to write it only costs a recompile.
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&temporary, bytes).is_ok() {
        let _ = std::fs::rename(&temporary, path);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The first 12 hex digits of a component's SHA-256: its name in reports.
pub fn short_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes)[..6])
}

/// Advance the engine's epoch every tick for as long as the engine lives.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("recharge-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .ok();
}
