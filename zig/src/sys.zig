//! Thin wrappers over the libc calls the region needs. Each returns an
//! error union of errno values so callers can map them to a `Status` and a
//! message; none of them holds state.

const std = @import("std");
const builtin = @import("builtin");
const c = std.c;

pub const is_linux = builtin.os.tag == .linux;
pub const is_darwin = builtin.os.tag.isDarwin();

comptime {
    // The seqlock fences below are written for these two architectures only.
    std.debug.assert(builtin.cpu.arch == .x86_64 or builtin.cpu.arch == .aarch64);
    std.debug.assert(is_linux or is_darwin);
}

pub const Errno = c.E;

/// System calls fail with error.Sys; `last()` says which errno (per thread).
pub const Error = error{Sys};

threadlocal var last_errno: Errno = .SUCCESS;

pub fn errno_now() Errno {
    return @fromBackingInt(@as(u16, @intCast(c._errno().*)));
}

fn fail() Error {
    last_errno = errno_now();
    return error.Sys;
}

/// The errno of this thread's last failed call here.
pub fn last() Errno {
    return last_errno;
}

pub fn last_name() []const u8 {
    return @tagName(last_errno);
}

/// Nanoseconds on CLOCK_MONOTONIC. The clock is system-wide (all processes
/// of one boot agree), which TTLs stored in the shared region rely on; a
/// per-process epoch would break TTL across processes.
pub fn now_ns() u64 {
    var ts: c.timespec = undefined;
    const rc = c.clock_gettime(.MONOTONIC, &ts);
    // CLOCK_MONOTONIC cannot fail on the supported platforms.
    std.debug.assert(rc == 0);
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
}

/// One clock read per operation: the first `now()` reads CLOCK_MONOTONIC
/// (about 90 ns on the machines we measured, more than a whole hit), later
/// ones return that same instant. An operation that never needs the time
/// (a hit on an entry without expiry) never reads it. Waiting loops (lock
/// and reader backoff) still read the clock afresh: they measure a wait.
pub const Clock = struct {
    ns: u64 = 0,

    pub fn now(clock: *Clock) u64 {
        if (clock.ns == 0) clock.ns = now_ns();
        std.debug.assert(clock.ns != 0);
        return clock.ns;
    }
};

pub fn sleep_ns(ns: u64) void {
    std.debug.assert(ns < std.time.ns_per_s);
    const ts: c.timespec = .{ .sec = 0, .nsec = @intCast(ns) };
    _ = c.nanosleep(&ts, null);
}

pub fn yield() void {
    _ = c.sched_yield();
}

/// Test hook support: stop this process as SIGSTOP from outside would.
pub fn stop_self() void {
    _ = c.kill(c.getpid(), .STOP);
}

pub fn getpid() u32 {
    return @intCast(c.getpid());
}

pub fn geteuid() u32 {
    return @intCast(c.geteuid());
}

/// A compiler barrier: no memory access moves across it. Used to keep the
/// program order of stores that crash recovery depends on (a process killed
/// by a signal has completed exactly a prefix of its retired stores, so only
/// the compiler could reorder them).
pub inline fn compiler_barrier() void {
    asm volatile ("" ::: .{ .memory = true });
}

pub const Stat = struct {
    mode: u32,
    uid: u32,
    size: u64,
    nlink: u32,
    dev: u64 = 0,
    ino: u64 = 0,

    pub fn is_regular(st: Stat) bool {
        return st.mode & c.S.IFMT == c.S.IFREG;
    }
};

pub fn fstat(fd: c.fd_t) Error!Stat {
    if (is_linux) {
        // glibc's fstat symbol varies by version; statx on the descriptor
        // (AT_EMPTY_PATH = 0x1000) is the stable interface.
        var st: std.os.linux.Statx = undefined;
        const mask: std.os.linux.STATX = .{ .TYPE = true, .MODE = true, .NLINK = true, .UID = true, .INO = true, .SIZE = true };
        if (c.statx(fd, "", 0x1000, mask, &st) != 0) return fail();
        return .{
            .mode = st.mode,
            .uid = st.uid,
            .size = st.size,
            .nlink = st.nlink,
            .dev = (@as(u64, st.dev_major) << 32) | st.dev_minor,
            .ino = st.ino,
        };
    }
    var st: c.Stat = undefined;
    if (c.fstat(fd, &st) != 0) return fail();
    return .{
        .mode = @intCast(st.mode),
        .uid = @intCast(st.uid),
        .size = @intCast(st.size),
        .nlink = @intCast(st.nlink),
        .dev = @bitCast(@as(i64, st.dev)),
        .ino = @intCast(st.ino),
    };
}

