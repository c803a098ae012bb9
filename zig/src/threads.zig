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
//! dangling entry for the destructor to walk). The library pins itself
//! (sys.pin_library) so the destructor's code stays mapped after a runtime
//! dlcloses it.

const std = @import("std");
const c = std.c;
const assert = std.debug.assert;
const sys = @import("sys.zig");
const Handle = @import("handle.zig").Handle;

var mutex: c.pthread_mutex_t = .{};
var head: ?*Handle = null;
var key: c.pthread_key_t = undefined;
var key_ok: bool = false;
var ready: bool = false;

/// Set by files.zig: closes one handle (releasing its lock and slot).
pub var close_fn: ?*const fn (*Handle) void = null;

/// Once per process: pin the library, watch forks, create the key.
fn init() void {
    // Acquire: pairs with the Release store below, so a thread that sees
    // `ready` also sees key and key_ok.
    if (@atomicLoad(bool, &ready, .acquire)) return;
    _ = c.pthread_mutex_lock(&mutex);
    defer _ = c.pthread_mutex_unlock(&mutex);
    if (ready) return;
    sys.pin_library(@ptrCast(&init));
    sys.watch_forks();
    key_ok = c.pthread_key_create(&key, on_thread_exit) == .SUCCESS;
    @atomicStore(bool, &ready, true, .release);
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
    if (!key_ok) return;
    // Any non-null value makes the destructor run at this thread's exit.
    _ = c.pthread_setspecific(key, @ptrCast(&head));
    _ = c.pthread_mutex_lock(&mutex);
    defer _ = c.pthread_mutex_unlock(&mutex);
    assert(!h.on_thread_list);
    h.thread_prev = null;
    h.thread_next = head;
    if (head) |first| first.thread_prev = h;
    head = h;
    h.on_thread_list = true;
}

/// Forgets `h` (called by close, from any thread). Idempotent.
pub fn unregister(h: *Handle) void {
    _ = c.pthread_mutex_lock(&mutex);
    defer _ = c.pthread_mutex_unlock(&mutex);
    if (h.on_thread_list) unlink_locked(h);
}
