//! The layout of a cache region: one memory-mapped file shared by every
//! process that opens the cache.
//!
//!   [ header: 4096 bytes ][ counters: 4096 × 64 bytes ][ table: table_capacity × u64 ]
//!   [ slots: capacity × slot_bytes ]
//!
//! The counters are one cache line per liveness slot (liveness.zig): the
//! handle holding slot k is the only writer of line k (counters.zig), so a
//! read hit writes no cache line that another process writes.
//!
//! Invariants (each holds whenever `seq` is even and nobody holds the lock
//! mid-mutation; crash recovery re-establishes them from the slots alone):
//! - A slot is *live* iff `state == occupied`, its lengths are within the
//!   limits and its checksum matches. Live slots are exactly the slots linked
//!   in the FIFO list and referenced by exactly one table bucket; every other
//!   slot below `high_water` is on the free list.
//! - The table, the FIFO list, the free list, `count` and `hand` are derived
//!   state: `rebuild.zig` recomputes all of them from the live slots. That
//!   is what makes a writer's death at any instruction recoverable.
//!
//! The file is untrusted input: nothing read from it is used as an offset or
//! a length before it is checked against the geometry, which itself is
//! recomputed by `geometry` (from the caller's options, or from the header's
//! four configuration fields when the caller attaches without them) and
//! then compared with every derived field of the header and the file size.
//! A stale or torn read by a lock-free reader costs only a retry: readers
//! validate through the seqlock before they return anything.

const std = @import("std");
const assert = std.debug.assert;

pub const magic: u64 = 0x4548_4341_434D_4853; // "SHMCACHE", little endian
/// Changes whenever the layout, the locking protocol or the slot checksum
/// changes (4: the checksum is XxHash64; 5: per-handle counter lines;
/// 6: the header records the value codec, and values may use the tags of
/// lib/codec.ts that format 5 did not know; 7: the `retired` word, which
/// every handle checks on every operation).
pub const format: u32 = 7;
/// Written last by a creator; a region without it was never finished.
pub const initialized_done: u32 = 0x494E_4954; // "INIT"

pub const nil: u32 = std.math.maxInt(u32);
pub const header_bytes: u64 = 4096;
pub const line_bytes = 64;
/// One counter line per liveness slot number (1..4095; line 0 is unused,
/// slot 0 means "no owner"). liveness.zig asserts slots_max < counter_lines.
pub const counter_lines: u32 = 4096;
pub const counters_bytes: u64 = @as(u64, counter_lines) * line_bytes;

pub const capacity_max: u32 = 1 << 26;
/// lib/codec.ts `CODEC_NAMES`, by number.
pub const codec_names = [_][]const u8{ "json", "structured" };
pub const key_bytes_max: u32 = 1 << 16;
pub const value_bytes_max: u32 = 1 << 27;
pub const region_bytes_max: u64 = 1 << 40;

pub const Header = extern struct {
    // Line 0: configuration, written once by the creator, then read-only.
    magic: u64,
    format: u32,
    initialized: u32,
    capacity: u32,
    table_capacity: u32,
    key_bytes_max: u32,
    value_bytes_max: u32,
    slot_bytes: u32,
    /// How lib/codec.ts encodes values (an index of codec_names): processes
    /// that disagreed would misread each other's values, so open compares it.
    codec: u32,
    ttl_ms: u64,
    region_bytes: u64,
    /// Identifies the boot that wrote the TTLs (CLOCK_MONOTONIC restarts at
    /// each boot): a region found from an earlier boot is emptied at open.
    boot_id: u64,

    // Line 1: the seqlock counter, read by every reader; written by writers.
    seq: u64,
    /// Non-zero once this region is no longer the cache's (`Retired`):
    /// written once, by `destroy` (retired_destroyed) or by an open with
    /// onMismatch "replace" (retired_replaced), under the file's creation
    /// lock but not the writer lock. On the seq line because every reader
    /// loads that line anyway, so checking it on every operation costs no
    /// extra cache miss (watch.zig).
    retired: u32,
    pad1: [line_bytes - 12]u8,

    // Line 2: the writer lock word (lock.zig), apart from seq so that lock
    // traffic does not invalidate the readers' line more than needed.
    lock_word: u64,
    pad2: [line_bytes - 8]u8,

    // Line 3: structure state, written only under the lock with seq odd.
    count: u32,
    high_water: u32,
    free_head: u32,
    fifo_head: u32, // newest entry
    fifo_tail: u32, // oldest entry
    hand: u32, // SIEVE hand, nil = start at the tail
    stamp_next: u64,
    pad3: [line_bytes - 32]u8,

    // Line 4: shared counters, written only by the lock holder. Per-read
    // counters (hits, misses, ...) live in each handle's own counter line
    // instead (Counters), so a hit writes no shared cache line.
    sets: u64,
    deletes: u64,
    evictions: u64,
    expirations: u64,
    recoveries: u64,
    rebuilds: u64,
    pad4: [line_bytes - 48]u8,
};

