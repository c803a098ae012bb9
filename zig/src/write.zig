//! The writes: insert (set, add, update), remove and clear under the writer
//! lock, and taking that lock (which repairs what a dead owner left).
//!
//! Crash consistency. Every mutation runs with seq odd and orders its
//! stores (compiler barriers; a killed process has completed a prefix of
//! its stores in program order) so that each has one *commit point*, a
//! single store that decides the outcome when the writer dies:
//! - insert/overwrite: the slot's `state` becomes free first, the fields,
//!   key, value and checksum are written, then `state` becomes occupied.
//!   Dying before the last store leaves no live entry for the key (the
//!   overwrite is lost, never torn); after it, the entry is complete.
//! - remove and eviction: `state` becomes free first.
//! - clear: `high_water` becomes 0 first (rebuild only scans below it).
//! - a slot taken above `high_water` is marked free *before* high_water
//!   grows, so stale content from before a clear is never resurrected.
//! Everything else (table, FIFO list, free list, count, hand) is derived:
//! whoever next takes the lock and finds seq odd calls `rebuild`, which
//! recomputes it from the live slots (state occupied, lengths within the
//! limits, checksum correct). A reader therefore only ever returns a value
//! that one complete `set` wrote: it validates through the seqlock, and a
//! dead writer's seq stays odd until the rebuild is done.

const std = @import("std");
const assert = std.debug.assert;
const region = @import("region.zig");
const table = @import("table.zig");
const sieve = @import("sieve.zig");
const seqlock = @import("seqlock.zig");
const lock = @import("lock.zig");
const liveness = @import("liveness.zig");
const watch = @import("watch.zig");
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
const rebuild = @import("rebuild.zig").rebuild;
const reset_derived = @import("rebuild.zig").reset_derived;

const WriteKind = enum { fresh, overwrite };

fn write_slot(h: *Handle, index: u32, hash: u64, key: []const u8, value: []const u8, expires_ns: u64, kind: WriteKind) void {
    assert(key.len <= h.geo.key_bytes_max);
    assert(value.len <= h.geo.value_bytes_max);
    const header = h.header();
    const s = h.slot(index);
    // Commit order, see the top of the file. Monotonic stores: readers load
    // these fields atomically (they are validated by the seqlock anyway).
    @atomicStore(u8, &s.state, region.slot_free, .monotonic);
    sys.compiler_barrier();
    faults.at(if (kind == .fresh) .insert_after_free_mark else .overwrite_after_free_mark);
    // A new stamp for every write: stamp_next only grows (rebuild raises it
    // past every stamp it finds), so (slot, stamp) names this write (Hit).
    const stamp = header.stamp_next;
    header.stamp_next = stamp +% 1;
    @atomicStore(u64, &s.hash, hash, .monotonic);
    @atomicStore(u64, &s.expires_ns, expires_ns, .monotonic);
    @atomicStore(u64, &s.stamp, stamp, .monotonic);
    @atomicStore(u32, &s.key_len, @intCast(key.len), .monotonic);
    @atomicStore(u32, &s.value_len, @intCast(value.len), .monotonic);
    @memcpy(h.slot_key(index)[0..key.len], key);
    @memcpy(h.slot_value(index)[0..value.len], value);
    if (kind == .fresh) @atomicStore(u8, &s.visited, 0, .monotonic);
    sys.compiler_barrier();
    faults.at(.insert_after_fields);
    s.checksum = slot_checksum(h, index, region.slot_occupied);
    sys.compiler_barrier();
    @atomicStore(u8, &s.state, region.slot_occupied, .monotonic);
    sys.compiler_barrier();
    faults.at(.insert_after_commit);
}

pub const AcquireError = lock.AcquireError || error{Retired};

/// Takes the writer lock and repairs what a dead owner left behind.
/// Retired: the region is no longer the cache's (watch.zig), checked once
/// the lock is held so that a writer that waited for it does not write a
/// region retired meanwhile; the lock is given back.
pub fn acquire(h: *Handle, deadline_ns: u64) AcquireError!void {
    const how = try lock.acquire(h, deadline_ns);
    const header = h.header();
    if (how == .recovered) header.recoveries +%= 1;
    if (@atomicLoad(u64, &header.seq, .monotonic) & 1 == 1) {
        // The previous owner died mid-mutation: seq stays odd (readers keep
        // out) while we rebuild, then becomes even.
        rebuild(h);
        seqlock.write_end(header);
    }
    if (watch.retired(h)) {
        lock.release(h);
        return error.Retired;
    }
    faults.at(.lock_held_even);
}

fn deadline(h: *const Handle, now: u64) u64 {
    return now +| h.lock_timeout_ns;
}

