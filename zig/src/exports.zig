//! The C ABI: pointer + length pairs become slices, errors become a Status,
//! and nothing else happens here. The TypeScript side mirrors every symbol
//! in lib/ffi/symbols.ts.

const std = @import("std");
const files = @import("files.zig");
const read = @import("read.zig");
const write = @import("write.zig");
const rebuild = @import("rebuild.zig").rebuild;
const verify = @import("verify.zig");
const lock = @import("lock.zig");
const liveness = @import("liveness.zig");
const seqlock = @import("seqlock.zig");
const region = @import("region.zig");
const Status = @import("status.zig").Status;
const Handle = @import("handle.zig").Handle;
const sys = @import("sys.zig");
const counters = @import("counters.zig");
const abi = @import("abi.zig");

pub const abi_version = abi.version;
const watch = @import("watch.zig");

/// One hour: longer waits are a configuration mistake, not a bound.
const lock_timeout_ms_max: u64 = 3_600_000;

fn bytes(ptr: ?[*]const u8, len: usize) []const u8 {
    if (len == 0) return &.{};
    return ptr.?[0..len];
}

fn handle(h: ?*anyopaque) *Handle {
    return @ptrCast(@alignCast(h.?));
}

fn neg(status: Status) i32 {
    return -@as(i32, @backingInt(status));
}

/// A handle opened before this process was forked belongs to the parent:
/// every entry point that reads or writes the region refuses it.
fn forked(hd: *const Handle) bool {
    return hd.fork_epoch != sys.fork_epoch;
}

/// The status that refuses an operation before it touches the region: the
/// handle was inherited across fork(), or its region is no longer the
/// cache's (watch.zig: destroyed, replaced, or its file removed). Null
/// when the operation may go on.
fn refused(hd: *Handle) ?i32 {
    if (forked(hd)) return neg(.forked);
    if (watch.retired(hd)) return neg(.retired);
    return null;
}

export fn shmc_abi_version() u32 {
    return abi_version;
}

/// Writes the numbers both sides share (abi.zig `constants`, in order) to
/// out[0..cap) and returns how many there are (all of them, even when cap
/// is smaller: the caller then knows the lists differ).
export fn shmc_constants(out: [*]u32, cap: u32) u32 {
    const n = @min(cap, abi.constants.len);
    @memcpy(out[0..n], abi.constants[0..n]);
    return abi.constants.len;
}

fn fail_out(m: *const files.Message, status_out: [*]i32) void {
    status_out[0] = @backingInt(m.status);
    status_out[1] = @intCast(m.len);
}

/// config: [capacity, key_bytes_max, value_bytes_max, ttl_ms,
/// lock_timeout_ms, codec, on_mismatch], in and out. In: -1 for a field
/// not given (any of the first six but lock_timeout_ms; an existing
/// region's value is used, and a missing region is not created unless the
/// first three are given); on_mismatch 0 = fail with mismatch, 1 = replace
/// the region (files.zig `replace`). Out, on success: the region's
/// capacity, key_bytes_max, value_bytes_max, ttl_ms and codec.
/// On failure returns null and writes the status to status_out[0] and a
/// message (not NUL-terminated; its length to status_out[1]) into err.
export fn shmc_open(
    dir: ?[*]const u8,
    dir_len: u32,
    name: ?[*]const u8,
    name_len: u32,
    config: [*]f64,
    err: [*]u8,
    err_cap: u32,
    status_out: [*]i32,
) ?*anyopaque {
    var m: files.Message = .{ .buf = err[0..err_cap] };
    var options: files.Options = undefined;
    const fields = .{ "capacity", "key_bytes_max", "value_bytes_max", "ttl_ms", "lock_timeout_ms", "codec" };
    // The last field, on_mismatch, is read below.
    comptime std.debug.assert(fields.len + 1 == abi.config_len);
    inline for (fields, 0..) |field, i| {
        const v = config[i];
        const optional = i != 4;
        if (optional and v == -1) {
            @field(options, field) = null;
        } else if (!(v >= 0 and v <= 1e15) or @floor(v) != v) {
            m.fail(.invalid_argument, "{s} must be a non-negative integer, got {d}", .{ field, v }) catch {};
            fail_out(&m, status_out);
            return null;
        } else {
            @field(options, field) = @intFromFloat(v);
        }
    }
    const on_mismatch = config[6];
    if (on_mismatch != 0 and on_mismatch != 1) {
        m.fail(.invalid_argument, "on_mismatch must be 0 or 1, got {d}", .{on_mismatch}) catch {};
        fail_out(&m, status_out);
        return null;
    }
    options.replace = on_mismatch == 1;
    if (options.lock_timeout_ms > lock_timeout_ms_max) {
        m.fail(.invalid_argument, "lockTimeoutMs must be at most {d}, got {d}", .{ lock_timeout_ms_max, options.lock_timeout_ms }) catch {};
        fail_out(&m, status_out);
        return null;
    }
    const h = files.open(bytes(dir, dir_len), bytes(name, name_len), options, &m) catch {
        fail_out(&m, status_out);
        return null;
    };
    config[0] = @floatFromInt(h.geo.capacity);
    config[1] = @floatFromInt(h.geo.key_bytes_max);
    config[2] = @floatFromInt(h.geo.value_bytes_max);
    // A TTL beyond 2^53 ms (a file's garbage) rounds; it only ever delays.
    config[3] = @floatFromInt(h.geo.ttl_ms);
    config[5] = @floatFromInt(h.geo.codec);
    status_out[0] = 0;
    status_out[1] = 0;
    return h;
}