comptime {
    assert(@sizeOf(Header) == 5 * line_bytes);
    assert(@sizeOf(Header) <= header_bytes);
    assert(@offsetOf(Header, "seq") == 1 * line_bytes);
    assert(@offsetOf(Header, "retired") == 1 * line_bytes + 8);
    assert(@offsetOf(Header, "lock_word") == 2 * line_bytes);
    assert(@offsetOf(Header, "count") == 3 * line_bytes);
    assert(@offsetOf(Header, "sets") == 4 * line_bytes);
}

/// One handle's counters: the line of its liveness slot. Written only by
/// the handle holding that slot (counters.zig says how and in what order),
/// read by anyone who sums the cache's stats. A line is never reset: a
/// handle that claims a slot keeps adding to what the slot's earlier
/// handles (closed, or dead) counted, so the sum over all lines is the
/// total of every handle that ever had the cache open, with no fold step
/// that a crash could tear. A handle reports its own counts as the
/// difference from the line's values when it opened.
pub const Counters = extern struct {
    hits: u64,
    misses: u64,
    memo_hits: u64,
    read_timeouts: u64,
    lock_timeouts: u64,
    dropped_writes: u64,
    /// The PID of the line's latest handle (diagnostics only).
    pid: u32,
    reserved0: u32,
    /// getOrSet results returned without being stored (counted by the
    /// TypeScript side through shmc_add_unstored).
    unstored_results: u64,
};

comptime {
    assert(@sizeOf(Counters) == line_bytes);
    assert(@alignOf(Counters) == 8);
    assert(header_bytes % line_bytes == 0);
}

/// Values of Header.retired.
pub const retired_live: u32 = 0;
pub const retired_replaced: u32 = 1;
pub const retired_destroyed: u32 = 2;

pub const slot_free: u8 = 0;
pub const slot_occupied: u8 = 1;

/// The fixed header of every slot; the key and then the value follow it.
pub const Slot = extern struct {
    /// Over hash, expiry, stamp, lengths, state, key and value; written
    /// before `state` becomes occupied. Links and `visited` are not covered:
    /// they are derived or advisory.
    checksum: u64,
    hash: u64,
    /// CLOCK_MONOTONIC nanoseconds; 0 = never expires.
    expires_ns: u64,
    /// Insertion order, for rebuilding the FIFO list after a crash.
    stamp: u64,
    key_len: u32,
    value_len: u32,
    /// Toward the newer neighbour in the FIFO list (nil at the head).
    prev: u32,
    /// Toward the older neighbour; the free list also links through it.
    next: u32,
    state: u8,
    /// SIEVE's visited bit: set by lock-free readers, cleared by the hand.
    visited: u8,
    reserved: [14]u8,
};

comptime {
    assert(@sizeOf(Slot) == 64);
    assert(@alignOf(Slot) == 8);
}

/// Sizes and offsets, always computed from the caller's options (never read
/// back from the file), so validating a file means comparing against these.
pub const Geometry = struct {
    capacity: u32,
    table_capacity: u32,
    key_bytes_max: u32,
    value_bytes_max: u32,
    slot_bytes: u32,
    ttl_ms: u64,
    /// Not a size, but part of what every opener must agree on: an index
    /// of codec_names, set after `geometry` (which leaves it json).
    codec: u32 = 0,
    counters_offset: u64,
    table_offset: u64,
    slots_offset: u64,
    region_bytes: u64,
};

pub const GeometryError = error{ Capacity, KeyBytes, ValueBytes, TooLarge };

pub fn geometry(capacity: u64, key_max: u64, value_max: u64, ttl_ms: u64) GeometryError!Geometry {
    if (capacity < 1 or capacity > capacity_max) return error.Capacity;
    if (key_max < 1 or key_max > key_bytes_max) return error.KeyBytes;
    // At least the codec's tag byte (lib/codec.ts), as a key: a header
    // (untrusted) with 0 would attach with a limit of -1 bytes.
    if (value_max < 1 or value_max > value_bytes_max) return error.ValueBytes;
    // Twice the entries, rounded up to a power of two: load factor <= 0.5
    // keeps linear probes short and guarantees a free bucket for every insert.
    const table_capacity = std.math.ceilPowerOfTwo(u64, capacity * 2) catch return error.TooLarge;
    const slot_raw = @sizeOf(Slot) + key_max + value_max;
    const slot_bytes = std.mem.alignForward(u64, slot_raw, 8);
    const table_bytes = std.math.mul(u64, table_capacity, 8) catch return error.TooLarge;
    const table_offset = header_bytes + counters_bytes;
    const slots_offset = std.mem.alignForward(u64, table_offset + table_bytes, line_bytes);
    const slots_bytes = std.math.mul(u64, capacity, slot_bytes) catch return error.TooLarge;
    const region_bytes_raw = std.math.add(u64, slots_offset, slots_bytes) catch return error.TooLarge;
    const region_bytes = std.mem.alignForward(u64, region_bytes_raw, 4096);
    if (region_bytes > region_bytes_max) return error.TooLarge;
    assert(table_capacity <= std.math.maxInt(u32));
    assert(slot_bytes <= std.math.maxInt(u32));
    return .{
        .capacity = @intCast(capacity),
        .table_capacity = @intCast(table_capacity),
        .key_bytes_max = @intCast(key_max),
        .value_bytes_max = @intCast(value_max),
        .slot_bytes = @intCast(slot_bytes),
        .ttl_ms = ttl_ms,
        .counters_offset = header_bytes,
        .table_offset = table_offset,
        .slots_offset = slots_offset,
        .region_bytes = region_bytes,
    };
}

