//! The cache operations: lock-free lookup, and insert, remove, clear and
//! rebuild under the writer lock.
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
const sys = @import("sys.zig");
const Status = @import("status.zig").Status;
const Handle = @import("handle.zig").Handle;
const counters = @import("counters.zig");

const hash_seed: u64 = 0x5348_4D43_6B65_7931;
const checksum_seed: u64 = 0x5348_4D43_7375_6D31;

pub fn key_hash(key: []const u8) u64 {
    return std.hash.Wyhash.hash(hash_seed, key);
}

// ---------------------------------------------------------------- faults

/// Numbered points inside the mutations. A test sets `Handle.fault_step`
/// (exports.zig: shmc_test_fault) and the writer parks forever at that
/// point, holding the lock with seq odd, so the test can SIGKILL it there.
pub const Fault = enum(u32) {
    none = 0,
    insert_after_free_mark = 1,
    insert_after_fields = 2,
    insert_after_commit = 3,
    insert_after_link = 4,
    remove_after_commit = 5,
    remove_after_unlink_table = 6,
    evict_after_choose = 7,
    clear_after_commit = 8,
    overwrite_after_free_mark = 9,
    lock_held_even = 10,
};

/// With `fault_stop` (0x100) or'ed into the step, the writer instead stops
/// itself with SIGSTOP at that point and carries on when continued.
pub const fault_stop: u32 = 0x100;

fn fault(h: *const Handle, point: Fault) void {
    if (h.fault_step & ~fault_stop != @backingInt(point)) return;
    // Only with SHM_CACHE_TEST_HOOKS=1 in the environment at open.
    if (!h.hooks) return;
    if (h.fault_step & fault_stop != 0) {
        sys.stop_self();
        return;
    }
    // Park until killed: the test's SIGKILL arrives while we sleep here.
    while (true) sys.sleep_ns(std.time.ns_per_ms);
}

// ---------------------------------------------------------------- slots

fn slot_checksum(h: *const Handle, index: u32, state: u8) u64 {
    const s = h.slot(index);
    // XxHash64, not Wyhash: Wyhash's multiply can zero its whole state when
    // an input lane equals one of its public constants, so a value holding
    // those 8 bytes could make the checksum blind to the bytes before it
    // (a torn write would pass). XxHash64's rounds multiply by odd
    // constants, which loses nothing.
    var hasher = std.hash.XxHash64.init(checksum_seed);
    const fields = [_]u64{
        s.hash,
        s.expires_ns,
        s.stamp,
        (@as(u64, s.key_len) << 32) | s.value_len,
        state,
    };
    hasher.update(std.mem.sliceAsBytes(&fields));
    const key_len = @min(s.key_len, h.geo.key_bytes_max);
    const value_len = @min(s.value_len, h.geo.value_bytes_max);
    hasher.update(h.slot_key(index)[0..key_len]);
    hasher.update(h.slot_value(index)[0..value_len]);
    return hasher.final();
}

/// Whether a slot holds a complete entry (writers and rebuild only).
fn slot_live(h: *const Handle, index: u32) bool {
    const s = h.slot(index);
    if (s.state != region.slot_occupied) return false;
    if (s.key_len > h.geo.key_bytes_max or s.value_len > h.geo.value_bytes_max) return false;
    return slot_checksum(h, index, region.slot_occupied) == s.checksum;
}

fn slot_key_eql(h: *const Handle, index: u32, key: []const u8) bool {
    return std.mem.eql(u8, h.slot_key(index)[0..key.len], key);
}

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
    fault(h, if (kind == .fresh) .insert_after_free_mark else .overwrite_after_free_mark);
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
    fault(h, .insert_after_fields);
    s.checksum = slot_checksum(h, index, region.slot_occupied);
    sys.compiler_barrier();
    @atomicStore(u8, &s.state, region.slot_occupied, .monotonic);
    sys.compiler_barrier();
    fault(h, .insert_after_commit);
}

// ---------------------------------------------------------------- reads

const Probe = union(enum) {
    hit: u32, // value length
    miss,
    expired,
    /// Inconsistent data: a concurrent writer (the seqlock will say) or a
    /// corrupt region.
    garbage,
};

