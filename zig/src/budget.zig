//! The byte budget's geometry (issue 10, design10.md §3): from the options a
//! user gives (`maxBytes`, or the legacy `capacity` + `maxKeyBytes` +
//! `maxValueBytes`) to the region's layout:
//!
//!   [header 4 KiB][counter lines 256 KiB][table: table_capacity × u64][arena: granules × 64 B]
//!
//! The whole region is maxBytes (rounded down to a page). The table gets
//! floorpow2(region_bytes / 128) buckets by default (3.1–6.25 % of the
//! budget) and the default capacity is half of them (load <= 1/2, as the
//! table's probe bound assumes). One entry takes 1 + ceil((key + value) /
//! 64) granules; the largest (g_max) must be at most an eighth of the arena,
//! which bounds what one set can evict (alloc.zig).
//!
//! STATUS: written and unit-tested on branch i10s (issue 10 part B); region.zig
//! does not use it yet.

const std = @import("std");
const assert = std.debug.assert;

pub const page_bytes: u64 = 4096;
pub const header_bytes: u64 = 4096;
pub const counters_bytes: u64 = 4096 * 64;
pub const granule_bytes: u64 = 64;
pub const max_bytes_min: u64 = 1 << 20;
pub const max_bytes_max: u64 = 256 << 30;
pub const key_bytes_default: u32 = 256;
pub const value_bytes_default_max: u32 = 1 << 20;
pub const granules_max: u64 = 0xffff_fffe;

pub const Options = struct {
    max_bytes: ?u64 = null,
    capacity: ?u32 = null,
    key_bytes_max: ?u32 = null,
    value_bytes_max: ?u32 = null,
};

pub const Geometry = struct {
    region_bytes: u64,
    table_capacity: u32,
    capacity: u32,
    key_bytes_max: u32,
    value_bytes_max: u32,
    arena_offset: u64,
    granules: u32,
};

pub const Error = error{
    /// Neither maxBytes nor the legacy three options.
    NoSize,
    /// maxBytes outside [1 MiB, 256 GiB].
    MaxBytesRange,
    /// The table for `capacity` is more than a quarter of maxBytes.
    TableTooLarge,
    /// The largest entry is more than an eighth of the arena.
    ValueTooLarge,
    /// A key or value limit of 0.
    ZeroLimit,
};

pub fn entry_granules(key: u64, value: u64) u64 {
    return 1 + (key + value + granule_bytes - 1) / granule_bytes;
}

fn floor_pow2(x: u64) u64 {
    assert(x >= 1);
    return @as(u64, 1) << @intCast(63 - @clz(x));
}

fn ceil_pow2(x: u64) u64 {
    assert(x >= 1);
    return std.math.ceilPowerOfTwo(u64, x) catch unreachable;
}

/// maxBytes for the legacy options: `capacity` entries of the largest size
/// always fit (today's guarantee), plus the fixed parts.
pub fn legacy_max_bytes(capacity: u32, key: u32, value: u32) u64 {
    assert(capacity >= 1);
    const table = ceil_pow2(2 * @as(u64, capacity)) * 8;
    const arena = @max(@as(u64, capacity), 8) * entry_granules(key, value) * granule_bytes;
    return std.mem.alignForward(u64, header_bytes + counters_bytes + table + arena, page_bytes);
}

