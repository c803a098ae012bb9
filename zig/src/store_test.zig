//! Tests of the store as a whole: reads, writes, rebuild and verify
//! together on a region in process memory.

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
const read = @import("read.zig");
const write = @import("write.zig");
const Hit = read.Hit;
const lookup = read.lookup;
const scan = read.scan;
const scan_chunk = read.scan_chunk;
const Entry = read.Entry;
const memo_stride = abi.memo_stride;
const acquire = write.acquire;
const insert = write.insert;
const remove = write.remove;
const clear = write.clear;
const rebuild = @import("rebuild.zig").rebuild;
const Report = @import("verify.zig").Report;
const verify = @import("verify.zig").verify;

const testing = std.testing;

/// A region in process memory (no file): liveness probes fail on fd -1 and
/// answer "alive", which these single-handle tests never reach.
const store_rebuild = rebuild;

const TestRegion = struct {
    memory: []align(sys.page_size) u8,
    handle: Handle,

    fn init(capacity: u32, key_max: u32, value_max: u32) !*TestRegion {
        const geo = try region.geometry(capacity, key_max, value_max, 0);
        const t = try testing.allocator.create(TestRegion);
        t.memory = try testing.allocator.alignedAlloc(u8, .fromByteUnits(sys.page_size), @intCast(geo.region_bytes));
        @memset(t.memory, 0);
        region.init_header(t.memory, geo, 0);
        t.handle = .{ .memory = t.memory, .geo = geo, .fd = -1, .live_slot = 1, .pid = 1, .lock_timeout_ns = std.time.ns_per_s, .line = region.counters_line(t.memory, geo, 1), .base = @splat(0) };
        return t;
    }

    fn deinit(t: *TestRegion) void {
        testing.allocator.free(t.memory);
        testing.allocator.destroy(t);
    }

    fn get(t: *TestRegion, key: []const u8, out: []u8) ?[]u8 {
        var hit: Hit = .{};
        const len = (lookup(&t.handle, key, out, &hit) catch unreachable) orelse return null;
        return out[0..len];
    }

    /// What a writer does after a crash: rebuild under the lock, seq odd.
    fn rebuild(t: *TestRegion) !void {
        const h = &t.handle;
        try acquire(h, std.math.maxInt(u64));
        defer lock.release(h);
        seqlock.write_begin(h.header());
        defer seqlock.write_end(h.header());
        store_rebuild(h);
    }

    fn problems(t: *TestRegion) u32 {
        var buf: [1024]u8 = undefined;
        var r: Report = .{ .buf = &buf };
        acquire(&t.handle, std.math.maxInt(u64)) catch unreachable;
        defer lock.release(&t.handle);
        verify(&t.handle, &r);
        return r.problems;
    }
};

test "insert, lookup, overwrite, remove and clear" {
    const t = try TestRegion.init(8, 16, 32);
    defer t.deinit();
    const h = &t.handle;
    var out: [32]u8 = undefined;
    try insert(h, "a", "one", -1, .set);
    try insert(h, "b", "two", -1, .set);
    try testing.expectEqualStrings("one", t.get("a", &out).?);
    try insert(h, "a", "uno", -1, .set);
    try testing.expectEqualStrings("uno", t.get("a", &out).?);
    try testing.expectError(error.Exists, insert(h, "a", "x", -1, .add));
    try testing.expect(try remove(h, "a"));
    try testing.expect(!try remove(h, "a"));
    try testing.expectEqual(@as(?[]u8, null), t.get("a", &out));
    try testing.expectError(error.TooLarge, insert(h, "kkkkkkkkkkkkkkkkk", "v", -1, .set));
    try clear(h);
    try testing.expectEqual(@as(?[]u8, null), t.get("b", &out));
    try testing.expectEqual(@as(u32, 0), t.problems());
}

test "the table stays consistent under random inserts and removes (model check)" {
    const t = try TestRegion.init(64, 8, 8);
    defer t.deinit();
    const h = &t.handle;
    var model: [200]?u8 = @splat(null);
    var prng = std.Random.DefaultPrng.init(42);
    const random = prng.random();
    var out: [8]u8 = undefined;
    var step: u32 = 0;
    while (step < 5000) : (step += 1) {
        const k = random.uintLessThan(u8, 200);
        var kb: [4]u8 = undefined;
        const key = std.fmt.bufPrint(&kb, "{d}", .{k}) catch unreachable;
        if (random.boolean()) {
            try insert(h, key, &.{k}, -1, .set);
            model[k] = k;
        } else {
            _ = try remove(h, key);
            model[k] = null;
        }
        // Eviction may drop keys the model holds, never invent or alter one.
        if (t.get(key, &out)) |v| try testing.expectEqual(k, v[0]) else if (model[k] != null and h.header().count < 64) {
            return error.LostKey;
        }
    }
    try testing.expectEqual(@as(u32, 0), t.problems());
}

