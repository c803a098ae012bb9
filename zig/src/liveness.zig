//! Liveness slots: how one process tells whether another handle is alive.
//!
//! Every open handle holds an exclusive byte-range lock on one byte of the
//! cache's region file for as long as it is open; that byte's offset is the
//! handle's *slot* (1..slots_max), and the writer-lock word records the slot
//! of its owner. The kernel drops the byte lock when the last descriptor of
//! its open file description closes, which happens at process death before
//! the process can become a zombie. So "the slot's byte is unlocked" proves
//! the handle that held it is gone, whatever its PID namespace, whether its
//! PID was reused and whether its parent reaped it. A stopped process
//! (SIGSTOP, a debugger, a frozen cgroup) keeps its descriptors and is
//! correctly reported alive.
//!
//! Linux uses open-file-description (OFD) locks: they belong to the open file
//! description, not the process, so two handles of one process (or two
//! threads' handles) hold distinct slots and see each other as alive.
//! macOS has no OFD locks; there the classic POSIX record lock is per
//! process, so all handles of one process on one file share a slot
//! (reference counted), a probe of one's own slot answers "alive", and
//! descriptors of a file still in use are parked instead of closed (closing
//! any descriptor drops the process's record locks on the file). Threads of
//! one process are then not told apart by the lock (README: one handle per
//! cache per process there). That path is compiled, not tested, here.
//!
//! Caveat: a child forked without exec inherits the descriptor, and with it
//! the OFD lock; the slot then stays "alive" while that child lives. The
//! descriptor is close-on-exec, so spawned programs do not inherit it.

const std = @import("std");
const c = std.c;
const sys = @import("sys.zig");
const assert = std.debug.assert;

/// Slots are numbered 1..slots_max; 0 means "no owner" in the lock word,
/// which gives slots 12 bits.
pub const slots_max: u32 = 4095;

const cmd_setlk: c_int = if (sys.is_linux) 37 else c.F.SETLK; // F_OFD_SETLK on Linux
const cmd_getlk: c_int = if (sys.is_linux) 36 else c.F.GETLK; // F_OFD_GETLK on Linux

/// Byte 0 is the creation lock (files.zig): open-or-create and destroy run
/// under it. A byte-range lock rather than flock: on BSD kernels flock and
/// record locks share one lock list, and a whole-file flock would conflict
/// with the liveness bytes. Slots use bytes 1..slots_max.
const creation_byte: u32 = 0;

fn lock_request(kind: c_int, start: u32) c.Flock {
    var fl = std.mem.zeroes(c.Flock);
    fl.type = @intCast(kind);
    fl.whence = 0; // SEEK_SET
    fl.start = @intCast(start);
    fl.len = 1;
    // OFD locks require l_pid == 0 (zeroes above).
    return fl;
}

/// Tries the creation lock without waiting; the caller backs off. Shared
/// (a read lock) is for inspectors: it excludes openers and destroy, which
/// take it exclusive, but not other inspectors.
pub fn creation_try(fd: c.fd_t, shared: bool) error{Io}!bool {
    var fl = lock_request(if (shared) c.F.RDLCK else c.F.WRLCK, creation_byte);
    if (c.fcntl(fd, cmd_setlk, &fl) == 0) return true;
    const e = sys.errno_now();
    if (e == .AGAIN or e == .ACCES) return false;
    return error.Io;
}

pub fn creation_release(fd: c.fd_t) void {
    var fl = lock_request(c.F.UNLCK, creation_byte);
    _ = c.fcntl(fd, cmd_setlk, &fl);
}

/// Takes a free slot for a new handle. Scans from a PID-derived start so
/// concurrent openers rarely contend on the same byte; the scan is bounded
/// by slots_max attempts.
pub const Claimed = struct {
    slot: u32,
    /// False when the slot was already this process's (macOS sharing): its
    /// byte proves nothing about the lock word's owner then.
    fresh: bool,
};

/// `avoid` (the lock owner's slot, or 0) is taken only when no other is free.
pub fn claim(fd: c.fd_t, avoid: u32) error{ TooMany, Io }!Claimed {
    if (!sys.is_linux) return darwin_claim(fd, avoid);
    return .{ .slot = try scan(fd, avoid), .fresh = true };
}

