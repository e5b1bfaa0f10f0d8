/**
 * Numbers from the virtio 1.2 specification that the transport, the queues and several devices share.
 * Device-specific numbers live with each device.
 */

/** Device status bits (§2.1). */
export const Status = {
  ACKNOWLEDGE: 0x01,
  DRIVER: 0x02,
  DRIVER_OK: 0x04,
  FEATURES_OK: 0x08,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

/** Reserved feature bits the transport handles (§6), as bit numbers 0..63. */
export const Feature = {
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
  IN_ORDER: 35,
  NOTIFICATION_DATA: 38,
  RING_RESET: 40,
} as const;

/** Device IDs (§5). */
export const DeviceId = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  ENTROPY: 4,
  BALLOON: 5,
  INPUT: 18,
  SOCKET: 19,
} as const;

/** InterruptStatus bits (§4.2.2). */
export const Interrupt = {
  USED_BUFFER: 0x1,
  CONFIG_CHANGE: 0x2,
} as const;

/** Descriptor flags (split §2.7.5; packed rings use the same bits, §2.8.4-2.8.7). */
export const DescFlag = {
  NEXT: 1,
  WRITE: 2,
  INDIRECT: 4,
} as const;

/** Packed ring descriptor flags beyond DescFlag (§2.8.1): availability and use, against wrap counters. */
export const PackedFlag = {
  AVAIL: 1 << 7,
  USED: 1 << 15,
} as const;

/** Event suppression structure (§2.8.10, §2.8.14): desc_event_flags values. */
export const RingEvent = {
  ENABLE: 0,
  DISABLE: 1,
  /** Only with VIRTIO_F_RING_EVENT_IDX: an event at one descriptor (offset and wrap counter). */
  DESC: 2,
} as const;

/** Event suppression desc field: bits 0..14 the offset, bit 15 the wrap counter. */
export const EVENT_WRAP = 1 << 15;

/** Largest queue size the packed format allows (§2.8: 2^15 entries). */
export const MAX_PACKED_QUEUE_SIZE = 32768;

/** virtq_avail.flags: the driver does not want used-buffer interrupts (without EVENT_IDX). */
export const AVAIL_F_NO_INTERRUPT = 1;

/** Size of one descriptor in a descriptor table. */
export const DESC_SIZE = 16;

/** Largest queue size the split format allows (§2.7). */
export const MAX_QUEUE_SIZE = 32768;

/** A feature bit number as (word, mask): word 0 holds bits 0..31, word 1 bits 32..63. */
export function featureWord(bit: number): number {
  return bit >>> 5;
}

export function featureMask(bit: number): number {
  return (1 << (bit & 31)) >>> 0;
}

/** Feature words (32 bits each) with the given bits set. */
export function featureWords(...bits: number[]): number[] {
  const words = [0, 0];
  for (const bit of bits) {
    const w = featureWord(bit);
    while (words.length <= w) words.push(0);
    words[w] = ((words[w] as number) | featureMask(bit)) >>> 0;
  }
  return words;
}
