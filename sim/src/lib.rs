//! Offline simulation: scenario scripts and their replay, and the report document;
//! generated workloads (scenario, workload, simulate, summary, chart), the
//! decision-speed bench and the durable-store bench.

pub mod bench;
pub mod bench_db;
pub mod chart;
mod driver;
pub mod files;
pub mod network;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod script;
pub mod simulate;
pub mod soak;
pub mod summary;
pub mod vopr;
pub mod workload;