/// Releases the lock if this handle holds it, then unmaps. Call once.
export fn shmc_close(h: ?*anyopaque) void {
    files.close(handle(h));
}

export fn shmc_destroy(dir: ?[*]const u8, dir_len: u32, name: ?[*]const u8, name_len: u32, err: [*]u8, err_cap: u32, status_out: [*]i32) i32 {
    var m: files.Message = .{ .buf = err[0..err_cap] };
    files.destroy(bytes(dir, dir_len), bytes(name, name_len), &m) catch {
        fail_out(&m, status_out);
        return neg(m.status);
    };
    return 0;
}

/// Reads the cache `name` without opening a handle on it (files.inspect:
/// no liveness slot, no lock, a read-only mapping). Fills out[0..inspect_len]
/// (as f64): the stats vector of shmc_stats for the whole cache, then the
/// file's bytes, key_bytes_max, value_bytes_max, ttl_ms, open handles, the
/// lock owner's slot (0 = free), 1 if that owner is alive, 1 if a writer is
/// mid-mutation (seq odd). The open handles' PIDs go to pids[0..pids_cap).
/// Returns the number of open handles, or -status with a message as for
/// shmc_open.
export fn shmc_inspect(dir: ?[*]const u8, dir_len: u32, name: ?[*]const u8, name_len: u32, out: [*]f64, pids: [*]u32, pids_cap: u32, err: [*]u8, err_cap: u32, status_out: [*]i32) i32 {
    var m: files.Message = .{ .buf = err[0..err_cap] };
    const in = files.inspect(bytes(dir, dir_len), bytes(name, name_len), pids[0..pids_cap], &m) catch {
        fail_out(&m, status_out);
        return neg(m.status);
    };
    const owner = lock.word_slot(in.lock_word);
    const owner_pid = if (owner == 0) 0 else lock.word_pid(in.lock_word);
    stats_fill(out, in.totals, in.shared, in.count, in.geo.capacity, owner_pid, in.seq);
    const extra = [inspect_len - stats_len]u64{
        in.file_bytes,                in.geo.key_bytes_max, in.geo.value_bytes_max,
        in.geo.ttl_ms,                in.handles,           owner,
        @intFromBool(in.owner_alive), in.seq & 1,
    };
    for (extra, stats_len..) |v, i| out[i] = @floatFromInt(v);
    return @intCast(in.handles);
}

const inspect_len = abi.inspect_len;

/// The cache names in the directory (`dir`, or the per-user default when
/// dir_len is 0), each followed by '\n', into out[0..out_cap]. Returns the
/// bytes the whole list takes (larger than out_cap: it was cut; call again
/// with a buffer that large), or -status (not_found when the directory
/// does not exist) with a message as for shmc_open.
export fn shmc_list(dir: ?[*]const u8, dir_len: u32, out: [*]u8, out_cap: u32, err: [*]u8, err_cap: u32, status_out: [*]i32) i32 {
    var m: files.Message = .{ .buf = err[0..err_cap] };
    const len = files.list(bytes(dir, dir_len), out[0..out_cap], &m) catch {
        fail_out(&m, status_out);
        return neg(m.status);
    };
    return @intCast(@min(len, std.math.maxInt(i32)));
}

