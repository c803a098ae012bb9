//! `zig build` makes the shared library zig-out/lib/libshm_cache.{so,dylib}
//! and its test build zig-out/test/libshm_cache.{so,dylib} (the same plus
//! the fault points of faults.zig, rooted at src/test_exports.zig);
//! `zig build test` runs the unit tests beside the code and the test that
//! loads the built library through the C ABI.

const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});

    const lib_module = b.createModule(.{
        .root_source_file = b.path("src/exports.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
    });
    const lib = b.addLibrary(.{
        .name = "shm_cache",
        .linkage = .dynamic,
        .root_module = lib_module,
    });
    b.installArtifact(lib);

    const test_lib = b.addLibrary(.{
        .name = "shm_cache",
        .linkage = .dynamic,
        .root_module = b.createModule(.{
            .root_source_file = b.path("src/test_exports.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
        }),
    });
    const install_test_lib = b.addInstallArtifact(test_lib, .{
        .dest_dir = .{ .override = .{ .custom = "test" } },
    });
    b.getInstallStep().dependOn(&install_test_lib.step);

    const unit = b.addTest(.{ .root_module = lib_module });
    const run_unit = b.addRunArtifact(unit);

    // The library test runs against the installed shared library, loaded
    // with dlopen at run time, exactly as the TypeScript side loads it.
    const paths = b.addOptions();
    paths.addOptionPath("library", lib.getEmittedBin());
    const load_module = b.createModule(.{
        .root_source_file = b.path("src/load_test.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
    });
    load_module.addOptions("paths", paths);
    const load_test = b.addTest(.{ .root_module = load_module });
    const run_load = b.addRunArtifact(load_test);

    const test_step = b.step("test", "Run the unit tests and the shared-library test");
    test_step.dependOn(&run_unit.step);
    test_step.dependOn(&run_load.step);
}
