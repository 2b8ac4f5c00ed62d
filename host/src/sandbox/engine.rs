//! The wasmtime engine: configuration, per-call limits (H5), the epoch ticker that
//! enforces wall-clock deadlines, and the on-disk cache of compiled components.

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use thiserror::Error;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{self, ContractVersion};
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
    /// The limits of components over `component_bytes`: policies that carry an
    /// interpreter (JavaScript, Python). The fields above are the profile of
    /// compiled policies (Rust).
    pub interpreted: Profile,
}

/// What one kind of policy may use per call, and how large it may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Instructions (fuel) one call may burn, instantiation included.
    pub fuel: u64,
    /// Wall-clock time one call may take.
    pub deadline: Duration,
    /// Linear memory one instance may grow to, bytes.
    pub memory_bytes: usize,
    /// Size of a component binary, bytes.
    pub component_bytes: usize,
    /// Core instances, tables and memories one instance may create (an
    /// interpreter's component links many core modules).
    pub instances: usize,
}

impl Profile {
    /// The profile for JavaScript and Python policies (componentize-js and
    /// componentize-py components, 12 and 18 MB): chosen from the measurements
    /// in BENCHMARKS.md ("Policies in three languages").
    pub fn interpreted() -> Profile {
        Profile {
            fuel: 100_000_000,
            deadline: Duration::from_millis(1_000),
            memory_bytes: 96 << 20,
            component_bytes: 32 << 20,
            instances: 64,
        }
    }
}

impl Limits {
    /// The profile of compiled policies: this struct's own fields.
    pub fn compiled(&self) -> Profile {
        Profile {
            fuel: self.fuel,
            deadline: self.deadline,
            memory_bytes: self.memory_bytes,
            component_bytes: self.component_bytes,
            instances: 16,
        }
    }

    /// The profile a component of `size` bytes runs under: compiled up to
    /// `component_bytes`, interpreted beyond (up to its own size limit).
    pub fn profile_for(&self, size: usize) -> Profile {
        if size <= self.component_bytes {
            self.compiled()
        } else {
            self.interpreted.clone()
        }
    }

    /// The largest component any profile takes.
    pub fn largest_component(&self) -> usize {
        self.component_bytes.max(self.interpreted.component_bytes)
    }
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
            interpreted: Profile::interpreted(),
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
#[non_exhaustive]
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
    /// The component does not fit a version of the contract this host runs.
    #[error("component does not fit the recharge:policy contract: {0}")]
    Contract(String),
    /// The engine could not be built.
    #[error("engine configuration failed: {0}")]
    Engine(String),
}

/// What a component imports and exports, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interfaces {
    /// The names it imports (`recharge:policy/balance@0.1.0`, ...).
    pub imports: Vec<String>,
    /// The names it exports.
    pub exports: Vec<String>,
}

/// A configured wasmtime engine for policies, shared by every tenant.
#[derive(Clone)]
pub struct PolicyEngine {
    engine: Engine,
    limits: Arc<Limits>,
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
            .max_memory_size(limits.memory_bytes.max(limits.interpreted.memory_bytes))
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
        bindings::add_to_linker(&mut linker)
            .map_err(|err| LoadError::Engine(format!("{err:#}")))?;
        Ok(PolicyEngine {
            engine,
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
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The interfaces a component imports and exports, by name, after the
    /// checks and the compilation [`Self::load`] does.
    pub fn interfaces(&self, bytes: &[u8]) -> Result<Interfaces, LoadError> {
        let kind = self.compile(bytes)?.component_type();
        let names = |items: &mut dyn Iterator<Item = &str>| items.map(str::to_owned).collect();
        Ok(Interfaces {
            imports: names(&mut kind.imports(&self.engine).map(|(name, _)| name)),
            exports: names(&mut kind.exports(&self.engine).map(|(name, _)| name)),
        })
    }

    /// Check, compile (or fetch from the cache) and link a policy component.
    /// Its profile ([`Limits::profile_for`]) follows from its size.
    pub fn load(&self, bytes: &[u8]) -> Result<WasmPolicy, LoadError> {
        let profile = self.limits.profile_for(bytes.len());
        self.link(&self.compile(bytes)?, short_hash(bytes), profile)
    }

    /// Link a compiled component against the contract, as a policy named `name`.
    pub(crate) fn link(
        &self,
        component: &Component,
        name: String,
        profile: Profile,
    ) -> Result<WasmPolicy, LoadError> {
        // Bound by the version the component declares.
        let version = match ContractVersion::of(&self.engine, component) {
            Ok(version) => version,
            Err(why) => {
                // An import the host does not offer (WASI, say) is the likelier
                // mistake, and the more useful message.
                return Err(LoadError::Contract(
                    match self.linker.instantiate_pre(component) {
                        Err(err) => format!("{err:#}"),
                        Ok(_) => why,
                    },
                ));
            }
        };
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|err| LoadError::Contract(format!("{err:#}")))?;
        WasmPolicy::new(self.clone(), pre, name, profile, version)
            .map_err(|err| LoadError::Contract(format!("{err:#}")))
    }

    /// Compile a component, through the on-disk cache when there is one.
    pub(crate) fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        check_header(bytes, self.limits.largest_component())?;
        let Some(path) = self.cache_path(bytes) else {
            return Component::new(&self.engine, bytes)
                .map_err(|err| LoadError::Compile(format!("{err:#}")));
        };
        let seal = Seal::new(bytes, self.engine.precompile_compatibility_hash());
        if let Some(entry) = read_entry(&path)
            && let Some(precompiled) = seal.open(&entry)
        {
            // SAFETY: `open` checked the entry's digest: these are, bit for bit,
            // the bytes `precompile_component` of an engine with this
            // compatibility hash produced for this very component (see `Seal`).
            if let Ok(component) = unsafe { Component::deserialize(&self.engine, precompiled) } {
                return Ok(component);
            }
        }
        // No entry, or one that cannot be vouched for: compile, and write a
        // sealed entry over whatever was there.
        let precompiled = self
            .engine
            .precompile_component(bytes)
            .map_err(|err| LoadError::Compile(format!("{err:#}")))?;
        write_atomically(&path, &seal.close(&precompiled));
        // SAFETY: these bytes were produced just now by this engine.
        unsafe { Component::deserialize(&self.engine, &precompiled) }
            .map_err(|err| LoadError::Compile(format!("{err:#}")))
    }