fn scan(fd: c.fd_t, avoid: u32) error{ TooMany, Io }!u32 {
    const start = sys.getpid() % slots_max;
    var attempt: u32 = 0;
    // Bound: slots_max + 1 attempts, the last one on `avoid` itself.
    while (attempt <= slots_max) : (attempt += 1) {
        const slot = if (attempt == slots_max) avoid else 1 + (start + attempt) % slots_max;
        if (slot == 0) break;
        if (slot == avoid and attempt < slots_max) continue;
        assert(slot >= 1 and slot <= slots_max);
        var fl = lock_request(c.F.WRLCK, slot);
        if (c.fcntl(fd, cmd_setlk, &fl) == 0) return slot;
        const e = sys.errno_now();
        if (e != .AGAIN and e != .ACCES) return error.Io;
    }
    return error.TooMany;
}

/// True if any handle holds any slot: someone maps the region.
pub fn any_held(fd: c.fd_t) bool {
    if (!sys.is_linux and darwin_find(fd) != null) return true;
    var fl = lock_request(c.F.WRLCK, 1);
    fl.len = slots_max;
    if (c.fcntl(fd, cmd_getlk, &fl) != 0) return true;
    return fl.type != c.F.UNLCK;
}

/// The slots held by open handles: their number, and the first `out.len`
/// of them in `out`. Each probe (F_OFD_GETLK over a range) answers for a
/// whole range, so a bisection costs O(held × log slots_max) probes instead
/// of one per slot. The answer is a moment's: handles may come and go.
pub fn held_slots(fd: c.fd_t, out: []u32) error{Io}!u32 {
    var n: u32 = 0;
    try held_in(fd, 1, slots_max, out, &n, 0);
    if (!sys.is_linux) {
        // Record locks never conflict with their own process: this
        // process's slot is not seen by the probes above.
        if (darwin_find(fd)) |entry| {
            if (n < out.len) out[n] = entry.slot;
            n += 1;
        }
    }
    assert(n <= slots_max);
    return n;
}

/// Bound: each call halves [lo, hi], so the recursion is at most
/// log2(slots_max) + 1 = 13 deep (asserted).
fn held_in(fd: c.fd_t, lo: u32, hi: u32, out: []u32, n: *u32, depth: u32) error{Io}!void {
    assert(lo >= 1 and lo <= hi and hi <= slots_max);
    assert(depth <= 13);
    var fl = lock_request(c.F.WRLCK, lo);
    fl.len = @intCast(hi - lo + 1);
    if (c.fcntl(fd, cmd_getlk, &fl) != 0) return error.Io;
    if (fl.type == c.F.UNLCK) return;
    if (lo == hi) {
        if (n.* < out.len) out[n.*] = lo;
        n.* += 1;
        return;
    }
    const mid = lo + (hi - lo) / 2;
    try held_in(fd, lo, mid, out, n, depth + 1);
    try held_in(fd, mid + 1, hi, out, n, depth + 1);
}

/// Gives the slot back.
pub fn release(fd: c.fd_t, slot: u32) void {
    assert(slot >= 1 and slot <= slots_max);
    if (!sys.is_linux) return darwin_release(fd);
    var fl = lock_request(c.F.UNLCK, slot);
    _ = c.fcntl(fd, cmd_setlk, &fl);
}

/// Closes a descriptor of a region file. On Linux simply closes it. With
/// per-process record locks (macOS), closing any descriptor of a file drops
/// all of the process's locks on it, so while a handle of this process still
/// uses the file the descriptor is parked and closed with the last handle.
pub fn close_fd(fd: c.fd_t) void {
    if (sys.is_linux) return sys.close(fd);
    darwin_park_or_close(fd);
}