pub const OpenFlags = struct { directory: bool = false, create: bool = false, read_only: bool = false, exclusive: bool = false };

/// Opens without following a symlink in the last component, close-on-exec.
pub fn openat(dir_fd: c.fd_t, path: [*:0]const u8, flags: OpenFlags) Error!c.fd_t {
    var o: c.O = .{ .NOFOLLOW = true, .CLOEXEC = true };
    // Non-blocking: a FIFO under a cache's name would otherwise block a
    // read-only open until some writer opened it (forever). Regular files
    // and directories ignore the flag; callers refuse anything not regular.
    o.NONBLOCK = true;
    if (flags.directory) {
        o.DIRECTORY = true;
        o.ACCMODE = .RDONLY;
    } else if (flags.read_only) {
        std.debug.assert(!flags.create);
        o.ACCMODE = .RDONLY;
    } else {
        o.ACCMODE = .RDWR;
        o.CREAT = flags.create;
        o.EXCL = flags.exclusive;
    }
    const mode: c.mode_t = 0o600;
    const fd = c.openat(dir_fd, path, o, mode);
    if (fd < 0) return fail();
    return fd;
}

pub fn mkdir(path: [*:0]const u8) Error!void {
    if (c.mkdir(path, 0o700) != 0) {
        if (errno_now() != .EXIST) return fail();
    }
}

pub fn close(fd: c.fd_t) void {
    _ = c.close(fd);
}

pub fn unlinkat(dir_fd: c.fd_t, path: [*:0]const u8) Error!void {
    if (c.unlinkat(dir_fd, path, 0) != 0) return fail();
}

pub fn ftruncate(fd: c.fd_t, bytes: u64) Error!void {
    if (c.ftruncate(fd, @intCast(bytes)) != 0) return fail();
}

/// Reserves the file's blocks now, so that a full file system fails here
/// with ENOSPC (NoSpace) instead of raising SIGBUS later, at the first
/// store into a page that has no block. Where fallocate is not supported
/// (ext2, some FUSE and network file systems), every byte is written
/// through with pwrite instead, which allocates the blocks the same way.
/// posix_fallocate is not used: glibc emulates it by writing too, but a
/// failure could then not be told from "unsupported". The write-through
/// costs a write of the whole file at creation (about 1 s per GB).
pub fn reserve(fd: c.fd_t, bytes: u64) Error!void {
    if (is_linux) {
        if (c.fallocate(fd, 0, 0, @intCast(bytes)) == 0) return;
        const e = errno_now();
        if (e != .OPNOTSUPP and e != .NOSYS) return fail();
    }
    return write_zeros(fd, bytes);
}

/// Writes zeros over the first `bytes` of the file (its blocks get
/// allocated), retrying EINTR and short writes.
pub fn write_zeros(fd: c.fd_t, bytes: u64) Error!void {
    const chunk_bytes = 1 << 20;
    const zeros = struct {
        const buf: [chunk_bytes]u8 = @splat(0);
    };
    var offset: u64 = 0;
    // Bound: every successful pass advances offset by at least one byte;
    // EINTR retries are bounded by the signals delivered.
    while (offset < bytes) {
        const len: usize = @intCast(@min(bytes - offset, chunk_bytes));
        const n = c.pwrite(fd, &zeros.buf, len, @intCast(offset));
        if (n < 0) {
            if (errno_now() == .INTR) continue;
            return fail();
        }
        if (n == 0) {
            // A write of nothing without an error: treat as no space.
            last_errno = .NOSPC;
            return error.Sys;
        }
        offset += @intCast(n);
    }
}