/// Runs `op` under the lock, taking it for the call unless the handle
/// already holds it (a `cache.lock()` transaction).
fn locked(h: *Handle, now: u64) error{ Timeout, Forked, Retired }!bool {
    if (h.lock_held) return false;
    acquire(h, deadline(h, now)) catch |err| switch (err) {
        error.Timeout => {
            counters.bump(h.line, .lock_timeouts);
            return error.Timeout;
        },
        error.Forked => return error.Forked,
        error.Retired => return error.Retired,
        error.Held => unreachable, // checked above
    };
    return true;
}

const Corrupt = sieve.Corrupt;

/// Called when `tag`'s run has no empty bucket within the probe bound.
/// Garbage (a bucket that does not reference a distinct occupied slot of
/// its tag within the bound of its own home) is Corrupt: the caller
/// rebuilds. A genuinely crowded run gives up an expired entry if it holds
/// one; otherwise the write is refused (Full). Bounded: probe_limit slots.
fn make_room(h: *Handle, tag: u32, now: u64) (Corrupt || error{Full})!void {
    var slots: [table.probe_max]u32 = undefined;
    var n: usize = 0;
    var p = table.Probe.init(h, tag);
    while (p.next()) |step| : (n += 1) {
        const b = step.bucket;
        const si = region.bucket_slot(b);
        // Below high_water too: a slot past it is garbage even if marked
        // occupied (clear leaves old slots as they were).
        if (si >= h.geo.capacity or si >= h.header().high_water) return error.Corrupt;
        const s = h.slot(si);
        if (s.state != region.slot_occupied or region.bucket_tag(b) != region.hash_tag(s.hash)) return error.Corrupt;
        if (table.distance(h, region.bucket_tag(b), step.index) >= table.probe_limit(h)) return error.Corrupt;
        slots[n] = si;
    }
    if (p.empty != null) return; // room after all
    assert(n == table.probe_limit(h));
    std.mem.sort(u32, slots[0..n], {}, std.sort.asc(u32));
    for (slots[1..n], slots[0 .. n - 1]) |a, b| if (a == b) return error.Corrupt;
    for (slots[0..n]) |si| {
        if (unexpired(h.slot(si), now)) continue;
        try remove_entry(h, si, true);
        h.header().expirations +%= 1;
        if (table.has_room(h, tag)) return;
    }
    return error.Full;
}

/// Removes a live entry's links. `state` becomes free first (the commit).
fn remove_entry(h: *Handle, index: u32, push_free: bool) Corrupt!void {
    const header = h.header();
    const s = h.slot(index);
    @atomicStore(u8, &s.state, region.slot_free, .monotonic);
    sys.compiler_barrier();
    faults.at(.remove_after_commit);
    const bucket = table.find_slot(h, region.hash_tag(s.hash), index) orelse return error.Corrupt;
    table.remove(h, bucket);
    faults.at(.remove_after_unlink_table);
    try sieve.unlink(h, index);
    if (header.count == 0) return error.Corrupt;
    header.count -= 1;
    if (push_free) {
        s.next = header.free_head;
        header.free_head = index;
    }
}

fn allocate(h: *Handle, now: u64) Corrupt!u32 {
    const header = h.header();
    if (header.free_head != region.nil) {
        const index = header.free_head;
        if (index >= header.high_water or index >= h.geo.capacity) return error.Corrupt;
        const next = h.slot(index).next;
        if (next != region.nil and next >= h.geo.capacity) return error.Corrupt;
        header.free_head = next;
        return index;
    }
    if (header.high_water < h.geo.capacity) {
        const index = header.high_water;
        // Free before it counts as used: see "Crash consistency" above.
        @atomicStore(u8, &h.slot(index).state, region.slot_free, .monotonic);
        sys.compiler_barrier();
        header.high_water = index + 1;
        return index;
    }
    if (header.high_water != h.geo.capacity) return error.Corrupt;
    const victim = try sieve.choose(h, now);
    faults.at(.evict_after_choose);
    try remove_entry(h, victim.index, false);
    if (victim.expired) header.expirations +%= 1 else header.evictions +%= 1;
    return victim.index;
}

/// set: store. add: store only where no live entry is (Exists otherwise).
/// update: store, keeping the expiry of the entry found, even one that has
/// passed (a new entry gets the given time to live); what increment needs,
/// so that a counter's window does not slide with every increment.
/// increment reads the counter and writes it under one hold of the lock,
/// and uses update only after a hit (set after a miss): if the counter
/// expired between its read and this write, the new count keeps the
/// expiry the read saw and expires with it, instead of carrying the old
/// count into a fresh window.
pub const Mode = enum(u32) { set = abi.insert_set, add = abi.insert_add, update = abi.insert_update };

