/**
 * The Linux input event numbers (linux/input-event-codes.h) the keyboard uses: virtio-input carries
 * evdev events as they are (virtio 1.2 §5.8.6).
 */

export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
export const EV_LED = 0x11;
export const SYN_REPORT = 0;

/** The key codes a keyboard offers: 1 (Esc) to 255, the range Linux's keyboard handlers look at. */
export const MAX_KEY = 255;

/** LED_NUML, LED_CAPSL, LED_SCROLLL: codes 0..2. */
export const LED_COUNT = 3;

/** Key codes used by name. */
export const KEY = {
  ESC: 1,
  ENTER: 28,
  LEFTCTRL: 29,
  A: 30,
  LEFTALT: 56,
  DELETE: 111,
} as const;
