//! The hash table: open addressing, linear probing, power-of-two capacity,
//! backward-shift deletion (no tombstones). Buckets are single u64 words
//! (region.bucket_make), stored with atomic Monotonic stores and loaded with
//! atomic Monotonic loads, so a lock-free reader never sees a torn bucket;
//! whether what it saw was current is the seqlock's business.
//!
//! Invariant: every bucket sits at most `probe_max - 1` places after its
//! home, so every probe stops after `probe_limit` steps, whatever the keys.
//! Keys that hash alike (bad luck, or keys crafted against the hash) cost at
//! most that many steps per lookup, and a rebuild at most that many per
//! entry: no quadratic blow-up. An insert that finds no empty bucket within
//! the bound is refused (the write is dropped and counted). At load <= 1/2
//! (capacity * 2 <= table_capacity) an honest key needs more than 256
//! steps with a probability far below 2^-40 per insert. Backward-shift
//! deletion only moves buckets toward their home, so it keeps the
//! invariant. A corrupt table can break it: probes still stop at the bound,
//! and verify reports it.

const std = @import("std");
const assert = std.debug.assert;
const region = @import("region.zig");
const Handle = @import("handle.zig").Handle;

pub inline fn load(h: *const Handle, index: u32) u64 {
    return @atomicLoad(u64, h.bucket(index), .monotonic);
}

inline fn store(h: *const Handle, index: u32, value: u64) void {
    @atomicStore(u64, h.bucket(index), value, .monotonic);
}

pub inline fn home(h: *const Handle, tag: u32) u32 {
    return tag & (h.geo.table_capacity - 1);
}

pub const probe_max: u32 = 256;

/// The longest probe: probe_max, or the whole table when it is smaller.
pub inline fn probe_limit(h: *const Handle) u32 {
    return @min(probe_max, h.geo.table_capacity);
}

/// How far bucket `index` (holding `tag`) sits after its home.
pub inline fn distance(h: *const Handle, tag: u32, index: u32) u32 {
    return (index -% home(h, tag)) & (h.geo.table_capacity - 1);
}

/// The one bounded probe of the table: the buckets of `tag`'s run, from its
/// home, in order. Every lookup, writer search, insert and room check walks
/// the table through it, so the bound is written once. Bound: at most
/// probe_limit buckets, since no bucket lies farther from its home (the
/// invariant above); a longer probe could find nothing.
pub const Probe = struct {
    h: *const Handle,
    index: u32,
    steps: u32 = 0,
    /// The empty bucket that ended the run, or null while none has (also
    /// when the probe stopped at the bound: the run is full).
    empty: ?u32 = null,

    pub const Step = struct { index: u32, bucket: u64 };

    pub fn init(h: *const Handle, tag: u32) Probe {
        assert(std.math.isPowerOfTwo(h.geo.table_capacity));
        return .{ .h = h, .index = home(h, tag) };
    }

    /// The next non-empty bucket of the run, or null at its end: an empty
    /// bucket (then `empty` holds its index) or the probe bound.
    pub fn next(p: *Probe) ?Step {
        if (p.empty != null or p.steps >= probe_limit(p.h)) return null;
        const index = p.index;
        assert(index < p.h.geo.table_capacity);
        const b = load(p.h, index);
        p.steps += 1;
        p.index = (index + 1) & (p.h.geo.table_capacity - 1);
        if (b == 0) {
            p.empty = index;
            return null;
        }
        return .{ .index = index, .bucket = b };
    }

    /// Walks the rest of the run; the empty bucket that ends it, or null
    /// when the run is full up to the bound.
    pub fn to_end(p: *Probe) ?u32 {
        while (p.next()) |_| {}
        assert(p.empty != null or p.steps == probe_limit(p.h));
        return p.empty;
    }
};

/// The bucket that references `slot_index` (whose key hashes to `tag`), or
/// null. Writers only.
pub fn find_slot(h: *const Handle, tag: u32, slot_index: u32) ?u32 {
    var p = Probe.init(h, tag);
    while (p.next()) |step| {
        if (region.bucket_slot(step.bucket) == slot_index) return step.index;
    }
    return null;
}

/// The first empty bucket of `tag`'s run within the probe bound, or null.
fn first_empty(h: *const Handle, tag: u32) ?u32 {
    var p = Probe.init(h, tag);
    return p.to_end();
}

/// Whether a key with `tag` has an empty bucket within the probe bound.
pub fn has_room(h: *const Handle, tag: u32) bool {
    return first_empty(h, tag) != null;
}

/// Inserts a bucket for a key known to be absent. False when no bucket
/// within the probe bound is empty (see has_room).
pub fn insert(h: *const Handle, tag: u32, slot_index: u32) bool {
    assert(slot_index < h.geo.capacity);
    const index = first_empty(h, tag) orelse return false;
    store(h, index, region.bucket_make(tag, slot_index));
    return true;
}

/// Empties bucket `hole` and shifts the following run back so that every
/// remaining bucket stays reachable from its home without tombstones.
pub fn remove(h: *const Handle, hole_start: u32) void {
    const mask = h.geo.table_capacity - 1;
    var hole = hole_start;
    var index = hole_start;
    var step: u32 = 0;
    // Bound: one pass over the table at most.
    while (step < h.geo.table_capacity) : (step += 1) {
        index = (index + 1) & mask;
        const b = load(h, index);
        if (b == 0) break;
        const want = home(h, region.bucket_tag(b));
        // The bucket may move back into the hole iff its home is not in the
        // cyclic interval (hole, index]: then the hole lies on its probe path.
        const home_in_between = if (hole <= index)
            (want > hole and want <= index)
        else
            (want > hole or want <= index);
        if (!home_in_between) {
            store(h, hole, b);
            hole = index;
        }
    }
    store(h, hole, 0);
}

