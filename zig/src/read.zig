//! The lock-free reads: lookup (get and has) and scan (keys and entries),
//! each validated by the seqlock (seqlock.zig), so a reader only ever
//! returns what one complete `set` wrote; and the reader's way out of a
//! dead writer's odd seq (recover_if_dead).

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
const acquire = @import("write.zig").acquire;

const Outcome = union(enum) {
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

const memo_stride = abi.memo_stride;

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
fn probe(h: *const Handle, hash: u64, key: []const u8, out: ?[]u8, hit: *Hit, clock: *sys.Clock) Outcome {
    const tag = region.hash_tag(hash);
    var p = table.Probe.init(h, tag);
    while (p.next()) |step| {
        const b = step.bucket;
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
                if (expires != 0 and clock.now() >= expires) return .expired;
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
    }
    // An empty bucket, or the bound: no bucket lies farther from its home
    // (table.zig), so a longer probe finds nothing. A miss, not garbage.
    return .miss;
}

pub const LookupError = error{ TooLarge, Timeout };

/// The value's length (copied into `out`), or null on a miss. On a hit,
/// `hit` says where (only meaningful when the result is not null).
pub fn lookup(h: *Handle, key: []const u8, out: ?[]u8, hit: *Hit) LookupError!?u32 {
    if (key.len > h.geo.key_bytes_max) return error.TooLarge;
    const hash = key_hash(key);
    const header = h.header();
    var clock: sys.Clock = .{};
    if (h.lock_held) {
        // We are the only writer and between mutations: no validation.
        return count_read(h, probe(h, hash, key, out, hit, &clock), hit.index, out != null);
    }
    var deadline_ns: u64 = 0;
    var backoff: lock.Backoff = .{};
    // Bound: every iteration either returns or waits in backoff; once
    // backoff is past spinning, the deadline check returns Timeout.
    while (true) {
        const s1 = seqlock.load_acquire(header);
        if (s1 & 1 == 0) {
            const result = probe(h, hash, key, out, hit, &clock);
            // Validated: the value, hit.index, stamp and check were read
            // together, between two writes.
            if (seqlock.validate(header, s1)) return count_read(h, result, hit.index, out != null);
        }
        if (deadline_ns == 0) deadline_ns = clock.now() +| h.lock_timeout_ns;
        if (backoff.probing()) {
            // A fresh read: this measures the wait.
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
    var clock: sys.Clock = .{};
    if (h.lock_held) return scan_slots(h, from, key_out, value_out, entry, &clock);
    var deadline_ns: u64 = 0;
    var backoff: lock.Backoff = .{};
    // Bound: as lookup's; every iteration returns or waits in backoff, and
    // past spinning the deadline check returns Timeout.
    while (true) {
        const s1 = seqlock.load_acquire(header);
        if (s1 & 1 == 0) {
            const found = scan_slots(h, from, key_out, value_out, entry, &clock);
            // Validated: the key, value and lengths were read together,
            // between two writes.
            if (seqlock.validate(header, s1)) return found;
        }
        if (deadline_ns == 0) deadline_ns = clock.now() +| h.lock_timeout_ns;
        if (backoff.probing()) {
            // A fresh read: this measures the wait.
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
fn scan_slots(h: *const Handle, from: u32, key_out: []u8, value_out: ?[]u8, entry: *Entry, clock: *sys.Clock) bool {
    // Monotonic: validated by the seqlock with the rest; clamped in case
    // the file is corrupt.
    const high = @min(@atomicLoad(u32, &h.header().high_water, .monotonic), h.geo.capacity);
    const now_ns = clock.now();
    const end = @min(high, from +| scan_chunk);
    entry.* = .{ .found = false, .index = @max(from, end) };
    var index = from;
    // Bound: at most scan_chunk steps.
    while (index < end) : (index += 1) {
        const s = h.slot(index);
        // Monotonic, as in probe: each field is loaded once, so the value
        // checked is the value used, and the seqlock validation orders
        // them all (a pass that raced a write is discarded).
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
fn count_read(h: *Handle, result: Outcome, hit_index: u32, use: bool) ?u32 {
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