/// Writes the header of a new, zero-filled region; the `initialized`
/// marker last. The table is then all empty buckets and every slot free.
pub fn init_header(memory: []u8, geo: Geometry, boot_id: u64) void {
    assert(memory.len == geo.region_bytes);
    const header: *Header = @ptrCast(@alignCast(memory.ptr));
    header.* = std.mem.zeroes(Header);
    header.magic = magic;
    header.format = format;
    header.capacity = geo.capacity;
    header.table_capacity = geo.table_capacity;
    header.key_bytes_max = geo.key_bytes_max;
    header.value_bytes_max = geo.value_bytes_max;
    header.slot_bytes = geo.slot_bytes;
    header.ttl_ms = geo.ttl_ms;
    assert(geo.codec < codec_names.len);
    header.codec = geo.codec;
    header.region_bytes = geo.region_bytes;
    header.boot_id = boot_id;
    header.free_head = nil;
    header.fifo_head = nil;
    header.fifo_tail = nil;
    header.hand = nil;
    header.stamp_next = 1;
    // Release: everything above is visible before the marker (pairs with
    // the Acquire load of openers, files.zig map_region).
    @atomicStore(u32, &header.initialized, initialized_done, .release);
}

/// The counter line of liveness slot `slot` in a mapped region.
pub fn counters_line(memory: []u8, geo: Geometry, slot: u32) *Counters {
    assert(slot >= 1 and slot < counter_lines);
    assert(memory.len >= geo.table_offset);
    const offset = geo.counters_offset + @as(u64, slot) * line_bytes;
    return @ptrCast(@alignCast(memory.ptr + offset));
}

/// A bucket is one u64 so lock-free readers load it without tearing:
/// high 32 bits = the key hash's high 32 bits (the tag, which also gives the
/// bucket's home index), low 32 bits = slot index + 1 (0 = empty bucket).
pub fn bucket_make(tag: u32, slot: u32) u64 {
    assert(slot < capacity_max);
    return (@as(u64, tag) << 32) | (slot + 1);
}

pub fn bucket_tag(bucket: u64) u32 {
    return @intCast(bucket >> 32);
}

/// The slot index, or nil for an empty bucket. May be out of range when the
/// file is corrupt: callers check against the capacity.
pub fn bucket_slot(bucket: u64) u32 {
    const low: u32 = @truncate(bucket);
    return low -% 1;
}

pub fn hash_tag(hash: u64) u32 {
    return @intCast(hash >> 32);
}

test "geometry rejects bad sizes and overflow" {
    try std.testing.expectError(error.Capacity, geometry(0, 16, 16, 0));
    try std.testing.expectError(error.KeyBytes, geometry(1, 0, 16, 0));
    try std.testing.expectError(error.ValueBytes, geometry(1, 16, value_bytes_max + 1, 0));
    try std.testing.expectError(error.ValueBytes, geometry(1, 16, 0, 0));
    try std.testing.expectError(error.TooLarge, geometry(capacity_max, key_bytes_max, value_bytes_max, 0));
    const g = try geometry(1000, 16, 100, 0);
    try std.testing.expectEqual(@as(u32, 2048), g.table_capacity);
    try std.testing.expect(g.table_offset == header_bytes + counters_bytes);
    try std.testing.expect(g.slots_offset >= g.table_offset + 2048 * 8);
    try std.testing.expect(g.region_bytes % 4096 == 0);
}

test "bucket encoding round-trips" {
    const b = bucket_make(0xDEADBEEF, 41);
    try std.testing.expectEqual(@as(u32, 0xDEADBEEF), bucket_tag(b));
    try std.testing.expectEqual(@as(u32, 41), bucket_slot(b));
    try std.testing.expectEqual(nil, bucket_slot(0));
}
