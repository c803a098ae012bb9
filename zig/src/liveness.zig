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
//! process, so every handle of a process shares one process-wide slot and a
//! probe of one's own process always answers "alive". That path is weaker
//! (see README) and is compiled, not tested, here.
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

fn lock_request(kind: c_int, slot: u32) c.Flock {
    var fl = std.mem.zeroes(c.Flock);
    fl.type = @intCast(kind);
    fl.whence = 0; // SEEK_SET
    fl.start = @intCast(slot);
    fl.len = 1;
    // OFD locks require l_pid == 0 (zeroes above).
    return fl;
}

/// Takes a free slot for a new handle. Scans from a PID-derived start so
/// concurrent openers rarely contend on the same byte; the scan is bounded
/// by slots_max attempts.
pub fn claim(fd: c.fd_t) error{ TooMany, Io }!u32 {
    if (!sys.is_linux) return darwin_claim(fd);
    const start = sys.getpid() % slots_max;
    var attempt: u32 = 0;
    while (attempt < slots_max) : (attempt += 1) {
        const slot = 1 + (start + attempt) % slots_max;
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
    var fl = lock_request(c.F.WRLCK, 1);
    fl.len = slots_max;
    if (c.fcntl(fd, cmd_getlk, &fl) != 0) return true;
    return fl.type != c.F.UNLCK;
}

/// Gives the slot back (closing the descriptor would too).
pub fn release(fd: c.fd_t, slot: u32) void {
    assert(slot >= 1 and slot <= slots_max);
    if (!sys.is_linux) return darwin_release(fd);
    var fl = lock_request(c.F.UNLCK, slot);
    _ = c.fcntl(fd, cmd_setlk, &fl);
}

/// True while some open handle holds `slot`. Errors answer "alive": the
/// caller then waits out its bound instead of stealing on doubt.
pub fn is_alive(fd: c.fd_t, slot: u32) bool {
    if (slot == 0 or slot > slots_max) return true;
    if (!sys.is_linux) return darwin_is_alive(fd, slot);
    var fl = lock_request(c.F.WRLCK, slot);
    if (c.fcntl(fd, cmd_getlk, &fl) != 0) return true;
    // F_UNLCK means our write lock could be placed: nobody holds the byte.
    // Our own OFD never conflicts with itself, so a caller must not probe
    // its own slot (lock.zig checks that first).
    return fl.type != c.F.UNLCK;
}

// macOS: one process-wide slot, reference counted across handles.
var darwin_mutex: c.pthread_mutex_t = .{};
var darwin_slot: u32 = 0;
var darwin_refs: u32 = 0;

fn darwin_claim(fd: c.fd_t) error{ TooMany, Io }!u32 {
    _ = c.pthread_mutex_lock(&darwin_mutex);
    defer _ = c.pthread_mutex_unlock(&darwin_mutex);
    if (darwin_refs > 0) {
        darwin_refs += 1;
        return darwin_slot;
    }
    const start = sys.getpid() % slots_max;
    var attempt: u32 = 0;
    while (attempt < slots_max) : (attempt += 1) {
        const slot = 1 + (start + attempt) % slots_max;
        var fl = lock_request(c.F.WRLCK, slot);
        if (c.fcntl(fd, c.F.SETLK, &fl) == 0) {
            darwin_slot = slot;
            darwin_refs = 1;
            return slot;
        }
        const e = sys.errno_now();
        if (e != .AGAIN and e != .ACCES) return error.Io;
    }
    return error.TooMany;
}

fn darwin_release(fd: c.fd_t) void {
    _ = c.pthread_mutex_lock(&darwin_mutex);
    defer _ = c.pthread_mutex_unlock(&darwin_mutex);
    assert(darwin_refs > 0);
    darwin_refs -= 1;
    if (darwin_refs == 0) {
        var fl = lock_request(c.F.UNLCK, darwin_slot);
        _ = c.fcntl(fd, c.F.SETLK, &fl);
        darwin_slot = 0;
    }
}

fn darwin_is_alive(fd: c.fd_t, slot: u32) bool {
    if (slot == darwin_slot) return true;
    var fl = lock_request(c.F.WRLCK, slot);
    if (c.fcntl(fd, c.F.GETLK, &fl) != 0) return true;
    return fl.type != c.F.UNLCK;
}
