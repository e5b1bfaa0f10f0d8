/**
 * Where a device's transmitted bytes go (the host terminal, a test's buffer, a web console).
 *
 * A sink may be bounded. While `writable` is false it holds as much as it will take, and a transmitter
 * that can wait (a UART: THR stays full; virtio-console: the buffer stays available) stalls the guest
 * as real hardware does on a busy line, and resumes when the sink calls what it gave `whenWritable`.
 * Writers that cannot wait (firmware consoles) may still write; a bounded sink decides what to do with
 * those bytes. A sink without `writable` never fills.
 */
export interface ByteSink {
  write(byte: number): void;
  /** false while the sink is full; absent means always true. */
  readonly writable?: boolean;
  /**
   * Calls `resume` once, the next time the sink turns writable (at once or later; never synchronously
   * from inside this call). Absent on sinks that never fill.
   */
  whenWritable?(resume: () => void): void;
}

/** Whether `sink` can take a byte now. */
export function sinkWritable(sink: ByteSink): boolean {
  return sink.writable !== false;
}

/**
 * `sink` as seen by a device whose resume must also wake the engine (a board whose harts may sleep in
 * WFI waiting for the device's interrupt): each resume is followed by `wake`.
 */
export function wakingSink(sink: ByteSink, wake: () => void): ByteSink {
  const whenWritable = sink.whenWritable?.bind(sink);
  return {
    write: (byte) => sink.write(byte),
    get writable() {
      return sink.writable;
    },
    ...(whenWritable === undefined
      ? {}
      : {
          whenWritable: (resume: () => void) =>
            whenWritable(() => {
              resume();
              wake();
            }),
        }),
  };
}