test "a writer that died at any point is repaired by rebuild" {
    const t = try TestRegion.init(8, 16, 32);
    defer t.deinit();
    const h = &t.handle;
    var out: [32]u8 = undefined;
    try insert(h, "keep", "kept", -1, .set);
    try insert(h, "half", "old", -1, .set);
    // Simulate a death mid-overwrite: seq odd, the slot's value half new,
    // its checksum stale, links untouched.
    try acquire(h, std.math.maxInt(u64));
    seqlock.write_begin(h.header());
    const found = find_key(h, key_hash("half"), "half").?;
    @memcpy(h.slot_value(found.slot)[0..3], "NEW");
    lock.release_for_test(h);
    // The next acquisition sees seq odd and rebuilds: the torn entry is gone.
    try testing.expectEqual(@as(?[]u8, null), t.get("half", &out));
    try testing.expectEqualStrings("kept", t.get("keep", &out).?);
    try testing.expectEqual(@as(u64, 1), h.header().rebuilds);
    try testing.expectEqual(@as(u32, 0), t.problems());
}

test "verify reports a broken structure and rebuild repairs it" {
    const t = try TestRegion.init(8, 16, 32);
    defer t.deinit();
    const h = &t.handle;
    var out: [32]u8 = undefined;
    for ([_][]const u8{ "a", "b", "c" }) |k| try insert(h, k, k, -1, .set);
    h.header().fifo_head = 5; // a link to a free slot
    try testing.expect(t.problems() > 0);
    try t.rebuild();
    try testing.expectEqual(@as(u32, 0), t.problems());
    for ([_][]const u8{ "a", "b", "c" }) |k| try testing.expectEqualStrings(k, t.get(k, &out).?);
}

test "add on a damaged structure stores once and says so" {
    const t = try TestRegion.init(8, 16, 32);
    defer t.deinit();
    const h = &t.handle;
    var out: [32]u8 = undefined;
    try insert(h, "a", "a", -1, .set);
    h.header().fifo_head = 100; // out of range: insert trips over it, rebuilds, retries
    try insert(h, "claim", "mine", -1, .add);
    try testing.expectEqualStrings("mine", t.get("claim", &out).?);
    try testing.expectError(error.Exists, insert(h, "claim", "other", -1, .add));
    try testing.expectEqual(@as(u32, 0), t.problems());
}

test "scan visits each live entry once, skipping free and expired slots" {
    const t = try TestRegion.init(8, 16, 32);
    defer t.deinit();
    const h = &t.handle;
    try insert(h, "a", "one", -1, .set);
    try insert(h, "b", "two", -1, .set);
    try insert(h, "c", "three", -1, .set);
    try insert(h, "gone", "x", 0.000001, .set);
    _ = try remove(h, "b");
    var key: [16]u8 = undefined;
    var value: [32]u8 = undefined;
    var seen: [8][]const u8 = undefined;
    var n: usize = 0;
    var entry: Entry = .{};
    var from: u32 = 0;
    // Bound: one entry per call, at most capacity of them.
    while (try scan(h, from, &key, &value, &entry)) : (from = entry.index + 1) {
        try testing.expect(entry.found);
        try testing.expect(n < 8);
        const k = key[0..entry.key_len];
        if (std.mem.eql(u8, k, "a")) try testing.expectEqualStrings("one", value[0..entry.value_len]);
        if (std.mem.eql(u8, k, "c")) try testing.expectEqualStrings("three", value[0..entry.value_len]);
        seen[n] = if (std.mem.eql(u8, k, "a")) "a" else if (std.mem.eql(u8, k, "c")) "c" else "?";
        n += 1;
    }
    try testing.expectEqual(@as(usize, 2), n);
    try testing.expect(!std.mem.eql(u8, seen[0], seen[1]));
    try testing.expect(!entry.found);
    // Keys only, and a key buffer too short for a key passes it.
    try testing.expect(try scan(h, 0, &key, null, &entry));
    var tiny: [0]u8 = .{};
    try testing.expect(!try scan(h, 0, &tiny, null, &entry));
}