/// True while some open handle holds `slot`. Errors answer "alive": the
/// caller then waits out its bound instead of stealing on doubt.
pub fn is_alive(fd: c.fd_t, slot: u32) bool {
    if (slot == 0 or slot > slots_max) return true;
    if (!sys.is_linux) {
        // Record locks never conflict with their own process: our slot is
        // alive by definition (it is this process).
        if (darwin_find(fd)) |entry| if (entry.slot == slot) return true;
    }
    var fl = lock_request(c.F.WRLCK, slot);
    if (c.fcntl(fd, cmd_getlk, &fl) != 0) return true;
    // F_UNLCK means our write lock could be placed: nobody holds the byte.
    // Our own OFD never conflicts with itself, so a caller must not probe
    // its own slot (lock.zig checks that first).
    return fl.type != c.F.UNLCK;
}

// macOS: one slot per (process, file), reference counted across handles.
const DarwinFile = struct {
    dev: u64,
    ino: u64,
    slot: u32,
    refs: u32,
    parked: [parked_max]c.fd_t = undefined,
    parked_len: u32 = 0,
};
const files_max = 64;
const parked_max = 32;
var darwin_mutex: c.pthread_mutex_t = .{};
var darwin_files: [files_max]?DarwinFile = @splat(null);

/// In a fork() child: record locks are not inherited, and the mutex may
/// have been held by another thread at the fork.
pub fn forget_after_fork() void {
    darwin_mutex = .{};
    darwin_files = @splat(null);
}

fn darwin_lookup(fd: c.fd_t) ?*DarwinFile {
    const st = sys.fstat(fd) catch return null;
    for (&darwin_files) |*e| {
        if (e.*) |*file| if (file.dev == st.dev and file.ino == st.ino) return file;
    }
    return null;
}

fn darwin_find(fd: c.fd_t) ?DarwinFile {
    _ = c.pthread_mutex_lock(&darwin_mutex);
    defer _ = c.pthread_mutex_unlock(&darwin_mutex);
    const file = darwin_lookup(fd) orelse return null;
    return file.*;
}

fn darwin_claim(fd: c.fd_t, avoid: u32) error{ TooMany, Io }!Claimed {
    _ = c.pthread_mutex_lock(&darwin_mutex);
    defer _ = c.pthread_mutex_unlock(&darwin_mutex);
    if (darwin_lookup(fd)) |file| {
        file.refs += 1;
        return .{ .slot = file.slot, .fresh = false };
    }
    const st = sys.fstat(fd) catch return error.Io;
    for (&darwin_files) |*e| {
        if (e.* == null) {
            const slot = try scan(fd, avoid);
            e.* = .{ .dev = st.dev, .ino = st.ino, .slot = slot, .refs = 1 };
            return .{ .slot = slot, .fresh = true };
        }
    }
    return error.TooMany;
}

fn darwin_release(fd: c.fd_t) void {
    _ = c.pthread_mutex_lock(&darwin_mutex);
    defer _ = c.pthread_mutex_unlock(&darwin_mutex);
    const file = darwin_lookup(fd) orelse return;
    assert(file.refs > 0);
    file.refs -= 1;
    if (file.refs > 0) return;
    var fl = lock_request(c.F.UNLCK, file.slot);
    _ = c.fcntl(fd, c.F.SETLK, &fl);
    for (file.parked[0..file.parked_len]) |parked| sys.close(parked);
    for (&darwin_files) |*e| {
        if (e.*) |*f| if (f == file) {
            e.* = null;
            break;
        };
    }
}

/// Keeps `fd` open while handles of its file remain, else closes it; one
/// step under the mutex, so no claim of the same file slips in between the
/// decision and the close (which would drop that claim's record lock).
fn darwin_park_or_close(fd: c.fd_t) void {
    _ = c.pthread_mutex_lock(&darwin_mutex);
    defer _ = c.pthread_mutex_unlock(&darwin_mutex);
    const file = darwin_lookup(fd) orelse return sys.close(fd);
    // Beyond the bound the descriptor is leaked rather than closed: a leak
    // costs a descriptor, a close would drop the process's slot.
    if (file.parked_len < parked_max) {
        file.parked[file.parked_len] = fd;
        file.parked_len += 1;
    }
}

const testing = std.testing;
const scratch_fds = @import("test_region.zig").scratch_fds;

