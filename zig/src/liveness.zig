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

/// The most handles one process may hold on one cache file. A process that
/// opens a cache in a loop without closing it (no finalizer gets to run in
/// a synchronous loop) is stopped here, at its own cost, instead of taking
/// all slots_max slots and locking every other process out of the cache.
pub const handles_per_process_max: u32 = 256;

/// What this process knows about one cache file it holds handles of:
/// how many, and where its next claim starts scanning (the slot after its
/// last claim, so a process opening its 1,000th handle needs one lock
/// attempt, not 1,000: each attempt walks the inode's lock list in the
/// kernel, which made an open near 4,000 handles cost about 130 ms). On
/// macOS also the one slot all of the process's handles share (per-process
/// record locks) and the descriptors parked until the last handle closes.
const ProcFile = struct {
    handles: u32,
    /// The first slot the next claim tries, 1..slots_max.
    hint: u32,
    /// macOS: the shared slot while handles > 0.
    slot: u32 = 0,
    parked: [parked_max]c.fd_t = undefined,
    parked_len: u32 = 0,
};
const parked_max = 32;

const FileKey = struct { dev: u64, ino: u64 };

/// The process table, keyed by the file's (device, inode): an entry exists
/// while this process holds handles of the file (the inode cannot be reused
/// meanwhile: our descriptors keep it). Guarded by `files_mutex`; pointers
/// into it are used only under the mutex, with no insert in between.
var files_mutex: c.pthread_mutex_t = .{};
var files: std.AutoHashMapUnmanaged(FileKey, ProcFile) = .empty;

/// In a fork() child: the parent's handles are not the child's (they are
/// refused, sys.fork_epoch), record locks are not inherited on macOS, and
/// the mutex may have been held by another thread at the fork. The old
/// table's memory is abandoned, not freed: another thread may have held
/// the allocator's lock at the fork.
pub fn forget_after_fork() void {
    files_mutex = .{};
    files = .empty;
}

fn key_of(st: sys.Stat) FileKey {
    return .{ .dev = st.dev, .ino = st.ino };
}

fn files_lookup(st: sys.Stat) ?*ProcFile {
    return files.getPtr(key_of(st));
}

fn files_add(st: sys.Stat) error{OutOfMemory}!*ProcFile {
    const got = try files.getOrPut(std.heap.c_allocator, key_of(st));
    // A PID-derived first slot, so that concurrent openers in different
    // processes rarely contend on the same byte.
    if (!got.found_existing) got.value_ptr.* = .{ .handles = 0, .hint = 1 + sys.getpid() % slots_max };
    return got.value_ptr;
}

fn files_remove(st: sys.Stat) void {
    const removed = files.remove(key_of(st));
    assert(removed);
}

/// Takes a free slot for a new handle, scanning from this process's hint
/// for the file; the scan is bounded by slots_max attempts.
pub const Claimed = struct {
    slot: u32,
    /// False when the slot was already this process's (macOS sharing): its
    /// byte proves nothing about the lock word's owner then.
    fresh: bool,
};

pub const ClaimError = error{
    /// Every slot of the file is held.
    TooMany,
    /// This process already holds handles_per_process_max handles of it.
    TooManyInProcess,
    OutOfMemory,
    Io,
};

/// `avoid` (the lock owner's slot, or 0) is taken only when no other is free.
pub fn claim(fd: c.fd_t, avoid: u32) ClaimError!Claimed {
    const st = sys.fstat(fd) catch return error.Io;
    _ = c.pthread_mutex_lock(&files_mutex);
    defer _ = c.pthread_mutex_unlock(&files_mutex);
    const file = files_lookup(st) orelse try files_add(st);
    errdefer if (file.handles == 0) files_remove(st);
    if (file.handles >= handles_per_process_max) return error.TooManyInProcess;
    if (!sys.is_linux and file.handles > 0) {
        // macOS: the process's record lock is one for all its handles.
        file.handles += 1;
        return .{ .slot = file.slot, .fresh = false };
    }
    const slot = try scan(fd, avoid, file.hint);
    assert(slot >= 1 and slot <= slots_max);
    file.hint = slot % slots_max + 1;
    file.slot = slot;
    file.handles += 1;
    return .{ .slot = slot, .fresh = true };
}

