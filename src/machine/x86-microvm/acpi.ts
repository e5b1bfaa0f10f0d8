/**
 * Minimal ACPI tables for the microVM (ACPI 6.x, hardware-reduced like Firecracker): RSDP → XSDT → FADT
 * (with DSDT) and MADT. The MADT lists one local APIC per vCPU and the IOAPIC, which is how Linux finds
 * the secondary CPUs; the FADT's reset register is the i8042 command port (0xfe) and its sleep registers
 * are the board's ACPI power port, with \_S5 in the DSDT, so `reboot` and `poweroff` both end the VM.
 * The DSDT declares each virtio-mmio window as a device under \_SB (_HID "LNRO0005", which Linux's
 * virtio_mmio driver matches, and a _CRS with its window and interrupt).
 */
import type { MmioDevice } from "../../devices/device.js";
import * as aml from "../acpi/aml.js";
import { I8042, LAYOUT } from "./memory-map.js";

/** The board's sleep control/status port (hardware-reduced ACPI): SLP_TYP=5 with SLP_EN powers off. */
export const ACPI_SLEEP_PORT = 0x3c0;
export const SLP_EN = 0x20;
export const SLP_TYP_S5 = 5;

/** A virtio-mmio window as the DSDT declares it. */
export interface AcpiVirtioDevice {
  base: number;
  size: number;
  gsi: number;
}

export interface AcpiOptions {
  cpus: number;
  /** virtio-mmio windows, in slot order (the DSDT names them V000, V001, ...). */
  virtio?: readonly AcpiVirtioDevice[];
}

/** The ACPI hardware ID Linux's virtio_mmio driver matches (drivers/virtio/virtio_mmio.c). */
export const VIRTIO_MMIO_HID = "LNRO0005";

/**
 * The interrupt a virtio-mmio device's _CRS declares: level-triggered and active-high, as the
 * transport's InterruptStatus works (the line stays up until the driver acknowledges every bit); the
 * driver requests it with IRQF_SHARED and no trigger flags, so the descriptor decides.
 */
export const VIRTIO_INTERRUPT: aml.InterruptOptions = { edge: false, activeLow: false, shared: false };

export interface AcpiWriter {
  write(paddr: number, data: Uint8Array): void;
}

const OEM_ID = "VIREO ";
const OEM_TABLE_ID = "VIREOVM ";

function ascii(bytes: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) bytes[at + i] = text.charCodeAt(i);
}

function checksum(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum = (sum + (bytes[i] as number)) & 0xff;
  return (256 - sum) & 0xff;
}

/** A system description table: the 36-byte header (checksummed when `finish`ed) and a body. */
function table(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const t = new Uint8Array(36 + body.length);
  const v = new DataView(t.buffer);
  ascii(t, 0, signature);
  v.setUint32(4, t.length, true);
  t[8] = revision;
  ascii(t, 10, OEM_ID);
  ascii(t, 16, OEM_TABLE_ID);
  v.setUint32(24, 1, true);
  ascii(t, 28, "VIRO");
  v.setUint32(32, 1, true);
  t.set(body, 36);
  t[9] = checksum(t);
  return t;
}

/** A Generic Address Structure for an I/O port of `bytes` width. */
function ioGas(v: DataView, at: number, port: number, bytes: number): void {
  v.setUint8(at, 1); // system I/O space
  v.setUint8(at + 1, bytes * 8);
  v.setUint8(at + 2, 0);
  v.setUint8(at + 3, bytes); // access size: 1 = byte
  v.setBigUint64(at + 4, BigInt(port), true);
}

function fadt(dsdt: number): Uint8Array {
  const body = new Uint8Array(276 - 36);
  const v = new DataView(body.buffer);
  const at = (offset: number) => offset - 36;
  v.setUint32(at(40), dsdt, true);
  // IA-PC boot architecture: no VGA, no MSI, no CMOS RTC (bits 2, 3, 5).
  v.setUint16(at(109), (1 << 2) | (1 << 3) | (1 << 5), true);
  // Flags: WBINVD, PWR_BUTTON/SLP_BUTTON (none present), RESET_REG_SUP, HW_REDUCED_ACPI.
  v.setUint32(at(112), (1 << 0) | (1 << 4) | (1 << 5) | (1 << 10) | (1 << 20), true);
  ioGas(v, at(116), I8042.commandPort, 1);
  v.setUint8(at(128), 0xfe); // reset value
  v.setUint8(at(131), 0); // FADT minor version (6.0)
  v.setBigUint64(at(140), BigInt(dsdt), true);
  ioGas(v, at(244), ACPI_SLEEP_PORT, 1); // sleep control
  ioGas(v, at(256), ACPI_SLEEP_PORT, 1); // sleep status
  ascii(body, at(268), "VIREOKVM");
  return table("FACP", 6, body);
}