test "scan reads at most scan_chunk slots per call and says where to go on" {
    const t = try TestRegion.init(scan_chunk * 2 + 8, 16, 8);
    defer t.deinit();
    const h = &t.handle;
    var name: [16]u8 = undefined;
    // Fill, then free all but the last slot: a long run of free slots.
    var i: u32 = 0;
    while (i < scan_chunk * 2 + 1) : (i += 1) {
        try insert(h, try std.fmt.bufPrint(&name, "k{d}", .{i}), "v", -1, .set);
    }
    i = 0;
    while (i < scan_chunk * 2) : (i += 1) {
        _ = try remove(h, try std.fmt.bufPrint(&name, "k{d}", .{i}));
    }
    var key: [16]u8 = undefined;
    var entry: Entry = .{};
    try testing.expect(try scan(h, 0, &key, null, &entry));
    try testing.expect(!entry.found);
    try testing.expectEqual(scan_chunk, entry.index);
    try testing.expect(try scan(h, entry.index, &key, null, &entry));
    try testing.expect(!entry.found);
    try testing.expect(try scan(h, entry.index, &key, null, &entry));
    try testing.expect(entry.found);
    try testing.expect(!try scan(h, entry.index + 1, &key, null, &entry));
}

test "update keeps a live entry's expiry and gives a new entry the given one" {
    const t = try TestRegion.init(8, 16, 32);
    defer t.deinit();
    const h = &t.handle;
    try insert(h, "n", "1", 60_000, .set);
    var found = find_key(h, key_hash("n"), "n").?;
    const kept = h.slot(found.slot).expires_ns;
    try insert(h, "n", "2", 1_000_000, .update);
    found = find_key(h, key_hash("n"), "n").?;
    try testing.expectEqual(kept, h.slot(found.slot).expires_ns);
    try insert(h, "m", "1", 0, .update);
    found = find_key(h, key_hash("m"), "m").?;
    try testing.expectEqual(@as(u64, 0), h.slot(found.slot).expires_ns);
}

test "update keeps an entry's expiry even once it has passed (increment read it live)" {
    // increment reads the counter, then writes it with .update, both under
    // one hold of the lock. If the counter expires between the two, the
    // write must not give the old count a fresh window: it keeps the
    // expiry the read saw, and the count expires as it would have.
    const t = try TestRegion.init(8, 16, 32);
    defer t.deinit();
    const h = &t.handle;
    var out: [32]u8 = undefined;
    try insert(h, "n", "1", 1, .set);
    var found = find_key(h, key_hash("n"), "n").?;
    const kept = h.slot(found.slot).expires_ns;
    // Bound: the entry expires 1 ms after it was written.
    while (sys.now_ns() < kept) sys.sleep_ns(std.time.ns_per_ms);
    try insert(h, "n", "2", 60_000, .update);
    found = find_key(h, key_hash("n"), "n").?;
    try testing.expectEqual(kept, h.slot(found.slot).expires_ns);
    try testing.expect(t.get("n", &out) == null);
}

test "SIEVE keeps visited entries over unvisited ones" {
    const t = try TestRegion.init(4, 8, 8);
    defer t.deinit();
    const h = &t.handle;
    var out: [8]u8 = undefined;
    for ([_][]const u8{ "a", "b", "c", "d" }) |k| try insert(h, k, k, -1, .set);
    _ = t.get("a", &out);
    _ = t.get("b", &out);
    try insert(h, "e", "e", -1, .set);
    try testing.expect(t.get("c", &out) == null);
    for ([_][]const u8{ "a", "b", "d", "e" }) |k| try testing.expect(t.get(k, &out) != null);
    try testing.expectEqual(@as(u64, 1), h.header().evictions);
}

