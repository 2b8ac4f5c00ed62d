//! The `no_std` runtime the corpus's Rust guests share, included with `#[path]`:
//! an allocator, the block management behind the canonical ABI's
//! `cabi_realloc`, the byte comparisons the compiler lowers `==` on strings and
//! slices to, and a panic handler that traps. wasi-libc would provide these, but
//! it would bring WASI with it. Each guest defines `cabi_realloc` itself (the
//! rogue one misbehaves on request); `realloc.rs` holds the plain one.

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// Allocate `new_len` bytes, or grow `old` to them, for the canonical ABI;
/// traps when memory runs out.
///
/// # Safety
/// As `cabi_realloc`: `old` is a block of `old_len` bytes at `align` from an
/// earlier call, or `old_len` is 0.
pub unsafe fn realloc_block(old: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, realloc};
    if new_len == 0 {
        return align as *mut u8;
    }
    // SAFETY: the runtime passes a power-of-two alignment and the old block's size.
    let block = unsafe {
        if old_len == 0 {
            alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if block.is_null() {
        core::arch::wasm32::unreachable();
    }
    block
}

/// Byte comparison, which `str` and slice equality lower to.
///
/// # Safety
/// `a` and `b` point to at least `n` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for offset in 0..n {
        // SAFETY: the caller guarantees `n` readable bytes behind both pointers.
        let (x, y) = unsafe { (*a.add(offset), *b.add(offset)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// Byte equality, as `memcmp`.
///
/// # Safety
/// As [`memcmp`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
