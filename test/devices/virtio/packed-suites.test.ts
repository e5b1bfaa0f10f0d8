/**
 * The device suites again, with every test driver on packed rings (VIRTIO_F_RING_PACKED negotiated):
 * the same requests, completions, interrupts and failures must come out of either ring format. Tests
 * that program split-ring internals by hand (or check split-only register rules) negotiate split
 * themselves and still pass here.
 */
import { useRingFormat } from "./harness.js";

useRingFormat("packed");

await import("./mmio.test.js");
await import("./blk.test.js");
await import("./net.test.js");
await import("./rng-console.test.js");
await import("./balloon.test.js");
await import("./vsock.test.js");
await import("./input.test.js");