/// Where a hit was found and which write it read: the slot, the write's
/// stamp and the slot's checksum, all read under the seqlock with the
/// value. In a sound file the stamp alone names the write (stamp_next only
/// grows); the checksum (over key, value and stamp) guards a corrupt file
/// whose stamps repeat: a false match then needs both to repeat.
pub const Hit = struct {
    /// In: the caller's memo of values it already holds, `memo_stride` u32
    /// per entry (slot, value length, stamp low, stamp high, checksum low,
    /// checksum high), direct-mapped by slot; its length is a power of two
    /// times memo_stride, or 0. Caller memory, not shared.
    memo: []const u32 = &.{},
    index: u32 = 0,
    stamp: u64 = 0,
    check: u64 = 0,
    /// Out: the memo entry of `index` names this exact write, so the value
    /// was not copied (the caller already holds it decoded).
    memo_hit: bool = false,
};

pub const memo_stride = 6;

/// Whether the memo entry for slot `si` names this write of a value of
/// `value_len` bytes (the length is redundant but cheap: a caller never
/// decodes a length other than the one it holds).
fn memo_matches(memo: []const u32, si: u32, value_len: u32, stamp: u64, check: u64) bool {
    if (memo.len == 0) return false;
    const mask: u32 = @intCast(memo.len / memo_stride - 1);
    const e = @as(usize, si & mask) * memo_stride;
    return memo[e] == si and memo[e + 1] == value_len and
        memo[e + 2] == @as(u32, @truncate(stamp)) and memo[e + 3] == @as(u32, @truncate(stamp >> 32)) and
        memo[e + 4] == @as(u32, @truncate(check)) and memo[e + 5] == @as(u32, @truncate(check >> 32));
}

/// Looks `key` up without any lock. Everything read is bounds-checked
/// before use; the caller decides by the seqlock whether to believe it.
/// `out` null only tests presence.
fn probe(h: *const Handle, hash: u64, key: []const u8, out: ?[]u8, hit: *Hit) Probe {
    const tag = region.hash_tag(hash);
    const mask = h.geo.table_capacity - 1;
    var index = tag & mask;
    var step: u32 = 0;
    // No bucket lies farther from its home (table.zig), so a longer probe
    // finds nothing: a miss, not garbage.
    while (step < table.probe_limit(h)) : (step += 1) {
        const b = table.load(h, index);
        if (b == 0) return .miss;
        if (region.bucket_tag(b) == tag) {
            const si = region.bucket_slot(b);
            if (si >= h.geo.capacity) return .garbage;
            const s = h.slot(si);
            // Each field is loaded once (atomically, Monotonic) so that the
            // value checked is the value used: no double fetch.
            const same = @atomicLoad(u64, &s.hash, .monotonic) == hash and
                @atomicLoad(u32, &s.key_len, .monotonic) == key.len and
                @atomicLoad(u8, &s.state, .monotonic) == region.slot_occupied;
            if (same and slot_key_eql(h, si, key)) {
                const value_len = @atomicLoad(u32, &s.value_len, .monotonic);
                if (value_len > h.geo.value_bytes_max) return .garbage;
                const expires = @atomicLoad(u64, &s.expires_ns, .monotonic);
                if (expires != 0 and sys.now_ns() >= expires) return .expired;
                if (out) |buf| if (value_len > buf.len) return .garbage;
                const stamp = @atomicLoad(u64, &s.stamp, .monotonic);
                const check = @atomicLoad(u64, &s.checksum, .monotonic);
                hit.index = si;
                hit.stamp = stamp;
                hit.check = check;
                // A retry after a failed validation recomputes this, so a
                // validated memo_hit is about the same write as index and
                // stamp and check: no value bytes needed.
                hit.memo_hit = memo_matches(hit.memo, si, value_len, stamp, check);
                if (out) |buf| if (!hit.memo_hit) {
                    @memcpy(buf[0..value_len], h.slot_value(si)[0..value_len]);
                };
                return .{ .hit = value_len };
            }
        }
        index = (index + 1) & mask;
    }
    // No bucket lies farther from its home (table.zig).
    return .miss;
}

pub const LookupError = error{ TooLarge, Timeout };