    /// Where the cache keeps a component's compiled bytes: named by the
    /// component's SHA-256 and the engine's compatibility hash.
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
/// A deadline in ticks of [`EPOCH_TICK`], at least one.
pub(crate) fn deadline_ticks(deadline: Duration) -> u64 {
    let ticks = deadline.as_millis() / EPOCH_TICK.as_millis();
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

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

/// What a cache entry starts with: the format, then the seal's digest.
const ENTRY_MAGIC: &[u8; 16] = b"recharge-cwasm\0\x01";
/// The largest cache entry read back (a compiled 8 MiB component is far less).
const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// The seal of a cache entry: SHA-256 over the component's own digest, the
/// engine's compatibility hash and the compiled bytes, stored in front of them.
/// An entry whose seal does not match (a flipped bit, a truncated write, an
/// entry copied from another component's or another engine's name) is never
/// deserialized: it is compiled afresh and rewritten. The seal guards against
/// corruption, not against someone who may write the cache directory at will:
/// the directory must be the host's own.
struct Seal {
    source: [u8; 32],
    compatibility: u64,
}

impl Seal {
    fn new(component: &[u8], compatibility: impl Hash) -> Seal {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        compatibility.hash(&mut hasher);
        Seal {
            source: Sha256::digest(component).into(),
            compatibility: hasher.finish(),
        }
    }

    fn digest(&self, precompiled: &[u8]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.source);
        hasher.update(self.compatibility.to_le_bytes());
        hasher.update(precompiled);
        hasher.finalize().into()
    }

    /// The entry for `precompiled`: magic, digest, bytes.
    fn close(&self, precompiled: &[u8]) -> Vec<u8> {
        let mut entry = Vec::with_capacity(ENTRY_MAGIC.len() + 32 + precompiled.len());
        entry.extend_from_slice(ENTRY_MAGIC);
        entry.extend_from_slice(&self.digest(precompiled));
        entry.extend_from_slice(precompiled);
        entry
    }

    /// The compiled bytes of an entry, if its seal holds.
    fn open<'a>(&self, entry: &'a [u8]) -> Option<&'a [u8]> {
        let rest = entry.strip_prefix(ENTRY_MAGIC)?;
        let (digest, precompiled) = rest.split_at_checked(32)?;
        (digest == self.digest(precompiled)).then_some(precompiled)
    }
}

/// A cache entry's bytes, if it is a regular file of a sane size (never a FIFO
/// or a device, which could block or never end).
fn read_entry(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_ENTRY_BYTES {
        return None;
    }
    let mut entry = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_ENTRY_BYTES)
        .read_to_end(&mut entry)
        .ok()?;
    Some(entry)
}

/// Write a cache entry whole or not at all: a temporary file in the same
/// directory, renamed over the entry; the temporary file never outlives a
/// failure. The cache is an optimisation: failing to write it only costs a
/// recompile next time.
fn write_atomically(path: &Path, bytes: &[u8]) {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let _ = std::fs::create_dir_all(dir);
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let temporary = dir.join(temporary);
    let written = std::fs::File::create_new(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
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

#[cfg(test)]
mod tests {
    use super::*;

    // The cache never executes bytes it cannot vouch for.
    #[test]
    fn cache_a_sealed_entry_opens_only_unchanged_for_its_own_component() {
        let seal = Seal::new(b"component", 7_u64);
        let entry = seal.close(b"compiled bytes");
        assert_eq!(seal.open(&entry), Some(&b"compiled bytes"[..]));
        for bit in 0..entry.len() * 8 {
            let mut flipped = entry.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(seal.open(&flipped), None, "bit {bit}");
        }
        for cut in 0..entry.len() {
            assert_eq!(seal.open(&entry[..cut]), None, "cut at {cut}");
        }
        assert_eq!(Seal::new(b"another", 7_u64).open(&entry), None);
        assert_eq!(Seal::new(b"component", 8_u64).open(&entry), None);
    }

    #[test]
    fn cache_entries_are_written_whole_and_leave_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("recharge-engine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("entry.cwasm");
        write_atomically(&path, b"first");
        write_atomically(&path, b"second");
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // A directory in the entry's place: the rename fails, and the
        // temporary file is removed.
        let blocked = dir.join("blocked.cwasm");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        write_atomically(&blocked, b"bytes");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        names.sort();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["blocked.cwasm", "entry.cwasm"]);
    }
}
