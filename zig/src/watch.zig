//! Noticing that a handle's region is no longer the cache's, so that no
//! process keeps reading and writing a region nobody else will see (a
//! split cache). Two signals, both checked at the top of every operation
//! that touches the region (exports.zig, and writers again under the lock,
//! write.zig `acquire`), neither with a system call:
//!
//! - `Header.retired`, set by `destroy` and by an open with onMismatch
//!   "replace" before they unlink or rename over the file. It sits on the
//!   seq line, which every reader loads anyway. Seen at the next operation.
//! - The file's name: an operator's `rm`, a tmp cleaner, or `mv` of another
//!   file over it change no byte of the region. One thread per process (the
//!   first open starts it; it sleeps while no cache is open) stats the path
//!   of every open cache file every `interval_ns` and sets the file's
//!   `gone` flag when the name is missing or leads to another file. An
//!   operation loads that flag from process memory. Seen within
//!   `interval_ns` plus one stat, whatever the rate of operations (a
//!   budget of operations between checks could not bound the time for a
//!   handle that turns idle; a clock read on every operation costs 30-45 ns
//!   here, more than the hit itself).
//!
//! Both are sticky: a handle that saw either keeps answering `Retired`
//! (Handle.gone), so a flapping name or a corrupted `retired` word cannot
//! make it oscillate between two regions. What a stale answer costs: an
//! operation that passed the check just before the retirement reads or
//! writes the old region; such a write is lost (never visible in the new
//! region, never torn), as if it had happened just before.
//!
//! Paths are absolute (a relative directory is resolved against the
//! working directory at open), so a later chdir does not make a cache look
//! gone. Records are shared by the handles of one file in this process and
//! freed with the last one; the thread touches them only under `mutex`.

const std = @import("std");
const c = std.c;
const assert = std.debug.assert;
const sys = @import("sys.zig");
const region = @import("region.zig");
const Handle = @import("handle.zig").Handle;

/// How often the thread stats the open caches' paths.
pub const interval_ns: u64 = 250 * std.time.ns_per_ms;

/// One open cache file of this process.
pub const Record = struct {
    /// The file this process mapped (from fstat of its descriptor).
    dev: u64,
    ino: u64,
    /// `<absolute dir>/<name>.shmc`, owned (c_allocator).
    path: [:0]u8,
    /// Open handles on this record.
    refs: u32,
    /// Set once (by the thread, under `mutex`), read by every operation.
    gone: bool = false,
    next: ?*Record = null,
};

var mutex: c.pthread_mutex_t = .{};
var cond: c.pthread_cond_t = .{};
var head: ?*Record = null;
var running: bool = false;

pub const AttachError = error{ OutOfMemory, Thread };

/// The record of the file (dev, ino) at `path`, shared with this process's
/// other handles of that file; starts the thread on first use.
pub fn attach(path: []const u8, dev: u64, ino: u64) AttachError!*Record {
    _ = c.pthread_mutex_lock(&mutex);
    defer _ = c.pthread_mutex_unlock(&mutex);
    var node = head;
    // Bound: one step per open cache file of this process.
    while (node) |r| : (node = r.next) {
        if (r.dev == dev and r.ino == ino and !r.gone and std.mem.eql(u8, r.path, path)) {
            r.refs += 1;
            return r;
        }
    }
    const allocator = std.heap.c_allocator;
    const r = try allocator.create(Record);
    errdefer allocator.destroy(r);
    const owned = try allocator.dupeSentinel(u8, path, 0);
    errdefer allocator.free(owned);
    if (!running) {
        var thread: c.pthread_t = undefined;
        if (c.pthread_create(&thread, null, run, null) != .SUCCESS) return error.Thread;
        _ = c.pthread_detach(thread);
        running = true;
    }
    r.* = .{ .dev = dev, .ino = ino, .path = owned, .refs = 1, .next = head };
    head = r;
    _ = c.pthread_cond_signal(&cond);
    return r;
}

/// Drops a handle's reference; the last one frees the record.
pub fn detach(r: *Record) void {
    _ = c.pthread_mutex_lock(&mutex);
    defer _ = c.pthread_mutex_unlock(&mutex);
    assert(r.refs > 0);
    r.refs -= 1;
    if (r.refs > 0) return;
    var link: *?*Record = &head;
    // Bound: one step per open cache file of this process.
    while (link.*) |node| : (link = &node.next) {
        if (node == r) {
            link.* = r.next;
            break;
        }
    } else unreachable; // an attached record is on the list
    std.heap.c_allocator.free(r.path);
    std.heap.c_allocator.destroy(r);
}

/// Whether `h`'s region is no longer the cache's. Sticky (see the top).
pub fn retired(h: *Handle) bool {
    if (h.gone) return true;
    // Monotonic: a flag; nothing else is published with it. A load that
    // misses a just-made store is the stale answer the top describes.
    const replaced = @atomicLoad(u32, &h.header().retired, .monotonic) != region.retired_live;
    const gone = if (h.watch) |w| @atomicLoad(bool, &w.gone, .monotonic) else false;
    if (!replaced and !gone) return false;
    h.gone = true;
    return true;
}

/// Whether the name still leads to the file: false when it is missing or
/// another file. A failure that says nothing about the name (out of
/// memory, interrupted) keeps the record as it is.
fn still_there(r: *const Record) bool {
    const st = sys.stat_path(r.path.ptr) catch {
        return switch (sys.last()) {
            .NOMEM, .INTR, .AGAIN => true,
            else => false, // NOENT, NOTDIR, ACCES, LOOP...: not this file
        };
    };
    return st.dev == r.dev and st.ino == r.ino;
}

