//! The plugin's global allocator: size-class free lists in front of the
//! system allocator (wasi-libc's dlmalloc).
//!
//! A request crosses the host boundary as a handful of small strings and
//! vectors, each allocated and freed once per call, and dlmalloc costs a few
//! hundred instructions per malloc/free pair, most of a small handler's
//! run time. Here blocks of up to [`MAX_SMALL`] bytes come from per-size
//! free lists (a pop or a push); larger or over-aligned ones go straight to
//! dlmalloc. Freed small blocks stay on their list for reuse and are not
//! returned to dlmalloc, so an instance's memory is bounded by its peak of
//! live small blocks (rounded up to a power of two), still under the
//! host's memory limit.
//!
//! Plugins are single-threaded (`wasm32-wasip2` without the `atomics`
//! feature), which is what makes the unsynchronised lists sound. A plugin
//! that wants its own `#[global_allocator]` turns off the SDK's default
//! `fast-alloc` feature.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Largest block served from a free list.
const MAX_SMALL: usize = 256;
/// Size classes: 8, 16, 32, 64, 128 and 256 bytes.
const CLASSES: usize = 6;
/// Alignment every class block has (dlmalloc gives at least this).
const CLASS_ALIGN: usize = 8;

/// The size class of `layout`, if it is served from a free list.
#[inline]
fn class(size: usize, align: usize) -> Option<usize> {
    if size > MAX_SMALL || align > CLASS_ALIGN {
        return None;
    }
    Some(size.max(8).next_power_of_two().trailing_zeros() as usize - 3)
}

/// See the module documentation.
pub struct PluginAlloc {
    /// Head of each class's free list; a free block's first word points to
    /// the next one.
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: only compiled for single-threaded wasm (see `lib.rs`), so the
// lists are never touched from two threads.
unsafe impl Sync for PluginAlloc {}

impl PluginAlloc {
    pub const fn new() -> Self {
        Self {
            free: UnsafeCell::new([ptr::null_mut(); CLASSES]),
        }
    }
}

impl Default for PluginAlloc {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for PluginAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(layout.size(), layout.align()) else {
            // SAFETY: forwarded as given.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: single-threaded, and no reference to the lists outlives
        // this call.
        let free = unsafe { &mut *self.free.get() };
        let head = free[c];
        if head.is_null() {
            // SAFETY: a non-zero size and a power-of-two alignment.
            unsafe { System.alloc(Layout::from_size_align_unchecked(8 << c, CLASS_ALIGN)) }
        } else {
            // SAFETY: `head` is a free block of this class; its first word
            // holds the next free block.
            free[c] = unsafe { head.cast::<*mut u8>().read() };
            head
        }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(c) = class(layout.size(), layout.align()) else {
            // SAFETY: it came from `System.alloc` with this layout.
            return unsafe { System.dealloc(block, layout) };
        };
        // SAFETY: as in `alloc`; the block is at least 8 bytes and 8-aligned,
        // and no longer used by the caller.
        unsafe {
            let free = &mut *self.free.get();
            block.cast::<*mut u8>().write(free[c]);
            free[c] = block;
        }
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = class(layout.size(), layout.align());
        let new = class(new_size, layout.align());
        match (old, new) {
            // The class block already has room.
            (Some(a), Some(b)) if a == b => block,
            // SAFETY: it came from `System.alloc` with this layout.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: the caller guarantees a valid `new_size` for this
                // alignment; the copy stays within both blocks.
                unsafe {
                    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    #[test]
    fn size_classes() {
        assert_eq!(class(0, 1), Some(0));
        assert_eq!(class(8, 8), Some(0));
        assert_eq!(class(9, 1), Some(1));
        assert_eq!(class(17, 4), Some(2));
        assert_eq!(class(256, 8), Some(5));
        assert_eq!(class(257, 1), None);
        assert_eq!(class(8, 16), None);
    }

    #[test]
    fn blocks_are_reused_and_realloc_keeps_data() {
        let a = PluginAlloc::new();
        unsafe {
            let l = Layout::from_size_align(24, 8).unwrap();
            let p = a.alloc(l);
            p.write_bytes(7, 24);
            a.dealloc(p, l);
            let q = a.alloc(Layout::from_size_align(20, 4).unwrap());
            assert_eq!(p, q, "same class, same block");
            // Within the class: same block; across: moved with its bytes.
            let q = a.realloc(q, Layout::from_size_align(20, 4).unwrap(), 32);
            assert_eq!(p, q);
            q.write_bytes(9, 32);
            let r = a.realloc(q, Layout::from_size_align(32, 4).unwrap(), 300);
            assert_ne!(r, q);
            assert!(std::slice::from_raw_parts(r, 32).iter().all(|&b| b == 9));
            let s = a.realloc(r, Layout::from_size_align(300, 4).unwrap(), 10);
            assert!(std::slice::from_raw_parts(s, 10).iter().all(|&b| b == 9));
            a.dealloc(s, Layout::from_size_align(10, 4).unwrap());
        }
    }
}