/// The value's length (copied into `out`), or null on a miss. On a hit,
/// `hit` says where (only meaningful when the result is not null).
pub fn lookup(h: *Handle, key: []const u8, out: ?[]u8, hit: *Hit) LookupError!?u32 {
    if (key.len > h.geo.key_bytes_max) return error.TooLarge;
    const hash = key_hash(key);
    const header = h.header();
    if (h.lock_held) {
        // We are the only writer and between mutations: no validation.
        return count_read(h, probe(h, hash, key, out, hit), hit.index, out != null);
    }
    var deadline_ns: u64 = 0;
    var backoff: lock.Backoff = .{};
    // Bound: every iteration either returns or waits in backoff; once
    // backoff is past spinning, the deadline check returns Timeout.
    while (true) {
        const s1 = seqlock.load_acquire(header);
        if (s1 & 1 == 0) {
            const result = probe(h, hash, key, out, hit);
            // Validated: the value, hit.index, stamp and check were read
            // together, between two writes.
            if (seqlock.validate(header, s1)) return count_read(h, result, hit.index, out != null);
        }
        if (deadline_ns == 0) deadline_ns = sys.now_ns() +| h.lock_timeout_ns;
        if (backoff.probing()) {
            if (sys.now_ns() >= deadline_ns) {
                counters.bump(h.line, .read_timeouts);
                counters.bump(h.line, .misses);
                return error.Timeout;
            }
            if (seqlock.is_odd(header)) recover_if_dead(h, deadline_ns);
        }
        backoff.wait();
    }
}

/// What `scan` found: an entry (`index`, lengths), or none in the slots
/// from `from` up to `index` (`found` false), the end when `index` is
/// past the last slot in use.
pub const Entry = struct { found: bool = false, index: u32 = 0, key_len: u32 = 0, value_len: u32 = 0 };

/// The most slots one `scan` pass reads. A pass is validated as a whole, so
/// a long one over a sparse region might never fit between two writes of a
/// busy writer; passes this short do (about a microsecond each).
pub const scan_chunk: u32 = 1024;

/// The first live, unexpired entry in a slot from `from` up to `from +
/// scan_chunk` (and below high_water): copies its key into `key_out` and,
/// when given, its value into `value_out`, and says where it was. Like
/// `lookup`, without any lock, the pass validated by the seqlock (a write
/// during it means a retry), so an entry is never torn. Returns false when
/// no slot is left to read (entry.index is then where the next call
/// would start). It neither counts a hit nor marks the entry visited: a scan
/// is not a use.
pub fn scan(h: *Handle, from: u32, key_out: []u8, value_out: ?[]u8, entry: *Entry) error{Timeout}!bool {
    const header = h.header();
    // We are the only writer and between mutations: no validation.
    if (h.lock_held) return scan_slots(h, from, key_out, value_out, entry);
    var deadline_ns: u64 = 0;
    var backoff: lock.Backoff = .{};
    // Bound: as lookup's; every iteration returns or waits in backoff, and
    // past spinning the deadline check returns Timeout.
    while (true) {
        const s1 = seqlock.load_acquire(header);
        if (s1 & 1 == 0) {
            const found = scan_slots(h, from, key_out, value_out, entry);
            // Validated: the key, value and lengths were read together,
            // between two writes.
            if (seqlock.validate(header, s1)) return found;
        }
        if (deadline_ns == 0) deadline_ns = sys.now_ns() +| h.lock_timeout_ns;
        if (backoff.probing()) {
            if (sys.now_ns() >= deadline_ns) {
                counters.bump(h.line, .read_timeouts);
                return error.Timeout;
            }
            if (seqlock.is_odd(header)) recover_if_dead(h, deadline_ns);
        }
        backoff.wait();
    }
}

/// One unvalidated pass of `scan`; true while slots are left to read (an
/// entry found, or the chunk ended first). Everything read is
/// bounds-checked before use; a slot whose lengths do not fit (torn, or a
/// corrupt file) is passed.
fn scan_slots(h: *const Handle, from: u32, key_out: []u8, value_out: ?[]u8, entry: *Entry) bool {
    // Monotonic: validated by the seqlock with the rest; clamped in case
    // the file is corrupt.
    const high = @min(@atomicLoad(u32, &h.header().high_water, .monotonic), h.geo.capacity);
    const now_ns = sys.now_ns();
    const end = @min(high, from +| scan_chunk);
    entry.* = .{ .found = false, .index = @max(from, end) };
    var index = from;
    // Bound: at most scan_chunk steps.
    while (index < end) : (index += 1) {
        const s = h.slot(index);
        if (@atomicLoad(u8, &s.state, .monotonic) != region.slot_occupied) continue;
        const key_len = @atomicLoad(u32, &s.key_len, .monotonic);
        const value_len = @atomicLoad(u32, &s.value_len, .monotonic);
        if (key_len > h.geo.key_bytes_max or key_len > key_out.len) continue;
        if (value_len > h.geo.value_bytes_max) continue;
        if (value_out) |buf| if (value_len > buf.len) continue;
        const expires = @atomicLoad(u64, &s.expires_ns, .monotonic);
        if (expires != 0 and now_ns >= expires) continue;
        @memcpy(key_out[0..key_len], h.slot_key(index)[0..key_len]);
        if (value_out) |buf| @memcpy(buf[0..value_len], h.slot_value(index)[0..value_len]);
        entry.* = .{ .found = true, .index = index, .key_len = key_len, .value_len = value_len };
        assert(entry.index < h.geo.capacity);
        return true;
    }
    assert(!entry.found);
    return end < high;
}

