//! The component's allocator: power-of-two size classes, each with its own free
//! list, carved from pages the module grows its memory by.
//!
//! A policy allocates a handful of small, short-lived blocks per call (the
//! strings and lists the host hands over, a key, a message, the state bytes)
//! and frees them all before it returns. For that, a free list per size class
//! serves a block with a pop and takes it back with a push: a few dozen
//! instructions of fuel, where dlmalloc spent a couple of hundred per block on
//! its bins and coalescing.
//!
//! The trade is memory for time: a block is at most twice the size asked for, and
//! a freed block is only ever reused for its own class, so the heap holds the
//! peak of each class at once rather than the peak of all of them together.
//! Nothing is ever handed out twice: a block is either in exactly one free list
//! or allocated.

use core::alloc::Layout;
use core::ptr;

/// The smallest block, as a power of two: room for the free-list link.
const MIN_CLASS_BITS: u32 = 4;
/// Classes from 16 bytes to 2 GiB.
const CLASSES: usize = 28;
/// The unit memory grows by (a wasm page).
pub(crate) const PAGE: usize = 64 * 1024;

/// The free lists and the unused tail of the memory grown so far.
pub(crate) struct Heap {
    /// The first free block of each class, 0 when none; each free block starts
    /// with the address of the next.
    free: [usize; CLASSES],
    /// The start of memory not yet carved into blocks.
    next: usize,
    /// The end of the memory grown so far.
    end: usize,
}

impl Heap {
    /// A heap that has grown no memory yet.
    pub(crate) const fn new() -> Heap {
        Heap {
            free: [0; CLASSES],
            next: 0,
            end: 0,
        }
    }

    /// A block for `layout`, or null when memory cannot grow. `grow(pages)`
    /// adds that many pages to memory and returns the address of the first.
    ///
    /// # Safety
    ///
    /// Every block in the free lists must be unused memory of its class, as
    /// [`Heap::dealloc`] leaves it, and `grow` must return memory no one else uses.
    pub(crate) unsafe fn alloc(
        &mut self,
        layout: Layout,
        grow: impl FnOnce(usize) -> Option<usize>,
    ) -> *mut u8 {
        let Some(class) = class(layout) else {
            return ptr::null_mut();
        };
        let head = self.free[class];
        if head != 0 {
            // SAFETY: a free block of this class starts with its successor's
            // address (see `dealloc`), and is aligned for a `usize`.
            self.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        self.carve(class, grow)
    }

    /// Take a block of `class` from the memory not yet carved, growing it if
    /// needed. Out of line: after the first calls, free lists serve nearly every
    /// block.
    #[cold]
    #[inline(never)]
    fn carve(&mut self, class: usize, grow: impl FnOnce(usize) -> Option<usize>) -> *mut u8 {
        let size = class_size(class);
        // Blocks are aligned to their size (or a page): enough for any layout of
        // their class, as a class is never smaller than its alignment.
        let align = size.min(PAGE);
        if let Some(block) = self.take(size, align) {
            return block;
        }
        // Enough pages for the block however the memory grown so far ends.
        let Some(pages) = size.checked_add(align).map(|bytes| bytes.div_ceil(PAGE)) else {
            return ptr::null_mut();
        };
        let Some((base, grown_end)) =
            grow(pages).and_then(|base| Some((base, base.checked_add(pages.checked_mul(PAGE)?)?)))
        else {
            return ptr::null_mut();
        };
        // Memory grown right after ours extends it; anything else starts afresh
        // (the tail left behind is never used).
        if base != self.end {
            self.next = base;
        }
        self.end = grown_end;
        self.take(size, align).unwrap_or(ptr::null_mut())
    }

    /// A block of `size` bytes at `align` from the memory not yet carved, if it
    /// holds one.
    fn take(&mut self, size: usize, align: usize) -> Option<*mut u8> {
        let start = self.next.checked_next_multiple_of(align)?;
        let end = start.checked_add(size).filter(|end| *end <= self.end)?;
        self.next = end;
        Some(start as *mut u8)
    }

    /// Give a block back to its class.
    ///
    /// # Safety
    ///
    /// `block` must come from [`Heap::alloc`] of this heap with the same layout,
    /// and must not be used afterwards.
    pub(crate) unsafe fn dealloc(&mut self, block: *mut u8, layout: Layout) {
        let Some(class) = class(layout) else {
            return;
        };
        // SAFETY: the block is ours, unused from now on, at least 16 bytes and
        // aligned to at least 16: room for the link.
        unsafe { *(block as *mut usize) = self.free[class] };
        self.free[class] = block as usize;
    }

    /// Whether a block for `old` also serves `new` (same class): a reallocation
    /// within a class keeps its block.
    pub(crate) fn same_class(old: Layout, new: Layout) -> bool {
        class(old).is_some() && class(old) == class(new)
    }
}

/// The size class of a layout: the smallest power of two that holds its size
/// and honours its alignment. `None` for alignments over a page, or sizes over
/// the largest class.
fn class(layout: Layout) -> Option<usize> {
    if layout.align() > PAGE {
        return None;
    }
    let size = layout
        .size()
        .max(layout.align())
        .max(1 << MIN_CLASS_BITS)
        .checked_next_power_of_two()?;
    let class = (size.trailing_zeros() - MIN_CLASS_BITS) as usize;
    (class < CLASSES).then_some(class)
}

fn class_size(class: usize) -> usize {
    1 << (class as u32 + MIN_CLASS_BITS)
}

/// The global allocator of a component: a [`Heap`] over the module's memory.
#[cfg(target_arch = "wasm32")]
pub(crate) struct Allocator(core::cell::UnsafeCell<Heap>);

#[cfg(target_arch = "wasm32")]
impl Allocator {
    /// An allocator that has grown no memory yet.
    pub(crate) const fn new() -> Allocator {
        Allocator(core::cell::UnsafeCell::new(Heap::new()))
    }