pub fn geometry(o: Options) Error!Geometry {
    const key = o.key_bytes_max orelse key_bytes_default;
    if (key == 0 or o.value_bytes_max == @as(?u32, 0) or o.capacity == @as(?u32, 0)) return error.ZeroLimit;
    const max_bytes = o.max_bytes orelse blk: {
        const capacity = o.capacity orelse return error.NoSize;
        const value = o.value_bytes_max orelse return error.NoSize;
        break :blk legacy_max_bytes(capacity, key, value);
    };
    // The 1 MiB floor is for a budget the user gave: legacy options size
    // the region themselves, small caches included, as before.
    const floor = if (o.max_bytes != null) max_bytes_min else page_bytes;
    if (max_bytes < floor or max_bytes > max_bytes_max) return error.MaxBytesRange;
    const region_bytes = max_bytes / page_bytes * page_bytes;
    const table_capacity: u64 = if (o.capacity) |c| ceil_pow2(2 * @as(u64, c)) else floor_pow2(region_bytes / 128);
    if (table_capacity * 8 > region_bytes / 4) return error.TableTooLarge;
    const arena_offset = header_bytes + counters_bytes + table_capacity * 8;
    assert(arena_offset % granule_bytes == 0);
    const granules = @min((region_bytes - arena_offset) / granule_bytes, granules_max);
    const g_allowed = granules / 8;
    const value: u64 = o.value_bytes_max orelse blk: {
        // The largest value whose entry fits an eighth of the arena.
        const fits = (g_allowed -| 1) * granule_bytes -| key;
        break :blk @min(value_bytes_default_max, fits);
    };
    if (value == 0 or entry_granules(key, value) > g_allowed) return error.ValueTooLarge;
    return .{
        .region_bytes = region_bytes,
        .table_capacity = @intCast(table_capacity),
        .capacity = o.capacity orelse @intCast(table_capacity / 2),
        .key_bytes_max = key,
        .value_bytes_max = @intCast(value),
        .arena_offset = arena_offset,
        .granules = @intCast(granules),
    };
}

const testing = std.testing;

test "maxBytes alone: table, default capacity, maxKeyBytes 256 and maxValueBytes min(1 MiB, arena/8)" {
    const g = try geometry(.{ .max_bytes = 64 << 20 });
    try testing.expectEqual(@as(u64, 64 << 20), g.region_bytes);
    try testing.expectEqual(@as(u32, 1 << 19), g.table_capacity);
    try testing.expectEqual(@as(u32, 1 << 18), g.capacity);
    try testing.expectEqual(@as(u32, 256), g.key_bytes_max);
    try testing.expectEqual(@as(u32, 1 << 20), g.value_bytes_max);
    try testing.expect(entry_granules(g.key_bytes_max, g.value_bytes_max) <= g.granules / 8);
    // A small budget: the value limit shrinks to an eighth of the arena.
    const small = try geometry(.{ .max_bytes = 4 << 20 });
    try testing.expect(small.value_bytes_max < 1 << 20);
    try testing.expect(entry_granules(small.key_bytes_max, small.value_bytes_max) <= small.granules / 8);
    try testing.expect(entry_granules(small.key_bytes_max, small.value_bytes_max + 64) > small.granules / 8);
}

test "legacy options hold capacity entries of the largest size" {
    const g = try geometry(.{ .capacity = 1000, .key_bytes_max = 64, .value_bytes_max = 256 });
    try testing.expectEqual(@as(u32, 1000), g.capacity);
    try testing.expectEqual(@as(u32, 2048), g.table_capacity);
    try testing.expect(g.granules >= 1000 * entry_granules(64, 256));
    try testing.expect(g.granules / 8 >= entry_granules(64, 256));
    // A tiny legacy cache still opens (no 1 MiB floor for legacy options).
    const tiny = try geometry(.{ .capacity = 4, .key_bytes_max = 16, .value_bytes_max = 16 });
    try testing.expect(tiny.granules >= 8 * entry_granules(16, 16));
}

test "limits: range, table over a quarter, value over an eighth, no size" {
    try testing.expectError(error.MaxBytesRange, geometry(.{ .max_bytes = 1 << 19 }));
    try testing.expectError(error.MaxBytesRange, geometry(.{ .max_bytes = 512 << 30 }));
    try testing.expectError(error.TableTooLarge, geometry(.{ .max_bytes = 64 << 20, .capacity = 10_000_000 }));
    try testing.expectError(error.ValueTooLarge, geometry(.{ .max_bytes = 4 << 20, .value_bytes_max = 4 << 20 }));
    try testing.expectError(error.NoSize, geometry(.{ .capacity = 10 }));
    try testing.expectError(error.ZeroLimit, geometry(.{ .max_bytes = 4 << 20, .key_bytes_max = 0 }));
}
