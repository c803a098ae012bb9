//! verify(): checks every structural invariant of a region and reports
//! each problem found, bounded; rebuild.zig repairs.

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

pub const Report = struct {
    buf: []u8,
    len: usize = 0,
    problems: u32 = 0,

    fn add(r: *Report, comptime fmt: []const u8, args: anytype) void {
        r.problems += 1;
        const rest = r.buf[r.len..];
        const line = std.fmt.bufPrint(rest, fmt ++ "\n", args) catch return;
        r.len += line.len;
    }
};

/// Checks every structural invariant (see region.zig); caller holds the
/// lock. Bounded: each walk stops after capacity + 1 steps.
pub fn verify(h: *Handle, r: *Report) void {
    const header = h.header();
    const cap = h.geo.capacity;
    if (seqlock.is_odd(header)) r.add("seq is odd at rest", .{});
    if (header.high_water > cap) return r.add("high_water {d} exceeds capacity {d}", .{ header.high_water, cap });
    if (header.count > header.high_water) r.add("count {d} exceeds high_water {d}", .{ header.count, header.high_water });
    const seen = std.heap.c_allocator.alloc(u8, cap) catch return r.add("verify: out of memory", .{});
    defer std.heap.c_allocator.free(seen);
    @memset(seen, 0);
    verify_fifo(h, r, seen);
    verify_free(h, r, seen);
    verify_table(h, r);
    var index: u32 = 0;
    while (index < header.high_water) : (index += 1) {
        if (seen[index] == 0) r.add("slot {d} is neither live nor free", .{index});
    }
}

fn verify_fifo(h: *Handle, r: *Report, seen: []u8) void {
    const header = h.header();
    var index = header.fifo_head;
    var prev: u32 = region.nil;
    var n: u32 = 0;
    while (index != region.nil) : (n += 1) {
        if (n > header.count) return r.add("fifo list is longer than count {d}", .{header.count});
        if (index >= header.high_water) return r.add("fifo link {d} out of range", .{index});
        if (seen[index] != 0) return r.add("fifo list revisits slot {d}", .{index});
        seen[index] = 1;
        const s = h.slot(index);
        if (!slot_live(h, index)) r.add("slot {d} in the fifo list is not a complete entry", .{index});
        if (s.prev != prev) r.add("slot {d} prev link {d}, expected {d}", .{ index, s.prev, prev });
        const key = h.slot_key(index)[0..@min(s.key_len, h.geo.key_bytes_max)];
        const found = find_key(h, s.hash, key);
        if (found == null or found.?.slot != index) r.add("slot {d} is not reachable through the table", .{index});
        prev = index;
        index = s.next;
    }
    if (n != header.count) r.add("fifo list has {d} entries, count says {d}", .{ n, header.count });
    if (header.fifo_tail != prev) r.add("fifo tail {d}, expected {d}", .{ header.fifo_tail, prev });
    if (header.hand != region.nil and (header.hand >= h.geo.capacity or seen[header.hand] != 1)) {
        r.add("SIEVE hand {d} is not on the list", .{header.hand});
    }
}

fn verify_free(h: *Handle, r: *Report, seen: []u8) void {
    const header = h.header();
    var index = header.free_head;
    var n: u32 = 0;
    while (index != region.nil) : (n += 1) {
        if (n >= header.high_water) return r.add("free list is longer than high_water", .{});
        if (index >= header.high_water) return r.add("free link {d} out of range", .{index});
        if (seen[index] != 0) return r.add("free slot {d} is also linked elsewhere", .{index});
        seen[index] = 2;
        if (h.slot(index).state != region.slot_free) r.add("free slot {d} is marked occupied", .{index});
        index = h.slot(index).next;
    }
}

fn verify_table(h: *Handle, r: *Report) void {
    const header = h.header();
    var used: u32 = 0;
    var index: u32 = 0;
    while (index < h.geo.table_capacity) : (index += 1) {
        const b = table.load(h, index);
        if (b == 0) continue;
        used += 1;
        const si = region.bucket_slot(b);
        if (si >= h.geo.capacity) {
            r.add("bucket {d} references slot {d} beyond capacity", .{ index, si });
        } else if (region.bucket_tag(b) != region.hash_tag(h.slot(si).hash)) {
            r.add("bucket {d} tag does not match slot {d}", .{ index, si });
        }
        const d = table.distance(h, region.bucket_tag(b), index);
        if (d >= table.probe_limit(h)) {
            r.add("bucket {d} lies {d} places after its home, beyond the probe bound {d}", .{ index, d, table.probe_limit(h) });
        }
    }
    if (used != header.count) r.add("table has {d} buckets in use, count says {d}", .{ used, header.count });
}
