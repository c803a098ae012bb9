//! A process-local handle on a mapped region: the validated geometry, the
//! mapping, this handle's liveness slot and its counter line. Accessors
//! take indices that callers have already bounds-checked (asserted here).

const std = @import("std");
const assert = std.debug.assert;
const region = @import("region.zig");
const sys = @import("sys.zig");
const counters = @import("counters.zig");
const watch = @import("watch.zig");

pub const Handle = struct {
    memory: []align(sys.page_size) u8,
    geo: region.Geometry,
    /// The region file; it also carries the creation lock and the
    /// liveness byte locks (liveness.zig).
    fd: std.c.fd_t,
    /// This handle's liveness slot (liveness.zig), 1..slots_max.
    live_slot: u32,
    pid: u32,
    /// The lock word this handle installed, while it holds the lock.
    lock_word: u64 = 0,
    lock_held: bool = false,
    lock_timeout_ns: u64,
    /// The counter line of `live_slot` in the region: hits, misses and the
    /// other per-handle counts (counters.zig; this handle is its only
    /// writer, so a hit writes no line another process writes).
    line: *region.Counters,
    /// The line's counts when this handle claimed it (the slot's earlier
    /// handles counted the rest): this handle's own counts are line - base.
    base: counters.Values,
    /// Recoveries of a dead owner's lock performed by this handle (process
    /// memory: the region's total is Header.recoveries).
    recoveries: u64 = 0,
    /// This process's record of the region file (watch.zig); null only for
    /// the unit tests' in-memory regions.
    watch: ?*watch.Record = null,
    /// Latched once the region was seen retired or its file gone
    /// (watch.retired): every later operation answers Retired.
    gone: bool = false,
    /// The process-wide handle registry (threads.zig).
    thread: std.c.pthread_t = undefined,
    thread_next: ?*Handle = null,
    thread_prev: ?*Handle = null,
    on_thread_list: bool = false,
    taken_by_exit: bool = false,
    /// sys.fork_epoch when opened: a forked child must not write through it.
    fork_epoch: u32 = 0,
    /// The caller's buffers, bound once by shmc_bind so that the hot calls
    /// (shmc_get/put/del) pass lengths only. Caller-owned memory that must
    /// outlive the handle's use; empty until bound.
    io_key: []u8 = &.{},
    io_value: []u8 = &.{},
    io_meta: []u32 = &.{},
    /// The caller's decode memo (read.Hit.memo); empty = none.
    io_memo: []const u32 = &.{},

    pub fn header(h: *const Handle) *region.Header {
        return @ptrCast(@alignCast(h.memory.ptr));
    }

    pub fn bucket(h: *const Handle, index: u32) *u64 {
        assert(index < h.geo.table_capacity);
        const offset = h.geo.table_offset + @as(u64, index) * 8;
        return @ptrCast(@alignCast(h.memory.ptr + offset));
    }

    pub fn table_bytes(h: *const Handle) []u8 {
        const start: usize = @intCast(h.geo.table_offset);
        const len: usize = @as(usize, h.geo.table_capacity) * 8;
        return h.memory[start..][0..len];
    }

    pub fn slot(h: *const Handle, index: u32) *region.Slot {
        assert(index < h.geo.capacity);
        const offset = h.geo.slots_offset + @as(u64, index) * h.geo.slot_bytes;
        assert(offset + h.geo.slot_bytes <= h.memory.len);
        return @ptrCast(@alignCast(h.memory.ptr + offset));
    }

    /// The key bytes area of a slot (key_bytes_max long).
    pub fn slot_key(h: *const Handle, index: u32) [*]u8 {
        const s: [*]u8 = @ptrCast(h.slot(index));
        return s + @sizeOf(region.Slot);
    }

    /// The value bytes area of a slot (value_bytes_max long).
    pub fn slot_value(h: *const Handle, index: u32) [*]u8 {
        return h.slot_key(index) + h.geo.key_bytes_max;
    }
};