/** The DSDT's AML: Name(\_S5, Package() {5, 0}), then Scope(\_SB) with a device per virtio window. */
export function dsdtAml(virtio: readonly AcpiVirtioDevice[] = []): Uint8Array {
  const terms = [aml.name("_S5_", aml.pkg(aml.integer(SLP_TYP_S5), aml.integer(0)))];
  if (virtio.length > 0) {
    if (virtio.length > 1000) throw new RangeError("the DSDT names at most 1000 virtio devices");
    const devices = virtio.map((d, i) =>
      aml.device(
        `V${String(i).padStart(3, "0")}`,
        aml.name("_HID", aml.string(VIRTIO_MMIO_HID)),
        aml.name("_UID", aml.integer(i)),
        aml.name(
          "_CRS",
          aml.resourceTemplate(aml.memory32Fixed(d.base, d.size), aml.interrupt(VIRTIO_INTERRUPT, d.gsi)),
        ),
      ),
    );
    terms.push(aml.scope("\\_SB", ...devices));
  }
  return aml.concat(terms);
}

function dsdt(virtio: readonly AcpiVirtioDevice[]): Uint8Array {
  return table("DSDT", 2, dsdtAml(virtio));
}

function madt(cpus: number): Uint8Array {
  const body = new Uint8Array(8 + cpus * 8 + 12);
  const v = new DataView(body.buffer);
  v.setUint32(0, LAYOUT.lapic, true);
  v.setUint32(4, 0, true); // no dual 8259 setup to worry about (hardware-reduced)
  let at = 8;
  for (let i = 0; i < cpus; i++) {
    body[at] = 0; // processor local APIC
    body[at + 1] = 8;
    body[at + 2] = i; // ACPI processor UID
    body[at + 3] = i; // APIC ID
    v.setUint32(at + 4, 1, true); // enabled
    at += 8;
  }
  body[at] = 1; // IOAPIC
  body[at + 1] = 12;
  body[at + 2] = 0; // IOAPIC ID (KVM's in-kernel IOAPIC answers ID 0)
  v.setUint32(at + 4, LAYOUT.ioapic, true);
  v.setUint32(at + 8, 0, true); // GSI base
  return table("APIC", 5, body);
}

function rsdp(xsdt: number): Uint8Array {
  const r = new Uint8Array(36);
  const v = new DataView(r.buffer);
  ascii(r, 0, "RSD PTR ");
  ascii(r, 9, OEM_ID);
  r[15] = 2; // ACPI 2.0+
  v.setUint32(16, 0, true); // no RSDT
  v.setUint32(20, 36, true);
  v.setBigUint64(24, BigInt(xsdt), true);
  r[8] = checksum(r, 0, 20);
  r[32] = checksum(r, 0, 36);
  return r;
}

/** Writes the tables into the BIOS area and returns the RSDP's address. */
export function buildAcpiTables(memory: AcpiWriter, options: AcpiOptions): number {
  if (options.cpus > 255) throw new RangeError("the MADT's xAPIC entries allow 255 CPUs");
  const align = (n: number) => Math.ceil(n / 16) * 16;
  let next = LAYOUT.acpi + 64; // after the RSDP
  const place = (bytes: Uint8Array): number => {
    const address = next;
    next = align(next + bytes.length);
    if (next > LAYOUT.acpiEnd) throw new Error("ACPI tables do not fit in the BIOS area");
    memory.write(address, bytes);
    return address;
  };
  const dsdtAddress = place(dsdt(options.virtio ?? []));
  const fadtAddress = place(fadt(dsdtAddress));
  const madtAddress = place(madt(options.cpus));
  const entries = [fadtAddress, madtAddress];
  const xsdtBody = new Uint8Array(entries.length * 8);
  const xv = new DataView(xsdtBody.buffer);
  entries.forEach((address, i) => {
    xv.setBigUint64(i * 8, BigInt(address), true);
  });
  const xsdtAddress = place(table("XSDT", 1, xsdtBody));
  memory.write(LAYOUT.acpi, rsdp(xsdtAddress));
  return LAYOUT.acpi;
}

/** The hardware-reduced sleep control/status register: S5 (soft off) ends the VM. */
export class AcpiSleepPort implements MmioDevice {
  readonly name = "acpi-sleep";
  constructor(private readonly onPowerOff: () => void) {}

  read(offset: number, size: number, out: Uint32Array): boolean {
    if (offset !== 0 || size !== 1) return false;
    out[0] = 0;
    out[1] = 0;
    return true;
  }

  write(offset: number, size: number, lo: number, _hi = 0): boolean {
    if (offset !== 0 || size !== 1) return false;
    if ((lo & SLP_EN) !== 0 && ((lo >> 2) & 7) === SLP_TYP_S5) this.onPowerOff();
    return true;
  }
}
