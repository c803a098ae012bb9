//! Handles die with the thread that opened them.
//!
//! A Deno or Bun Worker can be terminated between any two JavaScript
//! operations, also inside a `using tx = cache.lock()` block that awaits.
//! Its process lives on, so the handle's liveness slot stays held and the
//! writer lock would look owned by a live handle forever: every other writer
//! would time out. To prevent that, every handle is registered with the
//! thread that opened it (a pthread key whose destructor runs when that
//! thread exits, which is what a terminated Worker's thread does). The
//! destructor closes the thread's remaining handles: a held writer lock is
//! released (no mutation can be in progress: JavaScript cannot be stopped
//! inside a native call) and the liveness slot is freed.
//!
//! The list is only touched by its own thread (a handle is used only by the
//! isolate, hence the thread, that opened it), so it needs no locking.

const std = @import("std");
const c = std.c;
const assert = std.debug.assert;
const Handle = @import("handle.zig").Handle;

var key: c.pthread_key_t = undefined;
var key_ok: bool = false;
var key_mutex: c.pthread_mutex_t = .{};
var key_done: bool = false;

fn ensure_key() void {
    // Acquire: pairs with the Release store below, so a thread that sees
    // key_done also sees key and key_ok.
    if (@atomicLoad(bool, &key_done, .acquire)) return;
    _ = c.pthread_mutex_lock(&key_mutex);
    defer _ = c.pthread_mutex_unlock(&key_mutex);
    if (key_done) return;
    key_ok = c.pthread_key_create(&key, on_thread_exit) == .SUCCESS;
    @atomicStore(bool, &key_done, true, .release);
}

/// Set by files.zig: closes one handle (releasing its lock and slot).
pub var close_fn: ?*const fn (*Handle) void = null;

fn on_thread_exit(value: ?*anyopaque) callconv(.c) void {
    var next: ?*Handle = @ptrCast(@alignCast(value));
    // Bound: the list is finite and each step removes one handle.
    while (next) |h| {
        next = h.thread_next;
        h.thread_next = null;
        h.on_thread_list = false;
        if (close_fn) |close| close(h);
    }
}

pub fn register(h: *Handle) void {
    ensure_key();
    if (!key_ok) return;
    assert(!h.on_thread_list);
    h.thread_next = @ptrCast(@alignCast(c.pthread_getspecific(key)));
    h.on_thread_list = true;
    _ = c.pthread_setspecific(key, h);
}

pub fn unregister(h: *Handle) void {
    if (!key_ok or !h.on_thread_list) return;
    h.on_thread_list = false;
    var head: ?*Handle = @ptrCast(@alignCast(c.pthread_getspecific(key)));
    if (head == h) {
        _ = c.pthread_setspecific(key, h.thread_next);
        h.thread_next = null;
        return;
    }
    // Bound: the list is finite; a handle closed from another thread than
    // its own is simply not found and stays linked (never used again).
    while (head) |node| : (head = node.thread_next) {
        if (node.thread_next == h) {
            node.thread_next = h.thread_next;
            h.thread_next = null;
            return;
        }
    }
}