/// The device and inode of `path` itself (a symbolic link is not
/// followed), for telling whether a name still leads to a file.
pub fn stat_path(path: [*:0]const u8) Error!Stat {
    if (is_linux) {
        var st: std.os.linux.Statx = undefined;
        const mask: std.os.linux.STATX = .{ .TYPE = true, .MODE = true, .NLINK = true, .UID = true, .INO = true, .SIZE = true };
        const symlink_nofollow: u32 = 0x100;
        if (c.statx(c.AT.FDCWD, path, symlink_nofollow, mask, &st) != 0) return fail();
        return .{
            .mode = st.mode,
            .uid = st.uid,
            .size = st.size,
            .nlink = st.nlink,
            .dev = (@as(u64, st.dev_major) << 32) | st.dev_minor,
            .ino = st.ino,
        };
    }
    var st: c.Stat = undefined;
    if (c.fstatat(c.AT.FDCWD, path, &st, c.AT.SYMLINK_NOFOLLOW) != 0) return fail();
    return .{
        .mode = @intCast(st.mode),
        .uid = @intCast(st.uid),
        .size = @intCast(st.size),
        .nlink = @intCast(st.nlink),
        .dev = @bitCast(@as(i64, st.dev)),
        .ino = @intCast(st.ino),
    };
}

pub fn renameat(dir_fd: c.fd_t, old: [*:0]const u8, new: [*:0]const u8) Error!void {
    if (c.renameat(dir_fd, old, dir_fd, new) != 0) return fail();
}

/// The process's working directory into `buf` (for making a relative
/// directory absolute).
pub fn getcwd(buf: []u8) Error![]const u8 {
    const p = c.getcwd(buf.ptr, buf.len) orelse return fail();
    return std.mem.sliceTo(@as([*:0]u8, @ptrCast(p)), 0);
}

pub const page_size = std.heap.page_size_min;

pub fn mmap_shared(fd: c.fd_t, bytes: u64) Error![]align(page_size) u8 {
    const prot: c.PROT = .{ .READ = true, .WRITE = true };
    var map: c.MAP = .{ .TYPE = .SHARED };
    map.TYPE = .SHARED;
    const p = c.mmap(null, @intCast(bytes), prot, map, fd, 0);
    if (p == c.MAP_FAILED) return fail();
    const base: [*]align(page_size) u8 = @ptrCast(@alignCast(p));
    return base[0..@intCast(bytes)];
}

/// A read-only shared mapping: whatever the caller does, it cannot write
/// the region (an inspector, files.zig `inspect`).
pub fn mmap_read(fd: c.fd_t, bytes: u64) Error![]align(page_size) u8 {
    const prot: c.PROT = .{ .READ = true };
    const map: c.MAP = .{ .TYPE = .SHARED };
    const p = c.mmap(null, @intCast(bytes), prot, map, fd, 0);
    if (p == c.MAP_FAILED) return fail();
    const base: [*]align(page_size) u8 = @ptrCast(@alignCast(p));
    return base[0..@intCast(bytes)];
}

pub fn munmap(memory: []align(page_size) u8) void {
    _ = c.munmap(@ptrCast(memory.ptr), memory.len);
}

const DlInfo = extern struct {
    fname: ?[*:0]const u8,
    fbase: ?*anyopaque,
    sname: ?[*:0]const u8,
    saddr: ?*anyopaque,
};
extern "c" fn dladdr(addr: *const anyopaque, info: *DlInfo) c_int;

/// Keeps this shared library loaded until the process exits. A runtime may
/// dlclose it (Deno does, when the Worker that loaded it ends) while a
/// thread-exit destructor (threads.zig) still points into it; an extra
/// RTLD_NODELETE reference makes every dlclose a no-op for its code.
pub fn pin_library(anchor: *const anyopaque) void {
    var info: DlInfo = undefined;
    if (dladdr(anchor, &info) == 0) return;
    const path = info.fname orelse return;
    _ = c.dlopen(path, .{ .NOW = true, .NOLOAD = true, .NODELETE = is_linux });
}

/// Incremented in every child right after fork() (threads.zig registers
/// the handler): a handle opened before the fork belongs to the parent (its
/// liveness slot, its lock), and the child must not use it.
pub var fork_epoch: u32 = 0;

/// A hash of the kernel's boot id (Linux), 0 where unknown (callers then
/// neither stamp nor compare). Monotonic
/// timestamps are only comparable within one boot.
pub fn boot_id() u64 {
    if (!is_linux) return 0;
    const fd = c.open("/proc/sys/kernel/random/boot_id", .{ .ACCMODE = .RDONLY, .CLOEXEC = true });
    if (fd < 0) return 0;
    defer close(fd);
    var buf: [64]u8 = undefined;
    const n = c.read(fd, &buf, buf.len);
    if (n <= 0) return 0;
    return std.hash.Wyhash.hash(0x626f6f74, buf[0..@intCast(n)]) | 1;
}