/// The cache directory (`dir`, or the per-user default when dir_len is 0)
/// into out[0..out_cap], checked as an open checks it. Its length, or
/// -status (not_found when it does not exist) with a message as for
/// shmc_open.
export fn shmc_dir(dir: ?[*]const u8, dir_len: u32, out: [*]u8, out_cap: u32, err: [*]u8, err_cap: u32, status_out: [*]i32) i32 {
    var m: files.Message = .{ .buf = err[0..err_cap] };
    const path = files.resolve_dir(bytes(dir, dir_len), out[0..out_cap], &m) catch {
        fail_out(&m, status_out);
        return neg(m.status);
    };
    return @intCast(path.len);
}

/// The value's length (>= 0, copied into out), or -status (miss = -1).
export fn shmc_lookup(h: ?*anyopaque, key: ?[*]const u8, key_len: u32, out: ?[*]u8, out_cap: u32) i32 {
    if (refused(handle(h))) |rc| return rc;
    const out_slice: ?[]u8 = if (out) |o| o[0..out_cap] else null;
    var hit: read.Hit = .{};
    return lookup_status(handle(h), bytes(key, key_len), out_slice, &hit);
}

fn lookup_status(hd: *Handle, key: []const u8, out: ?[]u8, hit: *read.Hit) i32 {
    const r = read.lookup(hd, key, out, hit) catch |e| return switch (e) {
        error.TooLarge => neg(.too_large),
        error.Timeout => neg(.lock_timeout),
    };
    const len = r orelse return neg(.miss);
    return @intCast(len);
}

// ---------------------------------------------------------------- bound buffers
//
// The hot calls of lib/cache.ts pass lengths only: the key, value and meta
// buffers are bound to the handle once. That saves the runtimes converting
// three typed arrays per call (Deno's FFI pays for each). The caller keeps
// the buffers alive, and at a fixed address, for as long as it uses the
// handle; nothing here keeps a pointer past a call otherwise.

/// Binds key[0..key_cap), value[0..value_cap), meta[0..meta_len) (at
/// least meta_len_min) and the decode memo memo[0 .. memo_entries *
/// abi.memo_stride) to `h` (memo_entries a power of two, at most 2^24, or
/// 0 for none; see read.Hit.memo). 0, or -invalid_argument when a buffer
/// is missing or a size is out of range.
export fn shmc_bind(h: ?*anyopaque, key: ?[*]u8, key_cap: u32, value: ?[*]u8, value_cap: u32, meta: ?[*]u32, meta_len: u32, memo: ?[*]const u32, memo_entries: u32) i32 {
    const hd = handle(h);
    const k = key orelse return neg(.invalid_argument);
    const v = value orelse return neg(.invalid_argument);
    const m = meta orelse return neg(.invalid_argument);
    if (meta_len < meta_len_min) return neg(.invalid_argument);
    if (memo_entries != 0 and (memo == null or !std.math.isPowerOfTwo(memo_entries) or memo_entries > 1 << 24)) {
        return neg(.invalid_argument);
    }
    hd.io_key = k[0..key_cap];
    hd.io_value = v[0..value_cap];
    hd.io_meta = m[0..meta_len_min];
    hd.io_memo = if (memo_entries == 0) &.{} else memo.?[0 .. @as(usize, memo_entries) * abi.memo_stride];
    return 0;
}

/// shmc_get's report on a hit: [0] slot, [1] 1 when the memo matched (the
/// value was not copied), [2], [3] the write's stamp (low, high), [4], [5]
/// the slot's checksum (low, high), [6], [7] zero.
const meta_len_min = abi.meta_len;

/// The bound key's first key_len bytes; null when not bound or too long.
fn io_key(hd: *const Handle, key_len: u32) ?[]const u8 {
    if (hd.io_meta.len == 0 or key_len > hd.io_key.len) return null;
    return hd.io_key[0..key_len];
}

/// Looks the bound key up. want_value 1 copies the value into the bound
/// value buffer (a get), 0 does not (a has). On a hit fills meta (see
/// meta_len_min): the slot and the stamp and checksum that name the write
/// read (read.Hit), and whether the bound memo's entry for the slot names
/// that write, in which case the value was not copied. Returns the value's
/// length or -status.
export fn shmc_get(h: ?*anyopaque, key_len: u32, want_value: u32) i32 {
    const hd = handle(h);
    if (refused(hd)) |rc| return rc;
    const key = io_key(hd, key_len) orelse return neg(.invalid_argument);
    var hit: read.Hit = .{ .memo = if (want_value != 0) hd.io_memo else &.{} };
    const rc = lookup_status(hd, key, if (want_value != 0) hd.io_value else null, &hit);
    if (rc >= 0) {
        if (hit.memo_hit) counters.bump(hd.line, .memo_hits);
        hd.io_meta[0..meta_len_min].* = .{
            hit.index,            @intFromBool(hit.memo_hit),
            @truncate(hit.stamp), @truncate(hit.stamp >> 32),
            @truncate(hit.check), @truncate(hit.check >> 32),
            0,                    0,
        };
    }
    return rc;
}

