/**
 * Numbers of the virtio socket device (virtio 1.2 §5.10): queues, feature bits, the packet header, the
 * stream operations and the reserved context IDs.
 */

/** Queue indexes. */
export const VsockQueue = {
  RX: 0,
  TX: 1,
  EVENT: 2,
} as const;

/** Feature bits: stream sockets (implied when nothing is negotiated), seqpacket sockets. */
export const VsockFeature = {
  STREAM: 0,
  SEQPACKET: 1,
} as const;

/** struct virtio_vsock_config: le64 guest_cid (the upper 32 bits are reserved and zero). */
export const VSOCK_CONFIG_SIZE = 8;

/** Well-known context IDs. */
export const VMADDR_CID_HOST = 2;
/** Lowest and highest CIDs a guest may have (0, 1, 2 and 0xffffffff are reserved). */
export const MIN_GUEST_CID = 3;
export const MAX_GUEST_CID = 0xffff_fffe;

/**
 * struct virtio_vsock_hdr, 44 bytes, little-endian: le64 src_cid, le64 dst_cid, le32 src_port,
 * le32 dst_port, le32 len, le16 type, le16 op, le32 flags, le32 buf_alloc, le32 fwd_cnt. The payload
 * (len bytes, RW packets only) follows it.
 */
export const VSOCK_HDR_SIZE = 44;
export const Hdr = {
  SRC_CID: 0,
  DST_CID: 8,
  SRC_PORT: 16,
  DST_PORT: 20,
  LEN: 24,
  TYPE: 28,
  OP: 30,
  FLAGS: 32,
  BUF_ALLOC: 36,
  FWD_CNT: 40,
} as const;

/** Socket types (`type`). */
export const VSOCK_TYPE_STREAM = 1;
export const VSOCK_TYPE_SEQPACKET = 2;

/** Operations (`op`). */
export const Op = {
  INVALID: 0,
  REQUEST: 1,
  RESPONSE: 2,
  RST: 3,
  SHUTDOWN: 4,
  RW: 5,
  CREDIT_UPDATE: 6,
  CREDIT_REQUEST: 7,
} as const;

/** SHUTDOWN flags: the sender will receive no more (RCV), will send no more (SEND). */
export const Shutdown = {
  RCV: 1,
  SEND: 2,
  BOTH: 3,
} as const;

/** The one event (event queue, struct virtio_vsock_event { le32 id; }). */
export const VSOCK_EVENT_TRANSPORT_RESET = 0;
export const VSOCK_EVENT_SIZE = 4;

/** Largest payload of one packet either way (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
export const VSOCK_MAX_PAYLOAD = 64 * 1024;
