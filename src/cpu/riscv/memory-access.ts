import type { MmioBus, SliceRequests, StoreWatcher } from "./bus.js";
import type { Hart } from "./hart.js";
import type { GuestRam } from "./memory-map.js";
import { TranslateResult } from "./mmu/translate.js";
import { Access, CallStatus, HartOffset, Priv } from "./state.js";
import { takeTrap } from "./trap-entry.js";

const PAGE_FAULT = [12, 13, 15];

/** The translator's interest in writes to guest RAM pages it compiled code from. */
export interface CodeWatch {
  isCode(pa: number): boolean;
  written(pa: number, length: number): void;
}

const ACCESS_FAULT = [1, 5, 7];
const SCRATCH_ADDR = HartOffset.SCRATCH_ADDR >> 2;
const SCRATCH_VAL = HartOffset.SCRATCH_VAL >> 2;

/**
 * The slow paths of guest memory access, called from wasm on a soft-TLB miss: translate (page walk and
 * PMP), fill the TLB when the page may be cached, and carry out accesses the fast path cannot — device
 * registers, accesses that cross a page, watched pages. Every physical address is checked against RAM
 * before it touches linear memory.
 */
export class MemoryAccess {
  private readonly view: DataView;
  private readonly watchers = new Map<number, StoreWatcher>();
  private readonly mmio = new Uint32Array(2);
  /** Pages holding translated code (translating engine only): stores to them are reported. */
  code: CodeWatch | null = null;
  /** Status of the trap raised by the last failed translate(). */
  private trapStatus: CallStatus = CallStatus.REDIRECT;

  constructor(
    memory: WebAssembly.Memory,
    private readonly ram: GuestRam,
    private readonly bus: MmioBus,
    private readonly current: () => Hart,
    private readonly attention: SliceRequests,
  ) {
    this.view = new DataView(memory.buffer);
  }

  watch(paddr: number, watcher: StoreWatcher): void {
    this.watchers.set(Math.floor(paddr / 4096) * 4096, watcher);
  }

  fetch(): CallStatus {
    const h = this.current();
    const lo = h.pcLo;
    const hi = h.pcHi;
    const pa = this.translate(h, lo, hi, Access.FETCH, 2);
    if (pa < 0) return this.trapStatus;
    if (!this.ram.contains(pa, 2)) return this.fault(h, ACCESS_FAULT[Access.FETCH] as number, lo, hi);
    this.fill(h, h.csr.priv, Access.FETCH, lo, hi, pa);
    let word = this.view.getUint16(this.ram.host(pa), true);
    if ((word & 3) === 3) {
      if ((lo & 0xfff) !== 0xffe) {
        if (!this.ram.contains(pa, 4)) return this.fault(h, ACCESS_FAULT[Access.FETCH] as number, lo, hi);
        word = this.view.getUint32(this.ram.host(pa), true);
      } else {
        const nextLo = (lo + 2) | 0;
        const nextHi = nextLo === 0 ? (hi + 1) | 0 : hi;
        const pa2 = this.translate(h, nextLo, nextHi, Access.FETCH, 2);
        if (pa2 < 0) return this.trapStatus;
        if (!this.ram.contains(pa2, 2)) return this.fault(h, 1, nextLo, nextHi);
        word = (word | (this.view.getUint16(this.ram.host(pa2), true) << 16)) >>> 0;
      }
    }
    h.state[SCRATCH_VAL] = word;
    h.state[SCRATCH_VAL + 1] = 0;
    return CallStatus.FETCHED;
  }

