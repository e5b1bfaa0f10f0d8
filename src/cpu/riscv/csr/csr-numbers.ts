/**
 * CSR numbers (privileged spec 1.12, section 2.2) of every CSR this hart implements, plus the first and
 * last numbers of the numbered families. Bits 11:10 say read-only (3) and bits 9:8 the lowest privilege
 * that may access the CSR.
 */
export enum Csr {
  FFLAGS = 0x001,
  FRM = 0x002,
  FCSR = 0x003,

  SSTATUS = 0x100,
  SIE = 0x104,
  STVEC = 0x105,
  SCOUNTEREN = 0x106,
  SENVCFG = 0x10a,
  SSCRATCH = 0x140,
  SEPC = 0x141,
  SCAUSE = 0x142,
  STVAL = 0x143,
  SIP = 0x144,
  STIMECMP = 0x14d,
  SATP = 0x180,

  MSTATUS = 0x300,
  MISA = 0x301,
  MEDELEG = 0x302,
  MIDELEG = 0x303,
  MIE = 0x304,
  MTVEC = 0x305,
  MCOUNTEREN = 0x306,
  MENVCFG = 0x30a,
  MCOUNTINHIBIT = 0x320,
  MHPMEVENT3 = 0x323,
  MHPMEVENT31 = 0x33f,
  MSCRATCH = 0x340,
  MEPC = 0x341,
  MCAUSE = 0x342,
  MTVAL = 0x343,
  MIP = 0x344,
  PMPCFG0 = 0x3a0,
  PMPCFG15 = 0x3af,
  PMPADDR0 = 0x3b0,
  PMPADDR63 = 0x3ef,
  MSECCFG = 0x747,

  TSELECT = 0x7a0,
  TDATA1 = 0x7a1,
  TDATA2 = 0x7a2,
  TDATA3 = 0x7a3,

  MCYCLE = 0xb00,
  MINSTRET = 0xb02,
  MHPMCOUNTER3 = 0xb03,
  MHPMCOUNTER31 = 0xb1f,

  CYCLE = 0xc00,
  TIME = 0xc01,
  INSTRET = 0xc02,
  HPMCOUNTER3 = 0xc03,
  HPMCOUNTER31 = 0xc1f,

  MVENDORID = 0xf11,
  MARCHID = 0xf12,
  MIMPID = 0xf13,
  MHARTID = 0xf14,
  MCONFIGPTR = 0xf15,
}

/** Names of the single CSRs; numbered families are named by csrName(). */
const NAMES: ReadonlyMap<number, string> = new Map([
  [Csr.FFLAGS, "fflags"],
  [Csr.FRM, "frm"],
  [Csr.FCSR, "fcsr"],
  [Csr.SSTATUS, "sstatus"],
  [Csr.SIE, "sie"],
  [Csr.STVEC, "stvec"],
  [Csr.SCOUNTEREN, "scounteren"],
  [Csr.SENVCFG, "senvcfg"],
  [Csr.SSCRATCH, "sscratch"],
  [Csr.SEPC, "sepc"],
  [Csr.SCAUSE, "scause"],
  [Csr.STVAL, "stval"],
  [Csr.SIP, "sip"],
  [Csr.STIMECMP, "stimecmp"],
  [Csr.SATP, "satp"],
  [Csr.MSTATUS, "mstatus"],
  [Csr.MISA, "misa"],
  [Csr.MEDELEG, "medeleg"],
  [Csr.MIDELEG, "mideleg"],
  [Csr.MIE, "mie"],
  [Csr.MTVEC, "mtvec"],
  [Csr.MCOUNTEREN, "mcounteren"],
  [Csr.MENVCFG, "menvcfg"],
  [Csr.MCOUNTINHIBIT, "mcountinhibit"],
  [Csr.MSCRATCH, "mscratch"],
  [Csr.MEPC, "mepc"],
  [Csr.MCAUSE, "mcause"],
  [Csr.MTVAL, "mtval"],
  [Csr.MIP, "mip"],
  [Csr.MSECCFG, "mseccfg"],
  [Csr.TSELECT, "tselect"],
  [Csr.TDATA1, "tdata1"],
  [Csr.TDATA2, "tdata2"],
  [Csr.TDATA3, "tdata3"],
  [Csr.MCYCLE, "mcycle"],
  [Csr.MINSTRET, "minstret"],
  [Csr.CYCLE, "cycle"],
  [Csr.TIME, "time"],
  [Csr.INSTRET, "instret"],
  [Csr.MVENDORID, "mvendorid"],
  [Csr.MARCHID, "marchid"],
  [Csr.MIMPID, "mimpid"],
  [Csr.MHARTID, "mhartid"],
  [Csr.MCONFIGPTR, "mconfigptr"],
]);

/** The assembler name of a CSR number, or its hex form when the number is not standard here. */
export function csrName(csr: number): string {
  const name = NAMES.get(csr);
  if (name !== undefined) return name;
  if (csr >= Csr.HPMCOUNTER3 && csr <= Csr.HPMCOUNTER31) return `hpmcounter${csr - Csr.CYCLE}`;
  if (csr >= Csr.MHPMCOUNTER3 && csr <= Csr.MHPMCOUNTER31) return `mhpmcounter${csr - Csr.MCYCLE}`;
  if (csr >= Csr.MHPMEVENT3 && csr <= Csr.MHPMEVENT31) return `mhpmevent${csr - Csr.MCOUNTINHIBIT}`;
  if (csr >= Csr.PMPCFG0 && csr <= Csr.PMPCFG15) return `pmpcfg${csr - Csr.PMPCFG0}`;
  if (csr >= Csr.PMPADDR0 && csr <= Csr.PMPADDR63) return `pmpaddr${csr - Csr.PMPADDR0}`;
  return `0x${csr.toString(16).padStart(3, "0")}`;
}
