//! Rebuild: every derived structure (table, FIFO list, free list, count,
//! hand) recomputed from the live slots, after a writer died mid-mutation
//! or a writer found the structure inconsistent; and the reset of a region
//! nobody has open. See write.zig for why that is all a crash needs.

const std = @import("std");
const assert = std.debug.assert;
const region = @import("region.zig");
const table = @import("table.zig");
const sieve = @import("sieve.zig");
const seqlock = @import("seqlock.zig");
const lock = @import("lock.zig");
const liveness = @import("liveness.zig");
const sys = @import("sys.zig");
const Handle = @import("handle.zig").Handle;
const counters = @import("counters.zig");
const abi = @import("abi.zig");
const faults = @import("faults.zig");

const entries = @import("entry.zig");
const key_hash = entries.key_hash;
const slot_checksum = entries.slot_checksum;
const slot_live = entries.slot_live;
const slot_key_eql = entries.slot_key_eql;
const find_key = entries.find_key;
const unexpired = entries.unexpired;

pub fn reset_derived(h: *Handle) void {
    const header = h.header();
    header.free_head = region.nil;
    header.fifo_head = region.nil;
    header.fifo_tail = region.nil;
    header.hand = region.nil;
    header.count = 0;
    table.clear(h);
}

/// Empties a region nobody has open (files.zig checks, under the creation
/// lock): entries, derived state, a stale odd seq and a stale lock word.
pub fn reset_region(memory: []u8, geo: region.Geometry) void {
    const header: *region.Header = @ptrCast(@alignCast(memory.ptr));
    header.high_water = 0;
    header.free_head = region.nil;
    header.fifo_head = region.nil;
    header.fifo_tail = region.nil;
    header.hand = region.nil;
    header.count = 0;
    const table_start: usize = @intCast(geo.table_offset);
    @memset(memory[table_start..][0 .. @as(usize, geo.table_capacity) * 8], 0);
    const word = header.lock_word;
    header.lock_word = lock.word_make(lock.word_generation(word) +% 1, 0, 0);
    header.seq = (header.seq +% 1) & ~@as(u64, 1);
}


const Live = struct { stamp: u64, index: u32 };

fn newer_first(_: void, a: Live, b: Live) bool {
    return a.stamp > b.stamp;
}

/// Recomputes every derived structure from the live slots. Caller holds
/// the lock with seq odd. Bounded: one pass over high_water slots plus a
/// sort; allocates one array of live slots (if that fails, slot order
/// replaces insertion order, which only affects eviction order).
pub fn rebuild(h: *Handle) void {
    const header = h.header();
    assert(h.lock_held);
    if (header.high_water > h.geo.capacity) header.high_water = h.geo.capacity;
    const high_water = header.high_water;
    reset_derived(h);
    var stamp_max: u64 = 0;
    const list_opt = std.heap.c_allocator.alloc(Live, high_water) catch null;
    defer if (list_opt) |list| std.heap.c_allocator.free(list);
    var n: usize = 0;
    var index: u32 = 0;
    while (index < high_water) : (index += 1) {
        if (slot_live(h, index)) {
            const s = h.slot(index);
            stamp_max = @max(stamp_max, s.stamp);
            if (list_opt) |list| {
                list[n] = .{ .stamp = s.stamp, .index = index };
                n += 1;
            } else {
                relink(h, index);
            }
        } else {
            free_slot(h, index);
        }
    }
    if (list_opt) |list| {
        std.mem.sort(Live, list[0..n], {}, newer_first);
        for (list[0..n]) |live| relink(h, live.index);
    }
    header.stamp_next = @max(header.stamp_next, stamp_max +% 1);
    header.rebuilds +%= 1;
}

fn free_slot(h: *Handle, index: u32) void {
    const header = h.header();
    const s = h.slot(index);
    @atomicStore(u8, &s.state, region.slot_free, .monotonic);
    s.next = header.free_head;
    s.prev = region.nil;
    header.free_head = index;
}

/// Links a live slot back in, newest first (so it goes to the tail); an
/// older duplicate of a key already linked is freed.
fn relink(h: *Handle, index: u32) void {
    const header = h.header();
    const s = h.slot(index);
    const key = h.slot_key(index)[0..s.key_len];
    if (find_key(h, s.hash, key) != null) return free_slot(h, index);
    // No room within the probe bound (keys crafted to collide; relinking
    // newest first may lay a crowded run out differently than the inserts
    // did): the entry is dropped. The newest entries are linked first, so
    // the oldest are the ones dropped.
    if (!table.insert(h, region.hash_tag(s.hash), index)) return free_slot(h, index);
    // Cannot fail: the list links were reset, so every link is nil or in
    // range.
    sieve.push_tail(h, index) catch unreachable;
    header.count += 1;
}