test "a hit's (slot, stamp) changes with every write of the slot, never with a read" {
    const t = try TestRegion.init(4, 8, 8);
    defer t.deinit();
    const h = &t.handle;
    var out: [8]u8 = undefined;
    var seen: [64]u64 = undefined;
    var n: usize = 0;
    const Read = struct {
        fn hit(hd: *Handle, key: []const u8, buf: []u8) Hit {
            var x: Hit = .{};
            _ = (lookup(hd, key, buf, &x) catch unreachable).?;
            return x;
        }
    };
    try insert(h, "a", "1", -1, .set);
    const first = Read.hit(h, "a", &out);
    try testing.expectEqual(first, Read.hit(h, "a", &out));
    // Overwrites (in place), removes, clears, evictions and a rebuild all
    // give stamps never handed out before.
    var round: u32 = 0;
    while (round < 12) : (round += 1) {
        switch (round % 4) {
            0 => try insert(h, "a", "2", -1, .set),
            1 => {
                _ = try remove(h, "a");
                try insert(h, "a", "1", -1, .set);
            },
            2 => {
                try clear(h);
                try insert(h, "a", "1", -1, .set);
            },
            else => {
                for ([_][]const u8{ "b", "c", "d", "e" }) |k| try insert(h, k, k, -1, .set);
                try insert(h, "a", "1", -1, .set);
                try t.rebuild();
            },
        }
        const now = Read.hit(h, "a", &out);
        try testing.expect(now.stamp != first.stamp);
        for (seen[0..n]) |old| try testing.expect(old != now.stamp);
        seen[n] = now.stamp;
        n += 1;
    }
}

test "the memo matches only the write it holds, even if the file's stamps repeat" {
    const t = try TestRegion.init(4, 8, 8);
    defer t.deinit();
    const h = &t.handle;
    var out: [8]u8 = undefined;
    var memo: [memo_stride * 4]u32 = @splat(0xffff_ffff);
    const Read = struct {
        fn hit(hd: *Handle, m: []const u32, buf: []u8) Hit {
            var x: Hit = .{ .memo = m };
            _ = (lookup(hd, "a", buf, &x) catch unreachable).?;
            return x;
        }
        fn remember(m: []u32, x: Hit, len: u32) void {
            const e = (x.index & 3) * memo_stride;
            m[e..][0..memo_stride].* = .{ x.index, len, @truncate(x.stamp), @truncate(x.stamp >> 32), @truncate(x.check), @truncate(x.check >> 32) };
        }
    };
    // Corrupt: every write gets stamp 7.
    h.header().stamp_next = 7;
    try insert(h, "a", "1", -1, .set);
    const first = Read.hit(h, &memo, &out);
    try testing.expect(!first.memo_hit);
    Read.remember(&memo, first, 1);
    try testing.expect(Read.hit(h, &memo, &out).memo_hit);
    // Another value of the same length under the same stamp: no match.
    h.header().stamp_next = 7;
    try insert(h, "a", "2", -1, .set);
    const second = Read.hit(h, &memo, &out);
    try testing.expectEqual(first.index, second.index);
    try testing.expectEqual(first.stamp, second.stamp);
    try testing.expect(!second.memo_hit);
    try testing.expectEqualStrings("2", out[0..1]);
    // A sound file: every write a new stamp, so even the same bytes again
    // do not match the memo (they are decoded again, harmlessly).
    Read.remember(&memo, second, 1);
    try insert(h, "a", "2", -1, .set);
    try testing.expect(!Read.hit(h, &memo, &out).memo_hit);
}

/// Keys whose Wyhash is the same whatever their other bytes: bytes 8..16
/// of a 24-byte key equal a Wyhash constant, which zeroes its state.
fn colliding_key(buf: *[24]u8, n: u32) []const u8 {
    @memset(buf, 0);
    std.mem.writeInt(u32, buf[0..4], n, .little);
    std.mem.writeInt(u64, buf[8..16], 0xe7037ed1a0b428db, .little);
    std.mem.writeInt(u32, buf[16..20], n *% 2654435761, .little);
    return buf;
}

test "keys that all hash alike cost a bounded probe and are refused past it" {
    const t = try TestRegion.init(512, 24, 8);
    defer t.deinit();
    const h = &t.handle;
    var out: [8]u8 = undefined;
    var kb: [24]u8 = undefined;
    var kb2: [24]u8 = undefined;
    try testing.expectEqual(key_hash(colliding_key(&kb, 1)), key_hash(colliding_key(&kb2, 2)));
    var stored: u32 = 0;
    var refused: u32 = 0;
    var n: u32 = 0;
    while (n < 400) : (n += 1) {
        if (insert(h, colliding_key(&kb, n), "v", -1, .set)) |_| {
            stored += 1;
        } else |e| {
            try testing.expectEqual(error.Full, e);
            refused += 1;
        }
    }
    try testing.expectEqual(table.probe_max, stored);
    try testing.expectEqual(@as(u32, 400 - table.probe_max), refused);
    // Every stored key is found; a refused one is a miss, within the bound.
    n = 0;
    while (n < 400) : (n += 1) {
        const found = t.get(colliding_key(&kb, n), &out) != null;
        try testing.expectEqual(n < table.probe_max, found);
    }
    // An overwrite of a stored key needs no room.
    try insert(h, colliding_key(&kb, 3), "w", -1, .set);
    try testing.expectEqualStrings("w", t.get(colliding_key(&kb, 3), &out).?);
    try testing.expectEqual(@as(u32, 0), t.problems());
    // A rebuild keeps them, at most the bound's worth, in bounded time.
    try t.rebuild();
    try testing.expectEqual(table.probe_max, h.header().count);
    try testing.expectEqual(@as(u32, 0), t.problems());
}