/// A presence test (`use` false, from `has`) neither counts nor marks the
/// entry visited: only a read of the value is a use.
fn count_read(h: *Handle, result: Probe, hit_index: u32, use: bool) ?u32 {
    switch (result) {
        .hit => |len| {
            if (!use) return len;
            counters.bump(h.line, .hits);
            const s = h.slot(hit_index);
            // Advisory SIEVE bit. Load first so a hot entry's line is not
            // written on every hit; Monotonic, since a lost or misplaced bit
            // (the slot was reused meanwhile) only affects eviction choice.
            if (@atomicLoad(u8, &s.visited, .monotonic) == 0) {
                @atomicStore(u8, &s.visited, 1, .monotonic);
            }
            return len;
        },
        // A validated .garbage means a corrupt region: report a miss; the
        // next writer that trips over it rebuilds.
        .miss, .expired, .garbage => {
            if (use) counters.bump(h.line, .misses);
            return null;
        },
    }
}

/// A reader found seq odd for longer than a spin. If the lock owner is
/// dead (or the lock is free, which with an odd seq also means a writer
/// died), take the lock, which repairs, and give it back.
fn recover_if_dead(h: *Handle, deadline_ns: u64) void {
    const word = @atomicLoad(u64, &h.header().lock_word, .monotonic);
    const owner = lock.word_slot(word);
    const dead = owner == 0 or owner == h.live_slot or !liveness.is_alive(h.fd, owner);
    if (!dead) return;
    if (acquire(h, deadline_ns)) |_| {
        lock.release(h);
    } else |_| {}
}

// ---------------------------------------------------------------- locking

/// Takes the writer lock and repairs what a dead owner left behind.
pub fn acquire(h: *Handle, deadline_ns: u64) lock.AcquireError!void {
    const how = try lock.acquire(h, deadline_ns);
    const header = h.header();
    if (how == .recovered) header.recoveries +%= 1;
    if (@atomicLoad(u64, &header.seq, .monotonic) & 1 == 1) {
        // The previous owner died mid-mutation: seq stays odd (readers keep
        // out) while we rebuild, then becomes even.
        rebuild(h);
        seqlock.write_end(header);
    }
    fault(h, .lock_held_even);
}

fn deadline(h: *const Handle) u64 {
    return sys.now_ns() +| h.lock_timeout_ns;
}

/// Runs `op` under the lock, taking it for the call unless the handle
/// already holds it (a `cache.lock()` transaction).
fn locked(h: *Handle) error{ Timeout, Forked }!bool {
    if (h.lock_held) return false;
    acquire(h, deadline(h)) catch |err| switch (err) {
        error.Timeout => {
            counters.bump(h.line, .lock_timeouts);
            return error.Timeout;
        },
        error.Forked => return error.Forked,
        error.Held => unreachable, // checked above
    };
    return true;
}

// ---------------------------------------------------------------- writes

const Found = struct { slot: u32, bucket: u32 };

/// Writer-side lookup (no seqlock: the caller holds the lock).
fn find_key(h: *const Handle, hash: u64, key: []const u8) ?Found {
    const tag = region.hash_tag(hash);
    const mask = h.geo.table_capacity - 1;
    var index = tag & mask;
    var step: u32 = 0;
    while (step < table.probe_limit(h)) : (step += 1) {
        const b = table.load(h, index);
        if (b == 0) return null;
        const si = region.bucket_slot(b);
        if (region.bucket_tag(b) == tag and si < h.geo.capacity) {
            const s = h.slot(si);
            if (s.hash == hash and s.key_len == key.len and slot_key_eql(h, si, key)) {
                return .{ .slot = si, .bucket = index };
            }
        }
        index = (index + 1) & mask;
    }
    return null;
}

