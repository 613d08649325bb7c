/**
 * The little of the browser the console's page script uses, typed here rather than by adding the DOM
 * library to the whole project (whose code runs on Node, where `document` must stay a type error).
 * Types only: nothing of this file reaches the browser.
 */

export interface BrowserElement {
  textContent: string | null;
  className: string;
  title: string;
  readonly dataset: Record<string, string | undefined>;
  append(...nodes: (BrowserElement | string)[]): void;
  replaceChildren(...nodes: (BrowserElement | string)[]): void;
  setAttribute(name: string, value: string): void;
  querySelector(selector: string): BrowserElement | null;
}

export interface BrowserDocument {
  getElementById(id: string): BrowserElement | null;
  createElement(tag: string): BrowserElement;
}

export interface BrowserMessageEvent {
  readonly data: string;
}

export interface BrowserEventSource {
  addEventListener(type: string, listener: (event: BrowserMessageEvent) => void): void;
  onerror: (() => void) | null;
  onopen: (() => void) | null;
}

/** Chart.js 4's UMD build (window.Chart), as far as the page uses it. */
export interface ChartInstance {
  data: { datasets: unknown[] };
  options: Record<string, unknown>;
  update(mode?: string): void;
}

export interface ChartStatic {
  new (canvas: BrowserElement, config: Record<string, unknown>): ChartInstance;
}

export interface BrowserGlobals {
  readonly document: BrowserDocument;
  readonly EventSource: new (url: string) => BrowserEventSource;
  readonly Chart: ChartStatic;
}
