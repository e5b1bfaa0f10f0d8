import { RV64A } from "./atomic.js";
import { RV64I, RV64M } from "./base.js";
import { RV64FD } from "./float.js";
import type { Instruction } from "./ir.js";

/** Every RV64G instruction (compressed ones are expanded to these before decoding). */
export const RV64G: readonly Instruction[] = [...RV64I, ...RV64M, ...RV64A, ...RV64FD];