const Corrupt = sieve.Corrupt;

/// Called when `tag`'s run has no empty bucket within the probe bound.
/// Garbage (a bucket that does not reference a distinct occupied slot of
/// its tag within the bound of its own home) is Corrupt: the caller
/// rebuilds. A genuinely crowded run gives up an expired entry if it holds
/// one; otherwise the write is refused (Full). Bounded: probe_limit slots.
fn make_room(h: *Handle, tag: u32) (Corrupt || error{Full})!void {
    const mask = h.geo.table_capacity - 1;
    var slots: [table.probe_max]u32 = undefined;
    var n: usize = 0;
    var index = table.home(h, tag);
    while (n < table.probe_limit(h)) : (n += 1) {
        const b = table.load(h, index);
        if (b == 0) return; // room after all
        const si = region.bucket_slot(b);
        // Below high_water too: a slot past it is garbage even if marked
        // occupied (clear leaves old slots as they were).
        if (si >= h.geo.capacity or si >= h.header().high_water) return error.Corrupt;
        const s = h.slot(si);
        if (s.state != region.slot_occupied or region.bucket_tag(b) != region.hash_tag(s.hash)) return error.Corrupt;
        if (table.distance(h, region.bucket_tag(b), index) >= table.probe_limit(h)) return error.Corrupt;
        slots[n] = si;
        index = (index + 1) & mask;
    }
    std.mem.sort(u32, slots[0..n], {}, std.sort.asc(u32));
    for (slots[1..n], slots[0 .. n - 1]) |a, b| if (a == b) return error.Corrupt;
    const now = sys.now_ns();
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
    fault(h, .remove_after_commit);
    const bucket = table.find_slot(h, region.hash_tag(s.hash), index) orelse return error.Corrupt;
    table.remove(h, bucket);
    fault(h, .remove_after_unlink_table);
    try sieve.unlink(h, index);
    if (header.count == 0) return error.Corrupt;
    header.count -= 1;
    if (push_free) {
        s.next = header.free_head;
        header.free_head = index;
    }
}

fn allocate(h: *Handle) Corrupt!u32 {
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
    const victim = try sieve.choose(h, sys.now_ns());
    fault(h, .evict_after_choose);
    try remove_entry(h, victim.index, false);
    if (victim.expired) header.expirations +%= 1 else header.evictions +%= 1;
    return victim.index;
}

/// set: store. add: store only where no live entry is (Exists otherwise).
/// update: store, keeping the expiry of a live entry (a new one gets the
/// given time to live); what increment needs, so that a counter's window
/// does not slide with every increment.
pub const Mode = enum(u32) { set = 0, add = 1, update = 2 };

/// Whether an entry is live at `now` (writers only).
fn unexpired(s: *const region.Slot, now_ns: u64) bool {
    return s.expires_ns == 0 or now_ns < s.expires_ns;
}

fn insert_locked(h: *Handle, hash: u64, key: []const u8, value: []const u8, expires_ns: u64) (Corrupt || error{Full})!void {
    const header = h.header();
    if (header.count > h.geo.capacity or header.high_water > h.geo.capacity) return error.Corrupt;
    if (find_key(h, hash, key)) |found| {
        write_slot(h, found.slot, hash, key, value, expires_ns, .overwrite);
    } else {
        // No empty bucket within the probe bound (table.zig): make one or
        // refuse before anything of this entry is written. allocate's
        // eviction cannot take that bucket away: backward shift never
        // fills the run's empty end.
        if (!table.has_room(h, region.hash_tag(hash))) try make_room(h, region.hash_tag(hash));
        const index = try allocate(h);
        write_slot(h, index, hash, key, value, expires_ns, .fresh);
        try sieve.push_head(h, index);
        if (!table.insert(h, region.hash_tag(hash), index)) return error.Corrupt;
        header.count += 1;
        fault(h, .insert_after_link);
    }
    header.sets +%= 1;
}

/// Full: the key's probe run has no room (table.zig); nothing was written.
pub const WriteError = error{ TooLarge, Timeout, Corrupt, Forked, Exists, Full };

/// Expiry for a per-entry TTL: negative = the cache default, 0 = never.
fn expiry(h: *const Handle, ttl_ms: f64) u64 {
    const ms: f64 = if (ttl_ms < 0) @floatFromInt(h.geo.ttl_ms) else ttl_ms;
    if (ms <= 0 or std.math.isInf(ms)) return 0;
    const ns_f = @min(ms * std.time.ns_per_ms, 1.0e18);
    return sys.now_ns() +| @as(u64, @intFromFloat(ns_f));
}

