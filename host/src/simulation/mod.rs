//! Offline simulation: scenario scripts and their replay, and the report document.

pub mod replay;
pub mod report;
pub mod script;