/// shmc_insert with the bound key and value buffers.
export fn shmc_put(h: ?*anyopaque, key_len: u32, value_len: u32, ttl_ms: f64, mode: u32) i32 {
    const hd = handle(h);
    const key = io_key(hd, key_len) orelse return neg(.invalid_argument);
    if (value_len > hd.io_value.len) return neg(.invalid_argument);
    return shmc_insert(h, key.ptr, key_len, hd.io_value.ptr, value_len, ttl_ms, mode);
}

/// shmc_remove with the bound key buffer.
export fn shmc_del(h: ?*anyopaque, key_len: u32) i32 {
    const hd = handle(h);
    const key = io_key(hd, key_len) orelse return neg(.invalid_argument);
    return shmc_remove(h, key.ptr, key_len);
}

/// The first live entry in a slot from `from` on, reading at most
/// read.scan_chunk slots: copies its key into the bound key buffer and,
/// when want_value != 0, its value into the bound value buffer, read
/// together under the seqlock (read.scan). Found: meta[0] = its slot,
/// meta[1] = its key length, returns the value's length. Not found in the
/// chunk: meta[0] = where to go on, returns -miss with meta[1] = 1, or
/// meta[1] = 0 when no slot is left. Else -status.
export fn shmc_scan(h: ?*anyopaque, from: u32, want_value: u32) i32 {
    const hd = handle(h);
    if (refused(hd)) |rc| return rc;
    if (hd.io_meta.len == 0) return neg(.invalid_argument);
    var entry: read.Entry = .{};
    const value_out: ?[]u8 = if (want_value != 0) hd.io_value else null;
    const more = read.scan(hd, from, hd.io_key, value_out, &entry) catch |e| return switch (e) {
        error.Timeout => neg(.lock_timeout),
    };
    hd.io_meta[0] = entry.index;
    if (!entry.found) {
        hd.io_meta[1] = @intFromBool(more);
        return neg(.miss);
    }
    hd.io_meta[1] = entry.key_len;
    return @intCast(entry.value_len);
}

/// ttl_ms: negative = the cache's default, 0 = never expires. mode 0 =
/// set, 1 = add (only where no live entry is; -1 = miss when one is), 2 =
/// update (set, keeping the expiry of the entry found, even a passed one:
/// see write.Mode).
export fn shmc_insert(h: ?*anyopaque, key: ?[*]const u8, key_len: u32, value: ?[*]const u8, value_len: u32, ttl_ms: f64, mode: u32) i32 {
    if (refused(handle(h))) |rc| return rc;
    if (mode > 2) return neg(.invalid_argument);
    const m: write.Mode = @fromBackingInt(@intCast(mode));
    write.insert(handle(h), bytes(key, key_len), bytes(value, value_len), ttl_ms, m) catch |e| return switch (e) {
        error.Exists => neg(.miss),
        error.TooLarge => neg(.too_large),
        error.Timeout => dropped(handle(h), .lock_timeout),
        error.Corrupt => neg(.corrupt),
        error.Forked => neg(.forked),
        error.Full => dropped(handle(h), .full),
        error.Retired => neg(.retired),
    };
    return 0;
}

/// A write that did not happen and is not the caller's mistake: the lock
/// stayed held, or the key's run of the table had no room.
fn dropped(hd: *Handle, status: Status) i32 {
    counters.bump(hd.line, .dropped_writes);
    return neg(status);
}

/// 0 = removed, -1 = miss, other negative = status.
export fn shmc_remove(h: ?*anyopaque, key: ?[*]const u8, key_len: u32) i32 {
    if (refused(handle(h))) |rc| return rc;
    const removed = write.remove(handle(h), bytes(key, key_len)) catch |e| return switch (e) {
        error.TooLarge => neg(.too_large),
        error.Timeout => dropped(handle(h), .lock_timeout),
        error.Forked => neg(.forked),
        error.Retired => neg(.retired),
    };
    return if (removed) 0 else neg(.miss);
}

