import { type Aspect, DARK, type Lamps } from "./model.js";

const RED: Lamps = { red: true, yellow: false, green: false };
const YELLOW: Lamps = { red: false, yellow: true, green: false };
const GREEN: Lamps = { red: false, yellow: false, green: true };

/** Whether flashing lamps are lit at this monotonic instant: 50 % duty cycle over the flash period. */
export function flashIsOn(nowMs: number, flashPeriodMs: number): boolean {
  return nowMs % flashPeriodMs < flashPeriodMs / 2;
}

/** The lamps an aspect lights, given the flasher's phase. */
export function lampsFor(aspect: Aspect, flashOn: boolean): Lamps {
  switch (aspect) {
    case "green":
    case "walk":
      return GREEN;
    case "yellow":
      return YELLOW;
    case "red":
    case "dont-walk":
      return RED;
    case "red-flash":
    case "ped-clearance":
      return flashOn ? RED : DARK;
    case "yellow-flash":
      return flashOn ? YELLOW : DARK;
    case "dark":
      return DARK;
  }
}

/** Short labels for logs and the demo's lamp line. */
export const ASPECT_LABEL: Record<Aspect, string> = {
  green: "G",
  yellow: "Y",
  red: "r",
  "red-flash": "r*",
  "yellow-flash": "Y*",
  walk: "W",
  "ped-clearance": "W*",
  "dont-walk": "dw",
  dark: "-",
};