test "verify reports a bucket beyond the probe bound" {
    const t = try TestRegion.init(512, 24, 8);
    defer t.deinit();
    const h = &t.handle;
    try insert(h, "a", "1", -1, .set);
    const found = find_key(h, key_hash("a"), "a").?;
    const b = table.load(h, found.bucket);
    // Move the bucket 300 places on (a corrupt file).
    const far = (found.bucket + 300) & (h.geo.table_capacity - 1);
    @atomicStore(u64, h.bucket(far), b, .monotonic);
    @atomicStore(u64, h.bucket(found.bucket), 0, .monotonic);
    var buf: [1024]u8 = undefined;
    var r: Report = .{ .buf = &buf };
    try acquire(h, std.math.maxInt(u64));
    verify(h, &r);
    lock.release(h);
    try testing.expect(std.mem.indexOf(u8, buf[0..r.len], "beyond the probe bound 256") != null);
}

test "a run of copies of one bucket is garbage, not a full run: the insert rebuilds and succeeds" {
    const t = try TestRegion.init(512, 24, 8);
    defer t.deinit();
    const h = &t.handle;
    var out: [8]u8 = undefined;
    var kb: [24]u8 = undefined;
    try insert(h, colliding_key(&kb, 0), "0", -1, .set);
    const found = find_key(h, key_hash(colliding_key(&kb, 0)), colliding_key(&kb, 0)).?;
    const b = table.load(h, found.bucket);
    var i: u32 = 1;
    while (i < table.probe_max) : (i += 1) {
        @atomicStore(u64, h.bucket((found.bucket + i) & (h.geo.table_capacity - 1)), b, .monotonic);
    }
    try insert(h, colliding_key(&kb, 1), "1", -1, .set);
    try testing.expectEqualStrings("1", t.get(colliding_key(&kb, 1), &out).?);
    try testing.expectEqual(@as(u64, 1), h.header().rebuilds);
    try testing.expectEqual(@as(u32, 0), t.problems());
}

test "a crowded run gives up an expired entry to a new key" {
    const t = try TestRegion.init(512, 24, 8);
    defer t.deinit();
    const h = &t.handle;
    var out: [8]u8 = undefined;
    var kb: [24]u8 = undefined;
    var n: u32 = 0;
    // Key 100 expires an hour from now: no machine is that slow.
    while (n < table.probe_max) : (n += 1) try insert(h, colliding_key(&kb, n), "v", if (n == 100) 3_600_000 else -1, .set);
    try testing.expectError(error.Full, insert(h, colliding_key(&kb, 1000), "v", -1, .set));
    // Then key 100's expiry passes: moved into the past by hand (with its
    // checksum, as a write would), instead of sleeping through a short TTL.
    const k100 = find_key(h, key_hash(colliding_key(&kb, 100)), colliding_key(&kb, 100)).?;
    h.slot(k100.slot).expires_ns = 1;
    h.slot(k100.slot).checksum = slot_checksum(h, k100.slot, region.slot_occupied);
    try insert(h, colliding_key(&kb, 1000), "new", -1, .set);
    try testing.expectEqualStrings("new", t.get(colliding_key(&kb, 1000), &out).?);
    // Key 100 is gone from the table, not just expired.
    try testing.expect(find_key(h, key_hash(colliding_key(&kb, 100)), colliding_key(&kb, 100)) == null);
    try testing.expectEqual(table.probe_max, h.header().count);
    try testing.expectEqual(@as(u64, 1), h.header().expirations);
    try testing.expectEqual(@as(u32, 0), t.problems());
}
