//! Per-handle counters in the region: how every handle counts its reads
//! without writing a cache line that another process writes, and how anyone
//! reads the whole cache's totals.
//!
//! Each handle owns the counter line of its liveness slot (region.Counters,
//! one 64-byte line per slot number). Invariants and why they hold:
//! - One writer per line. On Linux a liveness slot is an OFD byte lock held
//!   by exactly one open handle (liveness.zig), so only that handle bumps
//!   the line, from the one thread that uses it at a time: a bump is a
//!   Monotonic load and a Monotonic store of the sum, no read-modify-write
//!   instruction, and a hit stays as cheap as a write to process memory.
//!   On macOS the handles of one process share their slot (record locks are
//!   per process), so there a bump is an atomic add (`bump` picks once).
//! - Nothing is lost at a change of owner. A line is never reset: the next
//!   handle to claim the slot keeps adding to it. Its claim follows the
//!   previous owner's end (close, or death, which the kernel observes when
//!   it drops the byte lock) through the fcntl calls on the same lock, which
//!   the kernel serializes, so the new owner's first load sees the last
//!   store of the old one. So the sum over all lines is the total of every
//!   handle that ever opened the cache: live, closed or dead, with no fold
//!   step for a crash to tear.
//! - A reader summing the lines (stats of the whole cache) loads each field
//!   with a Monotonic load: each value is one that was stored (no tearing of
//!   an aligned u64), and each only grows, so the sum is a momentary lower
//!   bound of the truth, never a mix of two states of one field.
//! - The file is untrusted: a corrupt line can hold any value. Sums and
//!   differences wrap (+%, -%), so garbage gives wrong figures, never a trap.

const std = @import("std");
const assert = std.debug.assert;
const region = @import("region.zig");
const sys = @import("sys.zig");
const liveness = @import("liveness.zig");

comptime {
    assert(liveness.slots_max < region.counter_lines);
}

/// The counted fields, in the order of the stats vector (exports.zig).
pub const Field = enum { hits, misses, memo_hits, read_timeouts, lock_timeouts, dropped_writes, unstored_results };
pub const fields_len = @typeInfo(Field).@"enum".field_names.len;

/// The counts, as a plain value (a snapshot or a sum).
pub const Values = [fields_len]u64;

/// Adds one to `field` of the handle's own line.
pub inline fn bump(line: *region.Counters, comptime field: Field) void {
    add(line, field, 1);
}

/// Adds `n` to `field` of the handle's own line.
pub inline fn add(line: *region.Counters, comptime field: Field, n: u64) void {
    const ptr = &@field(line, @tagName(field));
    if (sys.is_linux) {
        // Monotonic load and store: this handle is the line's only writer,
        // so no other store can fall between them; readers need only
        // untorn values, which an aligned atomic store gives.
        const v = @atomicLoad(u64, ptr, .monotonic);
        @atomicStore(u64, ptr, v +% n, .monotonic);
    } else {
        // Monotonic add: the handles of this process share the line.
        _ = @atomicRmw(u64, ptr, .Add, n, .monotonic);
    }
}

/// The line's counts now (Monotonic loads: see the top of the file).
pub fn load(line: *const region.Counters) Values {
    var out: Values = undefined;
    inline for (@typeInfo(Field).@"enum".field_names, 0..) |f, i| {
        out[i] = @atomicLoad(u64, &@field(line, f), .monotonic);
    }
    return out;
}

/// What the line counted since `base` (this handle's own counts).
pub fn since(line: *const region.Counters, base: Values) Values {
    var out = load(line);
    for (&out, base) |*v, b| v.* -%= b;
    return out;
}

/// The sum over every slot's line: every handle that ever had the cache
/// open. Bound: slots_max lines of fields_len loads each.
pub fn sum(memory: []u8, geo: region.Geometry) Values {
    assert(memory.len >= geo.table_offset);
    var total: Values = @splat(0);
    var slot: u32 = 1;
    while (slot <= liveness.slots_max) : (slot += 1) {
        const values = load(region.counters_line(memory, geo, slot));
        for (&total, values) |*t, v| t.* +%= v;
    }
    return total;
}

/// Called once by a handle that has just claimed `slot`: records its PID
/// and returns the line's counts so far (its base).
pub fn claim(line: *region.Counters, pid: u32) Values {
    // Monotonic: diagnostics only (`shm-cache ls` shows it).
    @atomicStore(u32, &line.pid, pid, .monotonic);
    return load(line);
}

test "a line counts on from its previous owner; sums wrap" {
    const geo = try region.geometry(4, 8, 8, 0);
    const memory = try std.testing.allocator.alignedAlloc(u8, .fromByteUnits(sys.page_size), @intCast(geo.region_bytes));
    defer std.testing.allocator.free(memory);
    @memset(memory, 0);
    const a = region.counters_line(memory, geo, 7);
    _ = claim(a, 100);
    bump(a, .hits);
    bump(a, .hits);
    bump(a, .misses);
    // The owner closes; the next handle on slot 7 starts from its counts.
    const base = claim(a, 200);
    try std.testing.expectEqual(@as(u64, 2), base[@backingInt(Field.hits)]);
    bump(a, .hits);
    try std.testing.expectEqual(@as(u64, 1), since(a, base)[@backingInt(Field.hits)]);
    const b = region.counters_line(memory, geo, liveness.slots_max);
    b.dropped_writes = std.math.maxInt(u64);
    bump(b, .memo_hits);
    const total = sum(memory, geo);
    try std.testing.expectEqual(@as(u64, 3), total[@backingInt(Field.hits)]);
    try std.testing.expectEqual(@as(u64, 1), total[@backingInt(Field.misses)]);
    try std.testing.expectEqual(@as(u64, 1), total[@backingInt(Field.memo_hits)]);
    try std.testing.expectEqual(std.math.maxInt(u64), total[@backingInt(Field.dropped_writes)]);
    bump(b, .dropped_writes);
    try std.testing.expectEqual(@as(u64, 0), sum(memory, geo)[@backingInt(Field.dropped_writes)]);
}
