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

const testing = std.testing;
const TestMemory = @import("test_region.zig").Memory;

/// Links slots 0..n-1 in, 0 the oldest; marks those in `visited`.
fn fill(h: *const Handle, n: u32, visited: []const u32) !void {
    const header = h.header();
    var i: u32 = 0;
    while (i < n) : (i += 1) {
        try push_head(h, i);
        h.slot(i).expires_ns = 0;
        h.slot(i).visited = 0;
    }
    for (visited) |v| h.slot(v).visited = 1;
    header.count = n;
}

fn visited_bits(h: *const Handle, n: u32) u32 {
    var bits: u32 = 0;
    var i: u32 = 0;
    while (i < n) : (i += 1) bits |= @as(u32, h.slot(i).visited) << @intCast(i);
    return bits;
}

test "the hand passes visited entries, clearing their bits, and evicts the first unvisited one" {
    const m = try TestMemory.init(8);
    defer m.deinit();
    const h = &m.handle;
    try fill(h, 4, &.{ 0, 2 });
    // From the tail: 0 is visited (cleared, kept), 1 is not: the victim.
    const first = try choose(h, 0);
    try testing.expectEqual(@as(u32, 1), first.index);
    try testing.expect(!first.expired);
    try testing.expectEqual(@as(u32, 0b0100), visited_bits(h, 4));
    try testing.expectEqual(@as(u32, 2), h.header().hand);
    try unlink(h, 1);
    h.header().count -= 1;
    // The hand resumes at 2 (visited: cleared), then 3.
    const second = try choose(h, 0);
    try testing.expectEqual(@as(u32, 3), second.index);
    try testing.expectEqual(@as(u32, 0), visited_bits(h, 4));
}

test "with every entry visited, one pass clears every bit and the oldest goes" {
    const m = try TestMemory.init(8);
    defer m.deinit();
    const h = &m.handle;
    try fill(h, 5, &.{ 0, 1, 2, 3, 4 });
    const victim = try choose(h, 0);
    try testing.expectEqual(@as(u32, 0), victim.index);
    try testing.expectEqual(@as(u32, 0), visited_bits(h, 5));
    // The hand stopped just past the victim, toward the head.
    try testing.expectEqual(@as(u32, 1), h.header().hand);
}

test "an expired entry is taken even when visited" {
    const m = try TestMemory.init(8);
    defer m.deinit();
    const h = &m.handle;
    try fill(h, 3, &.{ 0, 1, 2 });
    h.slot(1).expires_ns = 100;
    const victim = try choose(h, 100);
    try testing.expectEqual(@as(u32, 1), victim.index);
    try testing.expect(victim.expired);
    // 0 was passed (cleared); 1 goes as it is; 2 was not reached.
    try testing.expectEqual(@as(u32, 0b110), visited_bits(h, 3));
}

test "unlink keeps the list and the hand consistent" {
    const m = try TestMemory.init(8);
    defer m.deinit();
    const h = &m.handle;
    const header = h.header();
    try fill(h, 3, &.{});
    header.hand = 1;
    try unlink(h, 1); // the hand moves to 1's newer neighbour's side (prev)
    try testing.expectEqual(@as(u32, 2), header.hand);
    try testing.expectEqual(@as(u32, 2), h.slot(0).prev);
    try testing.expectEqual(@as(u32, 0), h.slot(2).next);
    try unlink(h, 0); // the tail
    try testing.expectEqual(@as(u32, 2), header.fifo_tail);
    try unlink(h, 2); // the last one
    try testing.expectEqual(region.nil, header.fifo_head);
    try testing.expectEqual(region.nil, header.fifo_tail);
}

test "a link out of range is reported as Corrupt, never followed" {
    const m = try TestMemory.init(8);
    defer m.deinit();
    const h = &m.handle;
    try fill(h, 3, &.{0});
    h.slot(0).prev = 1000;
    try testing.expectError(error.Corrupt, choose(h, 0));
    h.header().count = 9;
    try testing.expectError(error.Corrupt, choose(h, 0));
    h.header().count = 3;
    h.slot(2).prev = 5; // in range but not the head: unlink sees it
    h.header().fifo_head = 1000;
    try testing.expectError(error.Corrupt, push_head(h, 3));
}
