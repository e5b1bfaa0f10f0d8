/** Flattened device trees: FdtBuilder writes a blob, parseFdt/readFdt read one back. */
export { FdtBuilder, type FdtValue, type FinishOptions, u64Cells } from "./builder.js";
export { FDT_MAGIC, FDT_VERSION } from "./format.js";
export {
  cellsOf,
  type FdtBlob,
  FdtError,
  type FdtHeader,
  type FdtNode,
  type FdtReservation,
  findByPhandle,
  findNode,
  isFdt,
  parseFdt,
  readCells,
  readFdt,
  readString,
  readStrings,
  readU32,
  readU64,
  requireProp,
  stringsOf,
  walkFdt,
} from "./parser.js";