export fn shmc_clear(h: ?*anyopaque) i32 {
    if (refused(handle(h))) |rc| return rc;
    write.clear(handle(h)) catch |e| return switch (e) {
        error.Timeout => neg(.lock_timeout),
        error.Forked => neg(.forked),
        error.Retired => neg(.retired),
    };
    return 0;
}

export fn shmc_size(h: ?*anyopaque) i32 {
    const hd = handle(h);
    if (refused(hd)) |rc| return rc;
    // Monotonic: a momentary figure; clamp in case the file is corrupt.
    const count = @atomicLoad(u32, &hd.header().count, .monotonic);
    return @intCast(@min(count, hd.geo.capacity));
}

const stats_len = abi.stats_len;

/// Fills out[0..17] (as f64, exact below 2^53): hits, misses, memo hits,
/// read timeouts, lock timeouts, dropped writes, unstored results, sets,
/// deletes, evictions, expirations, recoveries, rebuilds, size, capacity,
/// lock owner pid, seq (lib/ffi/symbols.ts STATS names them in this order).
/// The first seven are this handle's (all = 0) or the sum over every handle
/// that ever had the cache open (all = 1; counters.zig); the others are the
/// cache's. Returns 0, or -status (forked, retired) with `out` untouched.
export fn shmc_stats(h: ?*anyopaque, all: u32, out: [*]f64) i32 {
    const hd = handle(h);
    if (refused(hd)) |rc| return rc;
    const header = hd.header();
    const own = if (all != 0) counters.sum(hd.memory, hd.geo) else counters.since(hd.line, hd.base);
    const shared = [6]u64{
        @atomicLoad(u64, &header.sets, .monotonic),
        @atomicLoad(u64, &header.deletes, .monotonic),
        @atomicLoad(u64, &header.evictions, .monotonic),
        @atomicLoad(u64, &header.expirations, .monotonic),
        @atomicLoad(u64, &header.recoveries, .monotonic),
        @atomicLoad(u64, &header.rebuilds, .monotonic),
    };
    // Monotonic loads: momentary figures; count clamped (untrusted file).
    const count = @min(@atomicLoad(u32, &header.count, .monotonic), hd.geo.capacity);
    stats_fill(out, own, shared, count, hd.geo.capacity, lock.owner_pid(hd), @atomicLoad(u64, &header.seq, .monotonic));
    return 0;
}

fn stats_fill(out: [*]f64, own: counters.Values, shared: [6]u64, count: u32, capacity: u32, owner_pid: u32, seq: u64) void {
    comptime std.debug.assert(counters.fields_len + 6 + 4 == stats_len);
    for (own, 0..) |v, i| out[i] = @floatFromInt(v);
    for (shared, counters.fields_len..) |v, i| out[i] = @floatFromInt(v);
    const rest = [4]u64{ count, capacity, owner_pid, seq };
    for (rest, counters.fields_len + 6..) |v, i| out[i] = @floatFromInt(v);
}

/// Adds n getOrSet results that were returned without being stored to this
/// handle's counter line (the TypeScript side decides what is unstored).
export fn shmc_add_unstored(h: ?*anyopaque, n: u32) void {
    const hd = handle(h);
    if (forked(hd)) return;
    counters.add(hd.line, .unstored_results, n);
}

/// Takes the writer lock for this handle (bounded by its timeout).
export fn shmc_lock(h: ?*anyopaque) i32 {
    const hd = handle(h);
    if (refused(hd)) |rc| return rc;
    if (hd.lock_held) return neg(.lock_held);
    write.acquire(hd, sys.now_ns() +| hd.lock_timeout_ns) catch |e| {
        return switch (e) {
            error.Timeout => blk: {
                counters.bump(hd.line, .lock_timeouts);
                break :blk neg(.lock_timeout);
            },
            error.Held => neg(.lock_held),
            error.Forked => neg(.forked),
            error.Retired => neg(.retired),
        };
    };
    return 0;
}

export fn shmc_unlock(h: ?*anyopaque) i32 {
    if (forked(handle(h))) return neg(.forked);
    const hd = handle(h);
    if (!hd.lock_held) return neg(.not_locked);
    lock.release(hd);
    return 0;
}