/// The first free slot from `first` on (cyclically), `avoid` last. The
/// number of lock attempts it made is in `scan_attempts` (unit tests).
fn scan(fd: c.fd_t, avoid: u32, first: u32) error{ TooMany, Io }!u32 {
    assert(first >= 1 and first <= slots_max);
    const start = first - 1;
    var attempt: u32 = 0;
    defer scan_attempts = attempt + 1;
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

/// Lock attempts of the last scan (threads may race on it; tests only).
var scan_attempts: u32 = 0;

/// Gives the slot back and counts the handle out of the process table.
pub fn release(fd: c.fd_t, slot: u32) void {
    assert(slot >= 1 and slot <= slots_max);
    _ = c.pthread_mutex_lock(&files_mutex);
    defer _ = c.pthread_mutex_unlock(&files_mutex);
    // Not found: a handle inherited through fork (the table was reset).
    const st_opt: ?sys.Stat = sys.fstat(fd) catch null;
    const file_opt = if (st_opt) |st| files_lookup(st) else null;
    if (file_opt) |file| {
        assert(file.handles > 0);
        file.handles -= 1;
        if (!sys.is_linux and file.handles > 0) return; // the shared slot stays
    }
    var fl = lock_request(c.F.UNLCK, slot);
    _ = c.fcntl(fd, cmd_setlk, &fl);
    const file = file_opt orelse return;
    if (!sys.is_linux) {
        for (file.parked[0..file.parked_len]) |parked| sys.close(parked);
        file.parked_len = 0;
    }
    if (file.handles == 0) files_remove(st_opt.?);
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

/// macOS: this process's entry for the file of `fd` (a copy), if it holds
/// handles of it.
fn darwin_find(fd: c.fd_t) ?ProcFile {
    const st = sys.fstat(fd) catch return null;
    _ = c.pthread_mutex_lock(&files_mutex);
    defer _ = c.pthread_mutex_unlock(&files_mutex);
    const file = files_lookup(st) orelse return null;
    if (file.handles == 0) return null;
    return file.*;
}

/// Keeps `fd` open while handles of its file remain, else closes it; one
/// step under the mutex, so no claim of the same file slips in between the
/// decision and the close (which would drop that claim's record lock).
fn darwin_park_or_close(fd: c.fd_t) void {
    const st = sys.fstat(fd) catch return sys.close(fd);
    _ = c.pthread_mutex_lock(&files_mutex);
    defer _ = c.pthread_mutex_unlock(&files_mutex);
    const file = files_lookup(st) orelse return sys.close(fd);
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

test "a process claims its next slot of a file in one attempt, and holds at most handles_per_process_max" {
    if (!sys.is_linux) return error.SkipZigTest;
    // Other tests close descriptors without release (a death), which leaves
    // their entries behind, and a scratch file may reuse their inode: start
    // from an empty table, as a fork child does.
    forget_after_fork();
    const n = handles_per_process_max + 1;
    const fds = try scratch_fds(n);
    defer for (fds) |fd| sys.close(fd);
    var slots: [n]u32 = undefined;
    for (fds[0 .. n - 1], slots[0 .. n - 1]) |fd, *slot| {
        slot.* = (try claim(fd, 0)).slot;
        // The hint: one F_OFD_SETLK per open, however many this process holds.
        try testing.expectEqual(@as(u32, 1), scan_attempts);
    }
    try testing.expectError(error.TooManyInProcess, claim(fds[n - 1], 0));
    // Another process is not affected: its table has no entry for the file,
    // and slots_max - 256 slots are still free (a probe from another open
    // file description finds one unheld).
    try testing.expect(!is_alive(fds[n - 1], slots[n - 2] % slots_max + 1));
    // Closing one handle lets this process open one again.
    release(fds[0], slots[0]);
    slots[n - 1] = (try claim(fds[n - 1], 0)).slot;
    try testing.expect(is_alive(fds[0], slots[n - 1]));
    for (fds[1..], slots[1..]) |fd, slot| release(fd, slot);
    try testing.expect(!any_held(fds[0]));
    // The file's entry is gone with its last handle: a fresh claim works.
    release(fds[0], (try claim(fds[0], 0)).slot);
}