/// One check of every open cache file. Caller holds `mutex`.
fn sweep() void {
    var node = head;
    // Bound: one stat per open cache file of this process.
    while (node) |r| : (node = r.next) {
        if (r.gone) continue;
        // Monotonic: see `retired`.
        if (!still_there(r)) @atomicStore(bool, &r.gone, true, .monotonic);
    }
}

fn run(_: ?*anyopaque) callconv(.c) ?*anyopaque {
    _ = c.pthread_mutex_lock(&mutex);
    // Bound: none; the thread lives as long as the process, sleeping on
    // the condition while no cache is open, else once per interval.
    while (true) {
        while (head == null) _ = c.pthread_cond_wait(&cond, &mutex);
        _ = c.pthread_mutex_unlock(&mutex);
        sys.sleep_ns(interval_ns);
        _ = c.pthread_mutex_lock(&mutex);
        sweep();
    }
}

/// In a fork() child: the thread does not exist there, and the parent's
/// records belong to handles the child may not use (exports.zig refuses
/// them; closing them skips `detach`). Start afresh.
pub fn forget_after_fork() void {
    mutex = .{};
    cond = .{};
    head = null;
    running = false;
}

/// `<dir>/<name>.shmc` with `dir` made absolute, into `buf`.
pub fn file_path(buf: []u8, dir: []const u8, file: []const u8) ?[]const u8 {
    var cwd_buf: [4096]u8 = undefined;
    const cwd: []const u8 = if (dir.len > 0 and dir[0] == '/') "" else sys.getcwd(&cwd_buf) catch return null;
    const sep: []const u8 = if (cwd.len > 0) "/" else "";
    return std.fmt.bufPrint(buf, "{s}{s}{s}/{s}", .{ cwd, sep, dir, file }) catch null;
}

test "a record notices its path removed or replaced, and is shared by one file's handles" {
    const testing = std.testing;
    var dir_buf: [64]u8 = undefined;
    const dir = try std.fmt.bufPrintSentinel(&dir_buf, "/tmp/shmc-watch-{d}", .{sys.getpid()}, 0);
    sys.mkdir(dir.ptr) catch return error.SkipZigTest;
    defer _ = c.rmdir(dir.ptr);
    var path_buf: [128]u8 = undefined;
    const path = (file_path(&path_buf, dir, "a.shmc") orelse unreachable);
    var z: [128]u8 = undefined;
    const pz = try std.fmt.bufPrintSentinel(&z, "{s}", .{path}, 0);
    const fd = c.open(pz.ptr, .{ .ACCMODE = .RDWR, .CREAT = true }, @as(c.mode_t, 0o600));
    try testing.expect(fd >= 0);
    defer sys.close(fd);
    defer _ = c.unlink(pz.ptr);
    const st = try sys.fstat(fd);
    const r = try attach(path, st.dev, st.ino);
    const again = try attach(path, st.dev, st.ino);
    try testing.expectEqual(r, again);
    try testing.expectEqual(@as(u32, 2), r.refs);
    detach(again);
    // Present: a sweep keeps it.
    _ = c.pthread_mutex_lock(&mutex);
    sweep();
    _ = c.pthread_mutex_unlock(&mutex);
    try testing.expect(!@atomicLoad(bool, &r.gone, .monotonic));
    // Another file renamed over the name: gone.
    var other_z: [128]u8 = undefined;
    const other = try std.fmt.bufPrintSentinel(&other_z, "{s}/b.shmc", .{dir}, 0);
    const fd2 = c.open(other.ptr, .{ .ACCMODE = .RDWR, .CREAT = true }, @as(c.mode_t, 0o600));
    try testing.expect(fd2 >= 0);
    sys.close(fd2);
    try testing.expectEqual(@as(c_int, 0), c.rename(other.ptr, pz.ptr));
    // The thread runs too; wait for it (bounded), which also proves it
    // sweeps by itself.
    const deadline = sys.now_ns() + 20 * interval_ns;
    while (!@atomicLoad(bool, &r.gone, .monotonic) and sys.now_ns() < deadline) sys.sleep_ns(std.time.ns_per_ms);
    try testing.expect(@atomicLoad(bool, &r.gone, .monotonic));
    // A new handle of whatever is at the path gets a fresh record.
    const st2 = try sys.stat_path(pz.ptr);
    const fresh = try attach(path, st2.dev, st2.ino);
    try testing.expect(fresh != r);
    detach(fresh);
    detach(r);
}

test "removing the file is noticed by a sweep" {
    const testing = std.testing;
    var z: [128]u8 = undefined;
    const pz = try std.fmt.bufPrintSentinel(&z, "/tmp/shmc-watch-rm-{d}.shmc", .{sys.getpid()}, 0);
    const fd = c.open(pz.ptr, .{ .ACCMODE = .RDWR, .CREAT = true }, @as(c.mode_t, 0o600));
    try testing.expect(fd >= 0);
    defer sys.close(fd);
    const st = try sys.fstat(fd);
    const r = try attach(pz, st.dev, st.ino);
    defer detach(r);
    _ = c.unlink(pz.ptr);
    _ = c.pthread_mutex_lock(&mutex);
    sweep();
    _ = c.pthread_mutex_unlock(&mutex);
    try testing.expect(@atomicLoad(bool, &r.gone, .monotonic));
}
