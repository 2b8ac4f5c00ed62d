//! The plain `cabi_realloc` of the corpus's well-behaved-allocation guests,
//! included with `#[path]` beside `runtime.rs` (as `mod runtime`).

/// The canonical ABI's allocator, which the host calls to lower strings and
/// lists into the guest.
///
/// # Safety
/// Called by the component runtime with a valid old allocation, or none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    // SAFETY: forwarded under the same contract.
    unsafe { crate::runtime::realloc_block(old, old_len, align, new_len) }
}
