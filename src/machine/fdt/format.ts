/**
 * The flattened device tree (DTB) format, devicetree specification v0.4 chapter 5: a header, the
 * memory-reservation block, the structure block (tokens) and the strings block (property names).
 * Every integer in a blob is big-endian.
 */

export const FDT_MAGIC = 0xd00d_feed;

/** The version we write, and the oldest version a reader of ours must understand. */
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;

/** Header sizes: version 17 added size_dt_struct (the last field) to version 16's header. */
export const FDT_HEADER_SIZE = 40;
export const FDT_V16_HEADER_SIZE = 36;

/** Header field offsets. */
export const HDR_MAGIC = 0;
export const HDR_TOTALSIZE = 4;
export const HDR_OFF_DT_STRUCT = 8;
export const HDR_OFF_DT_STRINGS = 12;
export const HDR_OFF_MEM_RSVMAP = 16;
export const HDR_VERSION = 20;
export const HDR_LAST_COMP_VERSION = 24;
export const HDR_BOOT_CPUID_PHYS = 28;
export const HDR_SIZE_DT_STRINGS = 32;
export const HDR_SIZE_DT_STRUCT = 36;

/** Structure block tokens. */
export const FDT_BEGIN_NODE = 0x1;
export const FDT_END_NODE = 0x2;
export const FDT_PROP = 0x3;
export const FDT_NOP = 0x4;
export const FDT_END = 0x9;

/** Structure tokens and values are 4-byte aligned; reservation entries (two u64s) 8-byte aligned. */
export const FDT_TAG_ALIGN = 4;
export const FDT_RSVMAP_ALIGN = 8;
export const FDT_RSVMAP_ENTRY_SIZE = 16;

/** Characters allowed in a node name (before the '@') and in a unit address (spec 2.2.1). */
export const NODE_NAME_CHARS = /^[0-9A-Za-z,._+-]+$/;
/** Characters allowed in a property name (spec 2.2.4). */
export const PROPERTY_NAME_CHARS = /^[0-9A-Za-z,._+?#-]+$/;

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
