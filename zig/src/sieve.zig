//! SIEVE eviction (Zhang et al., NSDI '24) over a FIFO list of live slots.
//!
//! New entries go to the head; the hand walks from the tail (oldest) toward
//! the head. A hit only sets the slot's `visited` byte (a lock-free reader's
//! single store, no list movement). To evict, the hand clears visited bytes
//! as it passes and stops at the first unvisited (or expired) entry; past
//! the head it wraps to the tail. One full pass clears every bit, so a
//! victim is found within 2 * count + 1 steps: that is the loop bound (past
//! it, which only concurrent readers re-setting bits can cause, the entry
//! under the hand is taken).
//!
//! List links are read from the untrusted file: every index is checked
//! against the capacity, and a broken link returns error.Corrupt so the
//! caller rebuilds the structure instead of following it.

const std = @import("std");
const assert = std.debug.assert;
const region = @import("region.zig");
const Handle = @import("handle.zig").Handle;

pub const Corrupt = error{Corrupt};

fn check(h: *const Handle, index: u32) Corrupt!u32 {
    if (index != region.nil and index >= h.geo.capacity) return error.Corrupt;
    return index;
}

/// Links `index` in as the newest entry. Writers only, seq odd.
pub fn push_head(h: *const Handle, index: u32) Corrupt!void {
    const header = h.header();
    const s = h.slot(index);
    const old_head = try check(h, header.fifo_head);
    s.prev = region.nil;
    s.next = old_head;
    if (old_head == region.nil) {
        header.fifo_tail = index;
    } else {
        h.slot(old_head).prev = index;
    }
    header.fifo_head = index;
}

/// Links `index` in as the oldest entry (used by rebuild, newest first).
pub fn push_tail(h: *const Handle, index: u32) Corrupt!void {
    const header = h.header();
    const s = h.slot(index);
    const old_tail = try check(h, header.fifo_tail);
    s.next = region.nil;
    s.prev = old_tail;
    if (old_tail == region.nil) {
        header.fifo_head = index;
    } else {
        h.slot(old_tail).next = index;
    }
    header.fifo_tail = index;
}

/// Unlinks `index`; moves the hand off it first.
pub fn unlink(h: *const Handle, index: u32) Corrupt!void {
    const header = h.header();
    const s = h.slot(index);
    const prev = try check(h, s.prev);
    const next = try check(h, s.next);
    if (header.hand == index) header.hand = prev;
    if (prev == region.nil) {
        if (header.fifo_head != index) return error.Corrupt;
        header.fifo_head = next;
    } else {
        h.slot(prev).next = next;
    }
    if (next == region.nil) {
        if (header.fifo_tail != index) return error.Corrupt;
        header.fifo_tail = prev;
    } else {
        h.slot(next).prev = prev;
    }
    s.prev = region.nil;
    s.next = region.nil;
}

pub const Victim = struct { index: u32, expired: bool };

/// Chooses the entry to evict and leaves the hand just past it (toward the
/// head). Does not remove it. Writers only, seq odd, count > 0.
pub fn choose(h: *const Handle, now_ns: u64) Corrupt!Victim {
    const header = h.header();
    const count = header.count;
    if (count == 0 or count > h.geo.capacity) return error.Corrupt;
    var hand = try check(h, header.hand);
    const steps_max = 2 * @as(u64, count) + 1;
    var step: u64 = 0;
    while (step < steps_max) : (step += 1) {
        if (hand == region.nil) hand = try check(h, header.fifo_tail);
        if (hand == region.nil) return error.Corrupt;
        const s = h.slot(hand);
        const expired = s.expires_ns != 0 and now_ns >= s.expires_ns;
        // Monotonic: the visited byte is advisory and written by readers.
        if (expired or @atomicLoad(u8, &s.visited, .monotonic) == 0) {
            header.hand = try check(h, s.prev);
            return .{ .index = hand, .expired = expired };
        }
        @atomicStore(u8, &s.visited, 0, .monotonic);
        hand = try check(h, s.prev);
    }
    // Readers may set visited bits behind the hand as it walks, so the
    // bound can pass on a consistent list too: take the entry under the hand.
    if (hand == region.nil) hand = try check(h, header.fifo_tail);
    if (hand == region.nil) return error.Corrupt;
    const s = h.slot(hand);
    header.hand = try check(h, s.prev);
    return .{ .index = hand, .expired = s.expires_ns != 0 and now_ns >= s.expires_ns };
}