pub fn clear(h: *const Handle) void {
    // Readers are excluded by the odd seq; a reader racing this memset only
    // fails its validation.
    @memset(h.table_bytes(), 0);
}

const testing = std.testing;
const TestMemory = @import("test_region.zig").Memory;

/// Buckets of a small table laid out as a string: '.' empty, else the home
/// of the bucket's tag as a digit (homes 0..9 of a 16-bucket table).
fn layout(h: *const Handle, buf: []u8) []u8 {
    for (buf[0..h.geo.table_capacity], 0..) |*ch, i| {
        const b = load(h, @intCast(i));
        ch.* = if (b == 0) '.' else '0' + @as(u8, @intCast(home(h, region.bucket_tag(b))));
    }
    return buf[0..h.geo.table_capacity];
}

/// A tag whose home is `want` and which differs per `n`.
fn tag_at(h: *const Handle, want: u32, n: u32) u32 {
    return want + n * h.geo.table_capacity;
}

test "linear probing places collisions after their home and backward shift closes the hole" {
    const m = try TestMemory.init(8);
    defer m.deinit();
    const h = &m.handle;
    try testing.expectEqual(@as(u32, 16), h.geo.table_capacity);
    var buf: [16]u8 = undefined;
    // Three keys at home 2, one at home 3, one at home 5.
    try testing.expect(insert(h, tag_at(h, 2, 1), 0));
    try testing.expect(insert(h, tag_at(h, 2, 2), 1));
    try testing.expect(insert(h, tag_at(h, 3, 1), 2));
    try testing.expect(insert(h, tag_at(h, 2, 3), 3));
    try testing.expect(insert(h, tag_at(h, 5, 1), 4));
    try testing.expectEqualStrings("..22325.........", layout(h, &buf));
    try testing.expectEqual(@as(u32, 3), distance(h, tag_at(h, 2, 3), 5));
    // Removing the first home-2 key shifts its run back, each bucket to
    // the nearest place at or after its home.
    remove(h, find_slot(h, tag_at(h, 2, 1), 0).?);
    // home-5's bucket moves back to its home, never before it.
    try testing.expectEqualStrings("..2325..........", layout(h, &buf));
    try testing.expectEqual(@as(?u32, null), find_slot(h, tag_at(h, 2, 1), 0));
    inline for (.{ .{ 2, 2, 1 }, .{ 3, 1, 2 }, .{ 2, 3, 3 }, .{ 5, 1, 4 } }) |k| {
        try testing.expect(find_slot(h, tag_at(h, k[0], k[1]), k[2]) != null);
    }
}

test "runs wrap around the end of the table" {
    const m = try TestMemory.init(8);
    defer m.deinit();
    const h = &m.handle;
    try testing.expect(insert(h, 15, 0));
    try testing.expect(insert(h, 15 + 16, 1));
    try testing.expect(insert(h, 0, 2));
    try testing.expectEqual(@as(?u32, 0), find_slot(h, 15 + 16, 1));
    try testing.expectEqual(@as(?u32, 1), find_slot(h, 0, 2));
    // Removing the bucket at 15 shifts the wrapped one back to its home,
    // and the home-0 one back to 0.
    remove(h, 15);
    try testing.expectEqual(@as(?u32, 15), find_slot(h, 15 + 16, 1));
    try testing.expectEqual(@as(?u32, 0), find_slot(h, 0, 2));
    try testing.expectEqual(@as(u64, 0), load(h, 1));
}

test "an insert is refused when no bucket within the probe bound is empty" {
    const m = try TestMemory.init(8);
    defer m.deinit();
    const h = &m.handle;
    // The probe bound is the whole table when it is smaller than probe_max.
    try testing.expectEqual(@as(u32, 16), probe_limit(h));
    var i: u32 = 0;
    while (i < 16) : (i += 1) try testing.expect(insert(h, tag_at(h, 4, i), i % 8));
    try testing.expect(!has_room(h, 4));
    try testing.expect(!insert(h, tag_at(h, 4, 99), 0));
    clear(h);
    try testing.expect(has_room(h, 4));
}

test "a probe walks its run from the home, ends at the empty bucket or at the bound" {
    const m = try TestMemory.init(8);
    defer m.deinit();
    const h = &m.handle;
    try testing.expect(insert(h, tag_at(h, 3, 1), 0));
    try testing.expect(insert(h, tag_at(h, 3, 2), 1));
    var p = Probe.init(h, tag_at(h, 3, 9));
    try testing.expectEqual(@as(u32, 3), p.next().?.index);
    try testing.expectEqual(@as(u32, 4), p.next().?.index);
    try testing.expectEqual(@as(?Probe.Step, null), p.next());
    try testing.expectEqual(@as(?u32, 5), p.empty);
    try testing.expectEqual(@as(?Probe.Step, null), p.next()); // stays ended
    // A full table: the probe stops after probe_limit buckets, no empty.
    var i: u32 = 2;
    while (i < 16) : (i += 1) try testing.expect(insert(h, tag_at(h, 3, i + 1), i % 8));
    var full = Probe.init(h, 3);
    try testing.expectEqual(@as(?u32, null), full.to_end());
    try testing.expectEqual(probe_limit(h), full.steps);
}