/// Recovers the lock if its owner is dead (repairing the structure), and
/// returns 1 if it did, 0 if there was nothing to recover (free or a live
/// owner), or -status.
export fn shmc_recover(h: ?*anyopaque) i32 {
    const hd = handle(h);
    if (refused(hd)) |rc| return rc;
    if (hd.lock_held) return neg(.lock_held);
    const word = @atomicLoad(u64, &hd.header().lock_word, .monotonic);
    const owner = lock.word_slot(word);
    const odd = seqlock.is_odd(hd.header());
    if (owner == 0 and !odd) return 0;
    if (owner != 0 and owner != hd.live_slot and liveness.is_alive(hd.fd, owner)) return 0;
    const before = hd.recoveries;
    write.acquire(hd, sys.now_ns() +| hd.lock_timeout_ns) catch |e| return switch (e) {
        error.Forked => neg(.forked),
        error.Retired => neg(.retired),
        error.Timeout, error.Held => neg(.lock_timeout),
    };
    lock.release(hd);
    return if (hd.recoveries != before or odd) 1 else 0;
}

/// Seqlock primitives for callers composing their own reads: returns the
/// even sequence to validate against, -1 while a writer is active, or -2
/// for a handle inherited across fork() (never usable: reopen).
export fn shmc_read_begin(h: ?*anyopaque) f64 {
    if (forked(handle(h))) return -2;
    const s = seqlock.load_acquire(handle(h).header());
    if (s & 1 == 1) return -1;
    return @floatFromInt(s);
}

export fn shmc_read_validate(h: ?*anyopaque, s: f64) i32 {
    if (forked(handle(h))) return 0;
    // Only exact integers below 2^53 come from shmc_read_begin.
    if (!(s >= 0 and s <= 9007199254740992.0) or @floor(s) != s) return 0;
    return @intFromBool(seqlock.validate(handle(h).header(), @intFromFloat(s)));
}

/// Checks every invariant; with repair != 0 and problems found, rebuilds
/// the structure. Writes one problem per line into out and returns the
/// number of problems found (before any repair), or -status.
export fn shmc_verify(h: ?*anyopaque, repair: u32, out: [*]u8, out_cap: u32, out_len: [*]u32) i32 {
    const hd = handle(h);
    if (refused(hd)) |rc| return rc;
    const auto = !hd.lock_held;
    if (auto) {
        write.acquire(hd, sys.now_ns() +| hd.lock_timeout_ns) catch |e| return switch (e) {
            error.Forked => neg(.forked),
            error.Retired => neg(.retired),
            error.Timeout, error.Held => neg(.lock_timeout),
        };
    }
    defer if (auto) lock.release(hd);
    var report: verify.Report = .{ .buf = out[0..out_cap] };
    verify.verify(hd, &report);
    if (repair != 0 and report.problems > 0) {
        seqlock.write_begin(hd.header());
        rebuild(hd);
        seqlock.write_end(hd.header());
    }
    out_len[0] = @intCast(report.len);
    return @intCast(report.problems);
}

/// The region file's device and inode (identity of the cache in-process).
export fn shmc_file_id(h: ?*anyopaque, out: [*]f64) i32 {
    const st = sys.fstat(handle(h).fd) catch return neg(.io);
    out[0] = @floatFromInt(st.dev);
    out[1] = @floatFromInt(st.ino);
    return 0;
}

/// The liveness slot of this handle (a token other processes can probe).
export fn shmc_handle_slot(h: ?*anyopaque) i32 {
    return @intCast(handle(h).live_slot);
}

/// 1 while the handle holding `slot` is open, else 0.
export fn shmc_slot_alive(h: ?*anyopaque, slot: u32) i32 {
    const hd = handle(h);
    if (slot == hd.live_slot) return 1;
    return @intFromBool(liveness.is_alive(hd.fd, slot));
}

test {
    _ = region;
    _ = read;
    _ = write;
    _ = verify;
    _ = @import("entry.zig");
    _ = @import("rebuild.zig");
    _ = @import("store_test.zig");
    _ = lock;
    _ = @import("seqlock.zig");
    _ = @import("liveness.zig");
    _ = @import("table.zig");
    _ = @import("sieve.zig");
    _ = @import("threads.zig");
    _ = counters;
    _ = @import("liveness.zig");
    _ = @import("faults.zig");
    _ = watch;
    _ = files;
    // Issue 10 part B, not used by the store yet: the next step wires them in.
    _ = @import("arena.zig");
    _ = @import("alloc.zig");
    _ = @import("hash.zig");
    _ = @import("budget.zig");
}