test "a claimed slot is alive to another open file description until released or closed" {
    if (!sys.is_linux) return error.SkipZigTest; // OFD locks; macOS shares a slot per process
    const fds = try scratch_fds(3);
    defer for (fds[1..]) |fd| sys.close(fd);
    const probe = fds[2];
    const a = try claim(fds[0], 0);
    const b = try claim(fds[1], a.slot);
    try testing.expect(a.fresh and b.fresh);
    try testing.expect(a.slot != b.slot);
    try testing.expect(a.slot >= 1 and a.slot <= slots_max);
    try testing.expect(is_alive(probe, a.slot));
    try testing.expect(is_alive(probe, b.slot));
    try testing.expect(any_held(probe));
    // A slot nobody holds, and the out-of-range answers ("alive": wait).
    const unused = if (a.slot % slots_max + 1 == b.slot) b.slot % slots_max + 1 else a.slot % slots_max + 1;
    try testing.expect(!is_alive(probe, unused));
    try testing.expect(is_alive(probe, 0));
    try testing.expect(is_alive(probe, slots_max + 1));

    release(fds[1], b.slot);
    try testing.expect(!is_alive(probe, b.slot));
    // Death: the kernel drops the byte lock when the descriptor closes.
    sys.close(fds[0]);
    try testing.expect(!is_alive(probe, a.slot));
    try testing.expect(!any_held(probe));
    // A released slot can be claimed again.
    const again = try claim(fds[1], 0);
    try testing.expect(is_alive(probe, again.slot));
    release(fds[1], again.slot);
}

test "the creation lock excludes other open file descriptions" {
    if (!sys.is_linux) return error.SkipZigTest;
    const fds = try scratch_fds(2);
    defer for (fds) |fd| sys.close(fd);
    try testing.expect(try creation_try(fds[0], false));
    try testing.expect(!try creation_try(fds[1], false));
    try testing.expect(!try creation_try(fds[1], true));
    // The creation byte is not a liveness slot.
    try testing.expect(!any_held(fds[1]));
    creation_release(fds[0]);
    try testing.expect(try creation_try(fds[1], false));
    creation_release(fds[1]);
}

test "inspectors share the creation lock, and it keeps openers out" {
    if (!sys.is_linux) return error.SkipZigTest;
    const fds = try scratch_fds(3);
    defer for (fds) |fd| sys.close(fd);
    try testing.expect(try creation_try(fds[0], true));
    try testing.expect(try creation_try(fds[1], true));
    try testing.expect(!try creation_try(fds[2], false));
    creation_release(fds[0]);
    try testing.expect(!try creation_try(fds[2], false));
    creation_release(fds[1]);
    try testing.expect(try creation_try(fds[2], false));
    creation_release(fds[2]);
}

test "held_slots finds every held slot by bisection, and counts past its buffer" {
    if (!sys.is_linux) return error.SkipZigTest;
    const n = 6;
    const fds = try scratch_fds(n + 1);
    defer for (fds) |fd| sys.close(fd);
    const probe = fds[n];
    var out: [slots_max]u32 = undefined;
    try testing.expectEqual(@as(u32, 0), try held_slots(probe, &out));
    // The ends of the range, neighbours, and one in the middle.
    const wanted = [n]u32{ 1, 2, 1000, 2048, 4094, slots_max };
    for (wanted, fds[0..n]) |slot, fd| {
        var fl = lock_request(c.F.WRLCK, slot);
        try testing.expectEqual(@as(c_int, 0), c.fcntl(fd, cmd_setlk, &fl));
    }
    try testing.expectEqual(@as(u32, n), try held_slots(probe, &out));
    try testing.expectEqualSlices(u32, &wanted, out[0..n]);
    var short: [2]u32 = undefined;
    try testing.expectEqual(@as(u32, n), try held_slots(probe, &short));
    try testing.expectEqualSlices(u32, wanted[0..2], &short);
    // The creation byte and our own locks are not counted.
    try testing.expect(try creation_try(probe, false));
    try testing.expectEqual(@as(u32, n), try held_slots(probe, &out));
    creation_release(probe);
    release(fds[2], 1000);
    try testing.expectEqual(@as(u32, n - 1), try held_slots(probe, &out));
}
