/**
 * The cgroup files the daemon writes for KVM VMs' vCPU threads, on both cgroup versions: the hierarchy
 * found from /proc/self/mountinfo and /proc/self/cgroup, and the files written, checked in a directory
 * standing in for the cgroup file systems (the real v1 or v2 kernel is exercised by
 * test/manager/scheduler.test.ts on whichever the host has).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CpuCgroups, findCpuHierarchy } from "../../src/host/cgroup-cpu.js";
import { tempDir } from "../api/support.js";
import { describe, it } from "../support/test.js";

const V2_MOUNTS =
  "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
const V1_MOUNTS = [
  "25 24 0:22 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw",
  "26 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct",
  "27 24 0:24 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory",
].join("\n");

describe("cgroups for KVM vCPU threads", () => {
  it("finds the hierarchy with the cpu controller and this process's group in it", () => {
    assert.deepEqual(findCpuHierarchy(V2_MOUNTS, "0::/system.slice/vireo.service\n"), {
      version: "cgroup-v2",
      mount: "/sys/fs/cgroup",
      path: "/system.slice/vireo.service",
    });
    assert.deepEqual(findCpuHierarchy(V1_MOUNTS, "4:memory:/m\n3:cpu,cpuacct:/daemons\n0::/\n"), {
      version: "cgroup-v1",
      mount: "/sys/fs/cgroup/cpu,cpuacct",
      path: "/daemons",
    });
    assert.match(
      JSON.stringify(findCpuHierarchy("", "")),
      /no cgroup hierarchy with the cpu controller is mounted/,
    );
    assert.match(JSON.stringify(findCpuHierarchy(V1_MOUNTS, "4:memory:/m\n")), /no cgroup v1 cpu group/);
  });

  it("writes cgroup v2's threaded groups, cpu.weight and cpu.max, and moves threads by cgroup.threads", () => {
    const root = tempDir();
    const own = join(root, "sys/fs/cgroup/svc");
    mkdirSync(own, { recursive: true });
    writeFileSync(join(own, "cgroup.controllers"), "cpuset cpu io memory pids\n");
    const cgroups = CpuCgroups.open({ root, mountinfo: V2_MOUNTS, selfCgroup: "0::/svc\n", pid: 4242 });
    assert.ok(cgroups instanceof CpuCgroups);
    assert.equal(cgroups.version, "cgroup-v2");
    assert.match(cgroups.base, /svc\/vireo-4242-\d+$/);
    assert.equal(readFileSync(join(cgroups.base, "cgroup.type"), "utf8"), "threaded");
    assert.equal(readFileSync(join(own, "cgroup.subtree_control"), "utf8"), "+cpu");
    const group = cgroups.forVm("web 1", 250, 0.5);
    assert.equal(readFileSync(join(group.path, "cgroup.type"), "utf8"), "threaded");
    assert.equal(readFileSync(join(group.path, "cpu.weight"), "utf8"), "250");
    assert.equal(readFileSync(join(group.path, "cpu.max"), "utf8"), "50000 100000");
    group.set(100, undefined);
    assert.equal(readFileSync(join(group.path, "cpu.max"), "utf8"), "max 100000");
    group.enter(77);
    assert.equal(readFileSync(join(group.path, "cgroup.threads"), "utf8"), "77");
    writeFileSync(join(group.path, "cpu.stat"), "usage_usec 5\nnr_periods 9\nnr_throttled 4\n");
    assert.equal(group.throttledPeriods(), 4);
  });

  it("writes cgroup v1's cpu.shares and CFS quota, and moves threads by tasks", () => {
    const root = tempDir();
    mkdirSync(join(root, "sys/fs/cgroup/cpu,cpuacct/daemons"), { recursive: true });
    const cgroups = CpuCgroups.open({ root, mountinfo: V1_MOUNTS, selfCgroup: "3:cpu,cpuacct:/daemons\n" });
    assert.ok(cgroups instanceof CpuCgroups);
    const group = cgroups.forVm("a", 80, 0.0001);
    assert.equal(readFileSync(join(group.path, "cpu.shares"), "utf8"), "819");
    // The kernel's smallest quota, not less.
    assert.equal(readFileSync(join(group.path, "cpu.cfs_quota_us"), "utf8"), "1000");
    assert.equal(readFileSync(join(group.path, "cpu.cfs_period_us"), "utf8"), "100000");
    group.enter(5);
    assert.equal(readFileSync(join(group.path, "tasks"), "utf8"), "5");
  });

  it("says why not where the cpu controller is off or the group cannot be made; removes dead daemons' groups", () => {
    const root = tempDir();
    const own = join(root, "sys/fs/cgroup/svc");
    mkdirSync(own, { recursive: true });
    writeFileSync(join(own, "cgroup.controllers"), "memory pids\n");
    const off = CpuCgroups.open({ root, mountinfo: V2_MOUNTS, selfCgroup: "0::/svc\n" });
    assert.match(JSON.stringify(off), /the cpu controller is not enabled for \/svc/);
    const missing = CpuCgroups.open({ root, mountinfo: V2_MOUNTS, selfCgroup: "0::/gone\n" });
    assert.match(JSON.stringify(missing), /cannot make a cgroup at/);
    // A group left by a daemon that died (its VMs' groups empty), and one of a live daemon.
    mkdirSync(join(own, "vireo-999999-1/vm-x"), { recursive: true });
    mkdirSync(join(own, "vireo-1000000-2"), { recursive: true });
    writeFileSync(join(own, "cgroup.controllers"), "cpu\n");
    const alive = (pid: number) => pid === 1000000;
    assert.ok(
      CpuCgroups.open({ root, mountinfo: V2_MOUNTS, selfCgroup: "0::/svc\n", alive }) instanceof CpuCgroups,
    );
    assert.equal(existsSync(join(own, "vireo-999999-1")), false);
    assert.equal(existsSync(join(own, "vireo-1000000-2")), true);
  });
});