  load(size: number): CallStatus {
    const h = this.current();
    const lo = h.state[SCRATCH_ADDR] as number;
    const hi = h.state[SCRATCH_ADDR + 1] as number;
    const first = 4096 - (lo & 0xfff);
    if (size > first) return this.crossPage(h, lo, hi, size, first, false);
    const pa = this.translate(h, lo, hi, Access.LOAD, size);
    if (pa < 0) return this.trapStatus;
    if (this.ram.contains(pa, size)) {
      this.fill(h, h.csr.dataPriv, Access.LOAD, lo, hi, pa);
      this.readRam(h, pa, size);
      return CallStatus.OK;
    }
    if ((pa & (size - 1)) !== 0 || !this.bus.read(pa, size, this.mmio)) {
      return this.fault(h, ACCESS_FAULT[Access.LOAD] as number, lo, hi);
    }
    h.state[SCRATCH_VAL] = this.mmio[0] as number;
    h.state[SCRATCH_VAL + 1] = size === 8 ? (this.mmio[1] as number) : 0;
    return CallStatus.OK;
  }

  store(size: number): CallStatus {
    const h = this.current();
    const lo = h.state[SCRATCH_ADDR] as number;
    const hi = h.state[SCRATCH_ADDR + 1] as number;
    const first = 4096 - (lo & 0xfff);
    if (size > first) return this.crossPage(h, lo, hi, size, first, true);
    const pa = this.translate(h, lo, hi, Access.STORE, size);
    if (pa < 0) return this.trapStatus;
    if (this.ram.contains(pa, size)) {
      this.writeRam(h, pa, size, 0);
      this.ram.markDirty(pa, size);
      if (this.code?.isCode(pa)) this.code.written(pa, size);
      const watcher = this.watchers.get(pa - (pa % 4096));
      if (watcher) return watcher(pa, size) ? CallStatus.EXIT : CallStatus.OK;
      this.fill(h, h.csr.dataPriv, Access.STORE, lo, hi, pa);
      return CallStatus.OK;
    }
    const valueLo = h.state[SCRATCH_VAL] as number;
    const valueHi = h.state[SCRATCH_VAL + 1] as number;
    if ((pa & (size - 1)) !== 0 || !this.bus.write(pa, size, valueLo, valueHi)) {
      return this.fault(h, ACCESS_FAULT[Access.STORE] as number, lo, hi);
    }
    return this.attention.endSlice ? CallStatus.EXIT : CallStatus.OK;
  }

  /** Makes sure an atomic access can use the store TLB: fill it, or raise the fault. */
  probe(access: Access, size: number): CallStatus {
    const h = this.current();
    const lo = h.state[SCRATCH_ADDR] as number;
    const hi = h.state[SCRATCH_ADDR + 1] as number;
    const pa = this.translate(h, lo, hi, access, size);
    if (pa < 0) return this.trapStatus;
    // The atomic will write through the TLB entry: translated code on the page goes first.
    if (access === Access.STORE && this.code?.isCode(pa)) this.code.written(pa, size);
    // Its write will not come back here: a page tracked for migration is dirty from now on.
    if (access === Access.STORE && this.ram.contains(pa, size)) this.ram.markDirty(pa, size);
    if (!this.fill(h, h.csr.dataPriv, access, lo, hi, pa)) {
      // Atomics on device registers or watched mailboxes are not supported: access fault.
      return this.fault(h, ACCESS_FAULT[Access.STORE] as number, lo, hi);
    }
    return CallStatus.OK;
  }

  /**
   * Virtual → physical for an access of `size` bytes, with page-fault, access-fault and PMP checks.
   * Returns -1 after raising the trap (its status in trapStatus).
   */
  private translate(h: Hart, lo: number, hi: number, access: Access, size: number): number {
    const csr = h.csr;
    const priv = access === Access.FETCH ? csr.priv : csr.dataPriv;
    const mode = priv === Priv.M ? 0 : csr.satpMode;
    const result = h.translator.translate(lo, hi, access, priv, csr.sum, csr.mxr, mode, csr.satpPpn);
    if (result === TranslateResult.PAGE_FAULT) {
      this.trapStatus = takeTrap(h, PAGE_FAULT[access] as number, false, lo, hi);
      return -1;
    }
    const pa = h.translator.paddr;
    if (result === TranslateResult.ACCESS_FAULT || !h.pmp.check(pa, size, access, priv)) {
      this.trapStatus = takeTrap(h, ACCESS_FAULT[access] as number, false, lo, hi);
      return -1;
    }
    return pa;
  }