pub fn insert(h: *Handle, key: []const u8, value: []const u8, ttl_ms: f64, mode: Mode) WriteError!void {
    if (key.len > h.geo.key_bytes_max or value.len > h.geo.value_bytes_max) return error.TooLarge;
    const hash = key_hash(key);
    var expires_ns = expiry(h, ttl_ms);
    const auto = try locked(h);
    defer if (auto) lock.release(h);
    // Read under the lock, so the kept expiry is the live entry's own.
    if (mode == .update) {
        if (find_key(h, hash, key)) |found| {
            const s = h.slot(found.slot);
            if (unexpired(s, sys.now_ns())) expires_ns = s.expires_ns;
        }
    }
    // `add` stores only where no live entry is (an expired one counts as
    // absent). Decided under the lock, so atomic; decided before seq goes
    // odd, so a refused add costs readers nothing.
    if (mode == .add) {
        if (find_key(h, hash, key)) |found| {
            if (unexpired(h.slot(found.slot), sys.now_ns())) return error.Exists;
        }
    }
    const header = h.header();
    seqlock.write_begin(header);
    defer seqlock.write_end(header);
    insert_locked(h, hash, key, value, expires_ns) catch |e| {
        if (e == error.Full) return error.Full;
        // The file held an inconsistent structure: rebuild it from the
        // live slots and try once more on a consistent one. An add decides
        // again: the damaged table may have hidden a live entry.
        rebuild(h);
        if (mode == .add) {
            if (find_key(h, hash, key)) |found| {
                const s = h.slot(found.slot);
                const ours = s.value_len == value.len and std.mem.eql(u8, h.slot_value(found.slot)[0..value.len], value);
                if (unexpired(s, sys.now_ns()) and !ours) return error.Exists;
            }
        }
        insert_locked(h, hash, key, value, expires_ns) catch |again| return switch (again) {
            error.Full => error.Full,
            error.Corrupt => error.Corrupt,
        };
    };
}

/// True if a live, unexpired entry was removed.
pub fn remove(h: *Handle, key: []const u8) error{ TooLarge, Timeout, Forked }!bool {
    if (key.len > h.geo.key_bytes_max) return error.TooLarge;
    const hash = key_hash(key);
    const auto = try locked(h);
    defer if (auto) lock.release(h);
    const header = h.header();
    // Find first: a miss needs no odd seq (we are the only writer).
    const found = find_key(h, hash, key) orelse return false;
    const was_live = unexpired(h.slot(found.slot), sys.now_ns());
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

pub fn clear(h: *Handle) error{ Timeout, Forked }!void {
    const auto = try locked(h);
    defer if (auto) lock.release(h);
    const header = h.header();
    seqlock.write_begin(header);
    defer seqlock.write_end(header);
    header.high_water = 0; // the commit point
    sys.compiler_barrier();
    fault(h, .clear_after_commit);
    reset_derived(h);
}

fn reset_derived(h: *Handle) void {
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

// ---------------------------------------------------------------- rebuild

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

// ---------------------------------------------------------------- verify

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

// ---------------------------------------------------------------- tests

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
    while (n < table.probe_max) : (n += 1) try insert(h, colliding_key(&kb, n), "v", if (n == 100) 200 else -1, .set);
    try testing.expectError(error.Full, insert(h, colliding_key(&kb, 1000), "v", -1, .set));
    // Only time can expire an entry: past key 100's 200 ms TTL.
    const until = sys.now_ns() + 250 * std.time.ns_per_ms;
    while (sys.now_ns() < until) sys.sleep_ns(10 * std.time.ns_per_ms);
    try insert(h, colliding_key(&kb, 1000), "new", -1, .set);
    try testing.expectEqualStrings("new", t.get(colliding_key(&kb, 1000), &out).?);
    // Key 100 is gone from the table, not just expired.
    try testing.expect(find_key(h, key_hash(colliding_key(&kb, 100)), colliding_key(&kb, 100)) == null);
    try testing.expectEqual(table.probe_max, h.header().count);
    try testing.expectEqual(@as(u64, 1), h.header().expirations);
    try testing.expectEqual(@as(u32, 0), t.problems());
}