fn insert_locked(h: *Handle, hash: u64, key: []const u8, value: []const u8, expires_ns: u64, now: u64) (Corrupt || error{Full})!void {
    const header = h.header();
    if (header.count > h.geo.capacity or header.high_water > h.geo.capacity) return error.Corrupt;
    if (find_key(h, hash, key)) |found| {
        write_slot(h, found.slot, hash, key, value, expires_ns, .overwrite);
    } else {
        // No empty bucket within the probe bound (table.zig): make one or
        // refuse before anything of this entry is written. allocate's
        // eviction cannot take that bucket away: backward shift never
        // fills the run's empty end.
        if (!table.has_room(h, region.hash_tag(hash))) try make_room(h, region.hash_tag(hash), now);
        const index = try allocate(h, now);
        write_slot(h, index, hash, key, value, expires_ns, .fresh);
        try sieve.push_head(h, index);
        if (!table.insert(h, region.hash_tag(hash), index)) return error.Corrupt;
        header.count += 1;
        faults.at(.insert_after_link);
    }
    header.sets +%= 1;
}

/// Full: the key's probe run has no room (table.zig); nothing was written.
pub const WriteError = error{ TooLarge, Timeout, Corrupt, Forked, Exists, Full, Retired };

/// Expiry for a per-entry TTL: negative = the cache default, 0 = never.
fn expiry(h: *const Handle, ttl_ms: f64, now: u64) u64 {
    const ms: f64 = if (ttl_ms < 0) @floatFromInt(h.geo.ttl_ms) else ttl_ms;
    if (ms <= 0 or std.math.isInf(ms)) return 0;
    const ns_f = @min(ms * std.time.ns_per_ms, 1.0e18);
    return now +| @as(u64, @intFromFloat(ns_f));
}

pub fn insert(h: *Handle, key: []const u8, value: []const u8, ttl_ms: f64, mode: Mode) WriteError!void {
    if (key.len > h.geo.key_bytes_max or value.len > h.geo.value_bytes_max) return error.TooLarge;
    const hash = key_hash(key);
    // The one clock read of the write (about 90 ns): the expiry, the lock
    // deadline and every "is it expired" below use this instant. A wait for
    // the lock makes it older by at most that wait; an entry then counts as
    // live for that much longer, never shorter.
    const now = sys.now_ns();
    var expires_ns = expiry(h, ttl_ms, now);
    const auto = try locked(h, now);
    defer if (auto) lock.release(h);
    // Read under the lock, so the kept expiry is the entry's own. Whether
    // it has passed is not decided again here: the caller decided that at
    // its read (see Mode).
    if (mode == .update) {
        if (find_key(h, hash, key)) |found| expires_ns = h.slot(found.slot).expires_ns;
    }
    // `add` stores only where no live entry is (an expired one counts as
    // absent). Decided under the lock, so atomic; decided before seq goes
    // odd, so a refused add costs readers nothing.
    if (mode == .add) {
        if (find_key(h, hash, key)) |found| {
            if (unexpired(h.slot(found.slot), now)) return error.Exists;
        }
    }
    const header = h.header();
    seqlock.write_begin(header);
    defer seqlock.write_end(header);
    insert_locked(h, hash, key, value, expires_ns, now) catch |e| {
        if (e == error.Full) return error.Full;
        // The file held an inconsistent structure: rebuild it from the
        // live slots and try once more on a consistent one. An add decides
        // again: the damaged table may have hidden a live entry.
        rebuild(h);
        if (mode == .add) {
            if (find_key(h, hash, key)) |found| {
                const s = h.slot(found.slot);
                const ours = s.value_len == value.len and std.mem.eql(u8, h.slot_value(found.slot)[0..value.len], value);
                if (unexpired(s, now) and !ours) return error.Exists;
            }
        }
        insert_locked(h, hash, key, value, expires_ns, now) catch |again| return switch (again) {
            error.Full => error.Full,
            error.Corrupt => error.Corrupt,
        };
    };
}

/// True if a live, unexpired entry was removed.
pub fn remove(h: *Handle, key: []const u8) error{ TooLarge, Timeout, Forked, Retired }!bool {
    if (key.len > h.geo.key_bytes_max) return error.TooLarge;
    const hash = key_hash(key);
    const now = sys.now_ns(); // the one clock read of the remove
    const auto = try locked(h, now);
    defer if (auto) lock.release(h);
    const header = h.header();
    // Find first: a miss needs no odd seq (we are the only writer).
    const found = find_key(h, hash, key) orelse return false;
    const was_live = unexpired(h.slot(found.slot), now);
    seqlock.write_begin(header);
    defer seqlock.write_end(header);
    remove_entry(h, found.slot, true) catch {
        // The entry's state was already free (the commit): it is gone
        // whatever the rest of the structure held; rebuild that.
        rebuild(h);
    };
    if (was_live) header.deletes +%= 1 else header.expirations +%= 1;
    return was_live;
}

pub fn clear(h: *Handle) error{ Timeout, Forked, Retired }!void {
    const auto = try locked(h, sys.now_ns());
    defer if (auto) lock.release(h);
    const header = h.header();
    seqlock.write_begin(header);
    defer seqlock.write_end(header);
    header.high_water = 0; // the commit point
    sys.compiler_barrier();
    faults.at(.clear_after_commit);
    reset_derived(h);
}