  /** Caches the page if the fast path may use it for this access. */
  private fill(h: Hart, priv: Priv, access: Access, lo: number, hi: number, pa: number): boolean {
    const page = pa - (pa % 4096);
    if (!this.ram.contains(page, 4096) || !h.pmp.pageUniform(pa, access, priv)) return false;
    if (access === Access.STORE && (this.watchers.has(page) || this.code?.isCode(page))) return false;
    h.tlb.fill(priv, access, lo, hi, this.ram.host(page), h.translator.leafUser);
    return true;
  }

  private fault(h: Hart, cause: number, lo: number, hi: number): CallStatus {
    return takeTrap(h, cause, false, lo, hi);
  }

  private readRam(h: Hart, pa: number, size: number): void {
    const at = this.ram.host(pa);
    const v = this.view;
    let lo = 0;
    let hi = 0;
    if (size === 1) lo = v.getUint8(at);
    else if (size === 2) lo = v.getUint16(at, true);
    else if (size === 4) lo = v.getInt32(at, true);
    else {
      lo = v.getInt32(at, true);
      hi = v.getInt32(at + 4, true);
    }
    h.state[SCRATCH_VAL] = lo;
    h.state[SCRATCH_VAL + 1] = hi;
  }

  /** Writes the low `size` bytes of SCRATCH_VAL shifted right by `skip` bytes. */
  private writeRam(h: Hart, pa: number, size: number, skip: number): void {
    const at = this.ram.host(pa);
    const lo = h.state[SCRATCH_VAL] as number;
    const hi = h.state[SCRATCH_VAL + 1] as number;
    for (let i = 0; i < size; i++) {
      const n = i + skip;
      const byte = n < 4 ? lo >>> (8 * n) : hi >>> (8 * (n - 4));
      this.view.setUint8(at + i, byte & 0xff);
    }
  }

  /** A misaligned access split over two pages: translate both before touching either. */
  private crossPage(
    h: Hart,
    lo: number,
    hi: number,
    size: number,
    first: number,
    store: boolean,
  ): CallStatus {
    const access = store ? Access.STORE : Access.LOAD;
    const pa1 = this.translate(h, lo, hi, access, first);
    if (pa1 < 0) return this.trapStatus;
    const lo2 = (lo + first) | 0;
    const hi2 = lo2 >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi;
    const pa2 = this.translate(h, lo2, hi2, access, size - first);
    if (pa2 < 0) return this.trapStatus;
    if (!this.ram.contains(pa1, first) || !this.ram.contains(pa2, size - first)) {
      return this.fault(h, ACCESS_FAULT[access] as number, lo, hi);
    }
    if (store) {
      this.writeRam(h, pa1, first, 0);
      this.writeRam(h, pa2, size - first, first);
      this.ram.markDirty(pa1, first);
      this.ram.markDirty(pa2, size - first);
      if (this.code?.isCode(pa1)) this.code.written(pa1, first);
      if (this.code?.isCode(pa2)) this.code.written(pa2, size - first);
      return CallStatus.OK;
    }
    let vlo = 0;
    let vhi = 0;
    for (let i = 0; i < size; i++) {
      const pa = i < first ? pa1 + i : pa2 + (i - first);
      const byte = this.view.getUint8(this.ram.host(pa));
      if (i < 4) vlo |= byte << (8 * i);
      else vhi |= byte << (8 * (i - 4));
    }
    h.state[SCRATCH_VAL] = vlo;
    h.state[SCRATCH_VAL + 1] = vhi;
    return CallStatus.OK;
  }
}
