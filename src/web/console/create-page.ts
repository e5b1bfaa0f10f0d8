/**
 * Create a VM: from the default Debian image (its kernel and initramfs as the daemon's cache holds
 * them) or from paths on the daemon's host, with the device options of a VmSpec. The daemon
 * validates the spec; what it refuses is shown with the fields it names.
 */
import { api, upload, type VmInfo, type VmSpecBody, type WebDefaults } from "./api.js";
import { fill, formValue, h, mib } from "./dom.js";
import { guarded, showError } from "./errors.js";

const MiB = 2 ** 20;

function input(name: string, attrs: Record<string, string | number | boolean> = {}): HTMLInputElement {
  return h("input", { name, id: `f-${name}`, ...attrs });
}

function select(name: string, options: string[], value = options[0]): HTMLSelectElement {
  return h(
    "select",
    { name, id: `f-${name}` },
    ...options.map((o) => h("option", { value: o, selected: o === value }, o)),
  );
}

function field(label: string, control: HTMLElement, note?: string): HTMLElement[] {
  return [
    h("label", { for: control.id }, label),
    note === undefined ? control : h("span", {}, control, " ", h("span", { class: "note" }, note)),
  ];
}

/**
 * A path field with a file picker beside it: a picked file is uploaded to the daemon and the field then
 * names the uploaded copy. The form's submit waits while any upload runs.
 */
function pathWithUpload(
  name: string,
  field: HTMLInputElement,
  pending: Set<string>,
  note: string,
): HTMLElement {
  const picker = input(`${name}-upload`, { type: "file" });
  const status = h("span", { class: "note", id: `f-${name}-status` }, note);
  picker.addEventListener("change", () => {
    const file = picker.files?.[0];
    if (file === undefined) return;
    pending.add(name);
    fill(status, `uploading ${file.name} (${mib(file.size)})…`);
    upload(file)
      .then(({ path, bytes }) => {
        field.value = path;
        fill(status, `uploaded ${file.name} (${mib(bytes)})`);
      })
      .catch((e: unknown) => {
        fill(status, `upload of ${file.name} failed`);
        showError(`upload ${file.name}`, e);
      })
      .finally(() => pending.delete(name));
  });
  return h("span", {}, field, " or upload ", picker, " ", status);
}

/** The form as a VmSpec; the daemon checks the rest. */
function specOf(form: HTMLFormElement): VmSpecBody {
  const v = (name: string) => formValue(form, name);
  const initrd = v("initrd");
  const cmdline = v("cmdline");
  const spec: VmSpecBody = {
    name: v("name"),
    arch: "riscv64",
    engine: v("engine") as VmSpecBody["engine"],
    cpus: Number(v("cpus")),
    memory: Math.round(Number(v("memory")) * MiB),
    boot: {
      kernel: v("kernel"),
      ...(initrd === "" ? {} : { initrd }),
      ...(cmdline === "" ? {} : { cmdline }),
    },
    drives: v("disk") === "" ? [] : [{ path: v("disk"), readOnly: v("disk-ro") === "on" }],
    nics: v("nic") === "" ? [] : [{ backend: v("nic") }],
    rng: v("rng") === "on",
    console: v("console") === "on",
    virtioRing: v("ring") as VmSpecBody["virtioRing"],
    memoryMode: v("memory-mode") as NonNullable<VmSpecBody["memoryMode"]>,
    cpu: {
      mode: v("cpu-mode") as "shared" | "dedicated",
      ...(v("cpu-mode") === "shared" ? { weight: Number(v("weight")) } : {}),
    },
  };
  if (v("balloon") === "on") {
    const target = v("balloon-target");
    spec.balloon = target === "" ? {} : { targetBytes: Math.round(Number(target) * MiB) };
  }
  if (v("vsock") !== "") spec.vsock = { cid: Number(v("vsock")) };
  if (v("keyboard") !== "default") spec.keyboard = v("keyboard") === "on";
  if (v("autostart") === "on") spec.autostart = true;
  return spec;
}

export function createPage(main: HTMLElement, go: (hash: string) => void): () => void {
  const kernel = input("kernel", { size: 60 });
  const initrd = input("initrd", { size: 60 });
  const disk = input("disk", { size: 60 });
  const uploading = new Set<string>();
  const cmdline = input("cmdline", { size: 60 });
  const source = h("p", { class: "note", id: "image-note" }, "Looking for the default image…");
  const form = h(
    "form",
    { class: "grid", id: "create-form" },
    ...field("name", input("name", { required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_.-]{0,62}" })),
    ...field("engine", select("engine", ["auto", "interpreter", "translate"])),
    ...field("vCPUs", input("cpus", { type: "number", min: 1, max: 8, value: 1 })),
    ...field("memory (MiB)", input("memory", { type: "number", min: 16, max: 3072, value: 256 })),
    ...field("memory mode", select("memory-mode", ["overcommit", "reserved"])),
    ...field("CPU", select("cpu-mode", ["shared", "dedicated"])),
    ...field("weight (shared)", input("weight", { type: "number", min: 1, max: 10000, value: 100 })),
    h("label", { for: kernel.id }, "kernel"),
    pathWithUpload("kernel", kernel, uploading, "a path on the daemon's host"),
    h("label", { for: initrd.id }, "initrd"),
    pathWithUpload("initrd", initrd, uploading, ""),
    ...field("command line", cmdline),
    h("label", { for: disk.id }, "disk"),
    pathWithUpload("disk", disk, uploading, "optional: a raw image on the daemon's host"),
    ...field("disk read-only", input("disk-ro", { type: "checkbox" })),
    ...field("network", input("nic", { size: 30 }), "optional: switch:NAME or tap:IFNAME"),
    ...field("virtio-rng", input("rng", { type: "checkbox", checked: true })),
    ...field("virtio console", input("console", { type: "checkbox" })),
    ...field("balloon", input("balloon", { type: "checkbox", checked: true })),
    ...field("balloon target (MiB)", input("balloon-target", { type: "number", min: 0 }), "optional"),
    ...field("virtqueue layout", select("ring", ["split", "packed"])),
    ...field("vsock CID", input("vsock", { type: "number", min: 3 }), "optional: the guest's vsock address"),
    ...field(
      "virtio keyboard",
      select("keyboard", ["default", "on", "off"]),
      "default: one where a slot is free (it carries stop's Ctrl-Alt-Del)",
    ),
    ...field("start with the daemon", input("autostart", { type: "checkbox" })),
    h("span", {}),
    h("button", { type: "submit", id: "create-submit" }, "Create"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    guarded("create", async () => {
      if (uploading.size > 0)
        throw new Error(`wait for the upload of ${[...uploading].join(", ")} to finish`);
      const vm = await api<VmInfo>("POST", "/vms", specOf(form));
      go(`#/vm/${encodeURIComponent(vm.name)}`);
    })();
  });
  fill(main, h("h1", {}, "Create a VM (riscv64)"), source, form);
  api<WebDefaults>("GET", "/web/defaults")
    .then(({ image }) => {
      if (image === null) {
        fill(source, "The default image is not in the daemon's cache (vireo images fetch): give a kernel.");
        return;
      }
      // Only where the person has not typed their own.
      if (kernel.value === "") kernel.value = image.kernel;
      if (initrd.value === "") initrd.value = image.initrd;
      if (cmdline.value === "") cmdline.value = image.cmdline;
      fill(
        source,
        "Boot files: the default Debian image from the daemon's cache (change them to boot your own).",
      );
    })
    .catch((e: unknown) => showError("default image", e));
  return () => {};
}