    /// The heap, for one call at a time.
    ///
    /// # Safety
    ///
    /// No other reference to the heap may be live: a component runs on one
    /// thread and the heap never calls back into the allocator.
    #[allow(clippy::mut_from_ref, reason = "the allocator is never re-entered")]
    unsafe fn heap(&self) -> &mut Heap {
        // SAFETY: as the caller guarantees.
        unsafe { &mut *self.0.get() }
    }
}

// SAFETY: a wasm32 component has one thread.
#[cfg(target_arch = "wasm32")]
unsafe impl Sync for Allocator {}

#[cfg(target_arch = "wasm32")]
// SAFETY: blocks come from `Heap`, which never hands out a block twice; they
// are aligned for and at least as large as their layout.
unsafe impl core::alloc::GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: one call at a time, and grown memory belongs to the heap alone.
        unsafe { self.heap().alloc(layout, grow) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: the caller hands back a block of ours with its layout.
        unsafe { self.heap().dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        if Heap::same_class(layout, new_layout) {
            return block;
        }
        // SAFETY: a fresh block for the new layout; the old one is copied up to
        // the shorter length and given back, as `realloc`'s contract allows.
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
            moved
        }
    }
}

/// Grow the module's memory by `pages`: the address of the first new page.
#[cfg(target_arch = "wasm32")]
fn grow(pages: usize) -> Option<usize> {
    let previous = core::arch::wasm32::memory_grow(0, pages);
    (previous != usize::MAX).then(|| previous * PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Pages of a buffer, handed out in order like `memory.grow`.
    struct Memory {
        buffer: Vec<u8>,
        base: usize,
        pages: usize,
        used: usize,
    }

    impl Memory {
        fn new(pages: usize) -> Memory {
            let mut buffer = alloc::vec![0u8; (pages + 1) * PAGE];
            let base = (buffer.as_mut_ptr() as usize).next_multiple_of(PAGE);
            Memory {
                buffer,
                base,
                pages,
                used: 0,
            }
        }

        fn grow(&mut self, pages: usize) -> Option<usize> {
            if self.used + pages > self.pages {
                return None;
            }
            let at = self.base + self.used * PAGE;
            self.used += pages;
            Some(at)
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes_hold_size_and_alignment() {
        assert_eq!(class(layout(1, 1)), Some(0));
        assert_eq!(class(layout(16, 1)), Some(0));
        assert_eq!(class(layout(17, 1)), Some(1));
        assert_eq!(class(layout(8, 64)), Some(2));
        assert_eq!(class(layout(PAGE, 1)), Some(12));
        assert_eq!(class(layout(1, PAGE * 2)), None);
        assert_eq!(class(layout(usize::MAX / 2, 1)), None);
    }

    #[test]
    fn reallocation_keeps_a_block_within_its_class() {
        assert!(Heap::same_class(layout(20, 1), layout(32, 1)));
        assert!(Heap::same_class(layout(1, 1), layout(16, 8)));
        assert!(!Heap::same_class(layout(32, 1), layout(33, 1)));
        assert!(!Heap::same_class(layout(1, PAGE * 2), layout(1, PAGE * 2)));
    }

    #[test]
    fn freed_blocks_are_reused_within_their_class() {
        let mut memory = Memory::new(4);
        let mut heap = Heap::new();
        // SAFETY: blocks are used only between their alloc and dealloc.
        unsafe {
            let a = heap.alloc(layout(10, 1), |pages| memory.grow(pages));
            let b = heap.alloc(layout(10, 1), |pages| memory.grow(pages));
            assert_ne!(a, b);
            heap.dealloc(a, layout(10, 1));
            let c = heap.alloc(layout(100, 8), |pages| memory.grow(pages));
            assert_ne!(c, a);
            let d = heap.alloc(layout(12, 4), |pages| memory.grow(pages));
            assert_eq!(d, a);
        }
        assert_eq!(memory.used, 1);
    }

    #[test]
    fn failing_growth_is_null() {
        let mut memory = Memory::new(1);
        let mut heap = Heap::new();
        // SAFETY: nothing is written to the blocks.
        unsafe {
            assert!(
                heap.alloc(layout(PAGE * 2, 8), |pages| memory.grow(pages))
                    .is_null()
            );
            assert!(
                !heap
                    .alloc(layout(100, 8), |pages| memory.grow(pages))
                    .is_null()
            );
        }
    }

    proptest::proptest! {
        /// Random allocations and frees: live blocks never overlap, are aligned,
        /// lie in grown memory and keep what was written to them.
        #[test]
        fn live_blocks_never_overlap(ops in proptest::collection::vec((0usize..5000, 0u32..7, proptest::bool::ANY), 1..300)) {
            let mut memory = Memory::new(64);
            let mut heap = Heap::new();
            let mut live: Vec<(usize, Layout, u8)> = Vec::new();
            for (index, (size, align_bits, free)) in ops.into_iter().enumerate() {
                if free && !live.is_empty() {
                    let (block, layout, mark) = live.swap_remove(size % live.len());
                    // SAFETY: the block is live, of this layout, and dropped from `live`.
                    unsafe {
                        proptest::prop_assert!((0..layout.size()).all(|at| *((block + at) as *const u8) == mark));
                        heap.dealloc(block as *mut u8, layout);
                    }
                    continue;
                }
                let layout = layout(size.max(1), 1 << align_bits);
                // SAFETY: the block is written within its size only, while live.
                let block = unsafe { heap.alloc(layout, |pages| memory.grow(pages)) } as usize;
                proptest::prop_assert!(block != 0);
                proptest::prop_assert_eq!(block % layout.align(), 0);
                proptest::prop_assert!(block >= memory.base && block + layout.size() <= memory.base + memory.used * PAGE);
                for (other, other_layout, _) in &live {
                    proptest::prop_assert!(block + layout.size() <= *other || other + other_layout.size() <= block);
                }
                let mark = index as u8;
                // SAFETY: the block is ours and `layout.size()` long.
                unsafe { ptr::write_bytes(block as *mut u8, mark, layout.size()) };
                live.push((block, layout, mark));
            }
            drop(memory.buffer);
        }
    }
}
