//! Handles die with the thread that opened them, and process-wide set-up.
//!
//! A Deno or Bun Worker can be terminated between any two JavaScript
//! operations, also inside a `using tx = cache.lock()` block that awaits.
//! Its process lives on, so the handle's liveness slot stays held and the
//! writer lock would look owned by a live handle forever: every other writer
//! would time out. To prevent that, every handle is recorded with the thread
//! that opened it, and a pthread key's destructor, which runs when that
//! thread exits (as a terminated Worker's thread does), closes the thread's
//! remaining handles: a held writer lock is released (no mutation can be in
//! progress: JavaScript cannot be stopped inside a native call) and the
//! liveness slot is freed.
//!
//! The registry is one process-wide list under a mutex, so a handle closed
//! from another thread than its opener is unlinked before it is freed (no
//! dangling entry for the destructor to walk). Rule for C callers: close a
//! handle before its opener thread exits, or let that exit close it; a close
//! racing with the exit is refused by `unregister`, a close after it is a
//! use after free. (JavaScript cannot break the rule: a handle never leaves
//! its isolate.) The library pins itself
//! (sys.pin_library) so the destructor's code stays mapped after a runtime
//! dlcloses it.

const std = @import("std");
const c = std.c;
const assert = std.debug.assert;
const sys = @import("sys.zig");
const liveness = @import("liveness.zig");
const watch = @import("watch.zig");
const Handle = @import("handle.zig").Handle;

var mutex: c.pthread_mutex_t = .{};
var head: ?*Handle = null;
var key: c.pthread_key_t = undefined;
var key_ok: bool = false;
var ready: bool = false;

/// Set by files.zig: closes one handle (releasing its lock and slot).
pub var close_fn: ?*const fn (*Handle) void = null;

/// Once per process: pin the library, watch forks, create the key.
pub fn init() void {
    // Acquire: pairs with the Release store below, so a thread that sees
    // `ready` also sees key and key_ok.
    if (@atomicLoad(bool, &ready, .acquire)) return;
    _ = c.pthread_mutex_lock(&mutex);
    defer _ = c.pthread_mutex_unlock(&mutex);
    if (ready) return;
    sys.pin_library(@ptrCast(&init));
    _ = c.pthread_atfork(null, null, after_fork_child);
    key_ok = c.pthread_key_create(&key, on_thread_exit) == .SUCCESS;
    @atomicStore(bool, &ready, true, .release);
}

/// In a fork() child: every handle belongs to the parent. The child gets a
/// new epoch (exports.zig refuses the old handles), an empty registry (the
/// parent's threads do not exist here, and glibc may hand their pthread_t
/// to new ones), and fresh mutexes (another thread may have held one at the
/// fork; the state they protected is discarded with it).
fn after_fork_child() callconv(.c) void {
    sys.fork_epoch +%= 1;
    mutex = .{};
    head = null;
    liveness.forget_after_fork();
    watch.forget_after_fork();
    files_forget_after_fork();
}

/// Set by files.zig (which imports this file) to reset its own mutex.
pub var files_forget: ?*const fn () void = null;

fn files_forget_after_fork() void {
    if (files_forget) |f| f();
}

fn on_thread_exit(_: ?*anyopaque) callconv(.c) void {
    const self = c.pthread_self();
    // Bound: each pass removes one handle from the finite list.
    while (true) {
        const h = take_one(self) orelse return;
        if (close_fn) |close| close(h);
    }
}

/// Unlinks and returns one handle opened by `thread`, or null.
fn take_one(thread: c.pthread_t) ?*Handle {
    _ = c.pthread_mutex_lock(&mutex);
    defer _ = c.pthread_mutex_unlock(&mutex);
    var node = head;
    while (node) |h| : (node = h.thread_next) {
        if (h.thread == thread) {
            unlink_locked(h);
            h.taken_by_exit = true;
            return h;
        }
    }
    return null;
}

fn unlink_locked(h: *Handle) void {
    assert(h.on_thread_list);
    if (h.thread_prev) |p| p.thread_next = h.thread_next else head = h.thread_next;
    if (h.thread_next) |n| n.thread_prev = h.thread_prev;
    h.thread_next = null;
    h.thread_prev = null;
    h.on_thread_list = false;
}

/// Records `h` as belonging to the calling thread.
pub fn register(h: *Handle) void {
    init();
    h.thread = c.pthread_self();
    h.fork_epoch = sys.fork_epoch;
    // Any non-null value makes the destructor run at this thread's exit.
    if (key_ok) _ = c.pthread_setspecific(key, @ptrCast(&head));
    _ = c.pthread_mutex_lock(&mutex);
    defer _ = c.pthread_mutex_unlock(&mutex);
    assert(!h.on_thread_list);
    h.thread_prev = null;
    h.thread_next = head;
    if (head) |first| first.thread_prev = h;
    head = h;
    h.on_thread_list = true;
}

/// Forgets `h`. False if its opener thread's exit took it first (that
/// thread closes it: the caller must not).
pub fn unregister(h: *Handle) bool {
    _ = c.pthread_mutex_lock(&mutex);
    defer _ = c.pthread_mutex_unlock(&mutex);
    if (h.taken_by_exit) return false;
    if (h.on_thread_list) unlink_locked(h);
    return true;
}
