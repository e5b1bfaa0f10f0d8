import { ByteWriter } from "./bytes.js";
import { FunctionBuilder } from "./function.js";
import type { ValType } from "./opcodes.js";

interface FuncType {
  params: ValType[];
  results: ValType[];
}

interface DefinedFunction {
  type: number;
  body: FunctionBuilder;
}

/**
 * Assembles a WebAssembly module: imported functions and memory, defined functions, exports. Function
 * indices are assigned in declaration order, imports first, so all imports must be declared before the
 * first function is defined.
 */
export class ModuleBuilder {
  private readonly types: FuncType[] = [];
  private readonly imports: { module: string; name: string; type: number }[] = [];
  private readonly functions: DefinedFunction[] = [];
  private readonly exports: { name: string; index: number }[] = [];
  private memoryImport: { module: string; name: string; minPages: number; maxPages: number } | null = null;
  private tableImport: { module: string; name: string; min: number } | null = null;

  importMemory(module: string, name: string, minPages: number, maxPages: number): void {
    this.memoryImport = { module, name, minPages, maxPages };
  }

  /** Imports a funcref table (for call_indirect; table index 0). */
  importTable(module: string, name: string, min: number): void {
    this.tableImport = { module, name, min };
  }

  /** The index of a function type, for call_indirect. */
  functionType(params: ValType[], results: ValType[]): number {
    return this.typeIndex(params, results);
  }

  importFunction(module: string, name: string, params: ValType[], results: ValType[]): number {
    if (this.functions.length > 0) throw new Error("imports must come before defined functions");
    this.imports.push({ module, name, type: this.typeIndex(params, results) });
    return this.imports.length - 1;
  }

  /** Reserves an index for a function whose body is filled in later (allows forward calls). */
  declareFunction(params: ValType[], results: ValType[]): { index: number; body: FunctionBuilder } {
    const body = new FunctionBuilder(params.length);
    this.functions.push({ type: this.typeIndex(params, results), body });
    return { index: this.imports.length + this.functions.length - 1, body };
  }

  exportFunction(name: string, index: number): void {
    this.exports.push({ name, index });
  }

  encode(): Uint8Array {
    const out = new ByteWriter();
    out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    this.section(out, 1, (s) => {
      s.u32(this.types.length);
      for (const t of this.types) {
        s.byte(0x60);
        s.u32(t.params.length);
        for (const p of t.params) s.byte(p);
        s.u32(t.results.length);
        for (const r of t.results) s.byte(r);
      }
    });
    const memory = this.memoryImport;
    const table = this.tableImport;
    this.section(out, 2, (s) => {
      s.u32(this.imports.length + (memory ? 1 : 0) + (table ? 1 : 0));
      for (const imp of this.imports) {
        s.name(imp.module);
        s.name(imp.name);
        s.byte(0x00);
        s.u32(imp.type);
      }
      if (memory) {
        s.name(memory.module);
        s.name(memory.name);
        s.byte(0x02);
        s.byte(0x01);
        s.u32(memory.minPages);
        s.u32(memory.maxPages);
      }
      if (table) {
        s.name(table.module);
        s.name(table.name);
        s.byte(0x01);
        s.byte(0x70);
        s.byte(0x00);
        s.u32(table.min);
      }
    });
    this.section(out, 3, (s) => {
      s.u32(this.functions.length);
      for (const f of this.functions) s.u32(f.type);
    });
    this.section(out, 7, (s) => {
      s.u32(this.exports.length);
      for (const e of this.exports) {
        s.name(e.name);
        s.byte(0x00);
        s.u32(e.index);
      }
    });
    this.section(out, 10, (s) => {
      s.u32(this.functions.length);
      for (const f of this.functions) s.sized(f.body.finish());
    });
    return out.view().slice();
  }

  private section(out: ByteWriter, id: number, fill: (s: ByteWriter) => void): void {
    const s = new ByteWriter();
    fill(s);
    out.byte(id);
    out.sized(s);
  }

  private typeIndex(params: ValType[], results: ValType[]): number {
    const key = (t: FuncType) => `${t.params.join(",")}:${t.results.join(",")}`;
    const wanted = key({ params, results });
    const found = this.types.findIndex((t) => key(t) === wanted);
    if (found >= 0) return found;
    this.types.push({ params, results });
    return this.types.length - 1;
  }
}
