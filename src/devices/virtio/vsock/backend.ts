/**
 * The host side of virtio-vsock, engine-agnostic: a `VsockBackend` (src/host/vsock-uds.ts forwards to
 * Unix domain sockets; tests use their own) decides where guest connections go and opens connections to
 * the guest, and each connection is a `VsockStream` (the device's end) paired with a
 * `VsockStreamHandler` (the backend's end). All calls happen on the VM's thread; none may block.
 */

/** The device as a backend sees it. */
export interface VsockHost {
  /** The guest's context ID. */
  readonly guestCid: number;
  /**
   * Opens a stream to the guest's `guestPort` from a free host port: a REQUEST goes to the guest, and
   * `handler.connected()` follows when it accepts, `handler.closed()` when it refuses (no listener).
   * Null when no connection can be opened now (the driver is not running, or too many connections).
   */
  connect(guestPort: number, handler: VsockStreamHandler): VsockStream | null;
}

/** The device's end of one connection (host port, guest port). */
export interface VsockStream {
  /** The host's port (the guest connected to it, or it was picked for a host connection). */
  readonly hostPort: number;
  /** The guest's port. */
  readonly guestPort: number;
  /** False once the connection is gone (reset, closed, or the device was reset). */
  readonly open: boolean;
  /**
   * Accepts a guest connection handed to `VsockBackend.incoming` (now or later): the guest gets its
   * RESPONSE. False when the guest gave up meanwhile (the stream is gone; drop the host side).
   */
  accept(handler: VsockStreamHandler): boolean;
  /** Refuses a guest connection handed to `incoming`: the guest gets RST (connection refused). */
  reject(): void;
  /**
   * Host bytes for the guest: copied into the connection's bounded buffer, as many as fit. Returns how
   * many were taken; when fewer than offered, `handler.writable()` is called once there is room again.
   * After the guest shut down its receiving side, data is taken and dropped.
   */
  write(data: Uint8Array, offset?: number, length?: number): number;
  /**
   * The backend is done with `bytes` more bytes of what `handler.data` passed (in order): their room
   * goes back to the guest as credit. Until then the buffers passed stay valid and untouched.
   */
  consumed(bytes: number): void;
  /** No more host data: once the buffered bytes reached the guest, it reads end of stream. */
  end(): void;
  /**
   * The host side is finished both ways: buffered bytes still go to the guest, then a full SHUTDOWN;
   * guest data still arriving is dropped. The handler gets no more calls.
   */
  close(): void;
  /** Aborts at once: the guest gets RST, buffered data is dropped. The handler gets no more calls. */
  reset(): void;
}

/** The backend's end of one connection: what the device tells it. */
export interface VsockStreamHandler {
  /** A host-initiated connection was accepted by the guest. */
  connected?(): void;
  /**
   * Guest bytes, in order. `bytes` is a view of the connection's buffer that stays valid until the
   * backend reports it with `stream.consumed` (it must, or the guest runs out of credit).
   */
  data(bytes: Uint8Array): void;
  /** Room again after `write` took less than offered. */
  writable(): void;
  /** The guest will send no more (it shut down its sending side). */
  end(): void;
  /**
   * The connection is gone: the guest reset or fully closed it, refused a host connection, or the
   * device was reset. Bytes already passed to `data` remain valid; no more calls follow.
   */
  closed(): void;
}

/** Where guest connections go and where host connections come from. */
export interface VsockBackend {
  /** Called once by the device it serves. */
  attach(host: VsockHost): void;
  /**
   * The guest asks to connect to host port `stream.hostPort`: answer with `stream.accept(handler)` or
   * `stream.reject()`, now or later.
   */
  incoming(stream: VsockStream): void;
  /** Stops accepting host connections and closes the host side of every stream (the VM is going away). */
  close(): void | Promise<void>;
}
